// Resident trained models: the records of every model the daemon's jobs have
// saved (rows in the Store, files in Store::ModelDir), and the ones held in
// memory for reuse, within a byte budget.
//
// Eviction: when a model must become resident and the budget is short, the
// least recently used unpinned resident models are dropped from memory (they
// stay on disk and are loaded again on their next use). A job that is using an
// evicted model keeps its own reference until it ends, so memory can briefly
// exceed the budget by the models of running jobs (at most `workers` of them).
// Pinned models are never evicted and are loaded again when the daemon starts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "candies/v1/candies.pb.h"
#include "server/backend.h"
#include "server/store.h"

namespace candies::server {

class ModelRegistry {
 public:
  // Reads the model records from `store`. `backend` loads model folders.
  // `on_change(resident_count, resident_bytes)` is called after every change
  // (for the metrics); may be empty.
  ModelRegistry(int64_t budget_bytes, Store* store, JobBackend* backend,
                std::function<void(int, int64_t)> on_change = {});

  // Loads the pinned models (after a restart). Returns the first error; the
  // models that loaded stay resident.
  absl::Status LoadPinned();

  // Records a model that a job has saved to store->ModelDir(record.id()) and
  // makes it resident. The record is kept even when it cannot become resident
  // (the error says why; it loads on first use).
  absl::StatusOr<v1::Model> Add(v1::Model record);

  // The resident model for a job, loading it from disk when needed.
  absl::StatusOr<std::shared_ptr<const ResidentModel>> Acquire(const std::string& id);

  absl::StatusOr<v1::Model> Get(const std::string& id);
  std::vector<v1::Model> List();  // newest first
  absl::StatusOr<v1::Model> Load(const std::string& id);
  absl::StatusOr<v1::Model> Unload(const std::string& id);  // also unpins
  absl::StatusOr<v1::Model> Pin(const std::string& id, bool pin);
  // Sets the record's `shared` flag (PublishModel); stored.
  absl::StatusOr<v1::Model> Publish(const std::string& id, bool shared);
  absl::Status Delete(const std::string& id);

  int64_t budget_bytes() const { return budget_bytes_; }
  int64_t resident_bytes();

 private:
  struct Entry {
    v1::Model record;  // resident/last_used are filled from the fields below
    std::shared_ptr<const ResidentModel> model;  // null when not resident
    uint64_t last_used = 0;                      // LRU tick
  };
  absl::StatusOr<Entry*> FindLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loads `e` if not resident (evicting as needed) and marks it used.
  absl::Status MakeResidentLocked(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t ResidentBytesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Model ViewLocked(const Entry& e) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t budget_bytes_;
  Store* const store_;
  JobBackend* const backend_;
  const std::function<void(int, int64_t)> on_change_;

  // Held while loading from disk too: loads are rare and take about a second,
  // and one lock keeps the budget arithmetic simple.
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t tick_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace candies::server
