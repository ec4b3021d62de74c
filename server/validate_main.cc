// candies-validate [--max-elements=N ...] -- FILE: reads FILE as .h5ad with the
// given ReadLimits and prints "ok <n_obs> <n_vars>" (exit 0) or the reader's
// error (exit 1). candiesd runs it in a sandbox (server/file_validator.h) on
// every uploaded and registered file; a crash here cannot take the daemon down.
#include <iostream>
#include <string>
#include <vector>

#include "core/io/h5ad.h"
#include "server/file_validator.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  candies::ReadOptions options;
  std::string path;
  absl::Status st = candies::server::ParseValidatorArgs(args, &options.limits, &path);
  if (!st.ok()) {
    std::cerr << "usage: candies-validate [--max-elements=N] [--max-element-bytes=N] "
                 "[--max-total-bytes=N] [--max-string-bytes=N] [--max-group-members=N] "
                 "[--max-compression-ratio=X] [--] FILE\n"
              << st.message() << "\n";
    return 2;
  }
  absl::StatusOr<candies::AnnData> a = candies::ReadH5ad(path, options);
  if (!a.ok()) {
    std::cout << a.status().message() << "\n";
    return 1;
  }
  std::cout << "ok " << a->n_obs() << " " << a->n_vars() << "\n";
  return 0;
}
