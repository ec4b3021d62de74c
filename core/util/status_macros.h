// Early-return helpers for absl::Status / absl::StatusOr at module borders.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CANDIES_CONCAT_INNER_(a, b) a##b
#define CANDIES_CONCAT_(a, b) CANDIES_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define CANDIES_RETURN_IF_ERROR(expr)               \
  do {                                              \
    ::absl::Status _candies_status = (expr);        \
    if (!_candies_status.ok()) return _candies_status; \
  } while (0)

// `CANDIES_ASSIGN_OR_RETURN(auto x, F());` binds the value or returns the error.
#define CANDIES_ASSIGN_OR_RETURN(lhs, expr) \
  CANDIES_ASSIGN_OR_RETURN_IMPL_(CANDIES_CONCAT_(_candies_or_, __LINE__), lhs, expr)
#define CANDIES_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
