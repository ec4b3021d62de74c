// Durable state of candiesd: datasets and jobs in SQLite (WAL journal,
// synchronous=FULL, so a committed row survives a crash or kill -9), dataset
// matrices as .h5ad files under data_dir/datasets, results under
// data_dir/results. Files are written to a temp name and renamed, so a crash
// never leaves a half-written file under a name the database points at.
//
// Thread-safe: one connection guarded by a mutex (the daemon's write rate is a
// handful of rows per job).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "candies/v1/candies.pb.h"
#include "core/io/anndata.h"

struct sqlite3;

namespace candies::server {

class Store {
 public:
  // Opens (creating if needed) data_dir/candies.db and the file folders. Jobs
  // left RUNNING by a previous process go back to QUEUED with attempt + 1, or
  // end FAILED ("interrupted by daemon restart N times") once they have run
  // max_attempts times (config key max-attempts).
  // Sets the process umask to 077 and the modes under data_dir to 0700/0600.
  // A store from before identities (SQLite user_version 0) has the owners of
  // its rows cleared to "" once: such objects are visible to admins only.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& data_dir,
                                                     int max_attempts = 2);
  ~Store();

  const std::string& data_dir() const { return data_dir_; }
  std::string DatasetPath(const std::string& id) const;  // data_dir/datasets/<id>.h5ad
  std::string ResultPath(const std::string& job_id) const;  // data_dir/results/<id>.h5ad
  // data_dir/results/<id>.denoised.h5ad: the denoised low-quality modality.
  std::string DenoisedPath(const std::string& job_id) const;
  // data_dir/results/<id>.report.html and <id>.pictures/: the job report and its PNGs.
  std::string ReportPath(const std::string& job_id) const;
  std::string PicturesDir(const std::string& job_id) const;
  std::string ModelDir(const std::string& model_id) const;  // data_dir/models/<id>/

  // Writes `adata` to DatasetPath(dataset.id()) atomically, then the row.
  // dataset.size_bytes is filled in.
  absl::Status PutDataset(v1::Dataset& dataset, const AnnData& adata);
  // A row for a file that stays where it is (RegisterDataset).
  // `owned`: the file lies in the data dir and is deleted with the row.
  absl::Status PutDatasetRow(const v1::Dataset& dataset, const std::string& path, bool owned);
  absl::StatusOr<v1::Dataset> GetDataset(const std::string& id);
  // The dataset's file in the data dir; FailedPrecondition for rows that point
  // outside it (registered by an older daemon, never copied or validated).
  absl::StatusOr<std::string> GetDatasetFile(const std::string& id);
  std::vector<v1::Dataset> ListDatasets();
  absl::Status DeleteDataset(const std::string& id);  // removes a stored file too

  // Inserts or replaces the job row (the whole message).
  absl::Status PutJob(const v1::Job& job);
  absl::StatusOr<v1::Job> GetJob(const std::string& id);
  // Newest first. `state` UNSPECIFIED = all.
  std::vector<v1::Job> ListJobs(v1::JobState state = v1::JOB_STATE_UNSPECIFIED);

  // Trained model records (the files live in ModelDir(id)). Newest first.
  absl::Status PutModel(const v1::Model& model);
  std::vector<v1::Model> ListModels();
  // Removes the row, then the folder. NotFound when there is no such row.
  absl::Status DeleteModel(const std::string& id);

  // Jobs that Open() re-queued (for the scheduler to pick up again).
  int requeued_on_open() const { return requeued_on_open_; }
  // Rows of a store made before identities existed whose owner Open() cleared.
  int cleared_owners_on_open() const { return cleared_owners_on_open_; }
  int failed_on_open() const { return failed_on_open_; }

 private:
  Store() = default;
  absl::Status Exec(const std::string& sql);
  absl::Status ClearOwnersOfOldRows();
  absl::Status MigrateJobAttempts();
  absl::Status RequeueInterrupted(int max_attempts);

  std::string data_dir_;
  absl::Mutex mu_;
  sqlite3* db_ = nullptr;
  int requeued_on_open_ = 0;
  int cleared_owners_on_open_ = 0;
  int failed_on_open_ = 0;
};

// Sets `data_dir` to 0700 and everything under it to 0700 (folders) or 0600
// (files); symbolic links are left alone.
absl::Status RestrictModes(const std::string& data_dir);

// Renames `tmp` to `path` after flushing tmp's data to disk, then flushes the
// folder entry: after it returns, `path` survives power loss, complete.
absl::Status DurableRename(const std::string& tmp, const std::string& path);

// "<prefix>-<16 hex>" from a random 64-bit value.
std::string NewId(const std::string& prefix);
int64_t NowUnix();

}  // namespace candies::server
