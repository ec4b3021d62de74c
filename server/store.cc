#include "server/store.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/io/h5ad.h"
#include "core/util/status_macros.h"
#include "server/errors.h"

namespace candies::server {
namespace fs = std::filesystem;

namespace {

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Text(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Blob(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int Step() { return sqlite3_step(stmt_); }
  std::string ColumnBlob(int i) {
    const void* p = sqlite3_column_blob(stmt_, i);
    return std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, i));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

absl::Status SqlError(sqlite3* db, const std::string& what) {
  return absl::InternalError(absl::StrCat("store: ", what, ": ", sqlite3_errmsg(db)));
}

// The messages of a statement's rows (column 0); a row that does not parse is
// skipped.
template <typename M>
std::vector<M> ReadMessages(Stmt& st) {
  std::vector<M> out;
  while (st.ok() && st.Step() == SQLITE_ROW) {
    M m;
    if (m.ParseFromString(st.ColumnBlob(0))) out.push_back(std::move(m));
  }
  return out;
}

// `msg` (a serialized M) without its owner; false when it does not parse.
template <typename M>
bool WithoutOwner(const std::string& msg, std::string* out) {
  M m;
  if (!m.ParseFromString(msg)) return false;
  m.clear_owner();
  *out = m.SerializeAsString();
  return true;
}

}  // namespace

namespace {
absl::Status Fsync(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, " for fsync failed"));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path, " failed"));
  return absl::OkStatus();
}
}  // namespace

absl::Status DurableRename(const std::string& tmp, const std::string& path) {
  CANDIES_RETURN_IF_ERROR(Fsync(tmp));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", path, ": ", ec.message()));
  return Fsync(fs::path(path).parent_path().string());
}

std::string NewId(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  static absl::Mutex mu;
  absl::MutexLock lock(&mu);
  return absl::StrFormat("%s-%016x", prefix, rng());
}

int64_t NowUnix() { return absl::ToUnixSeconds(absl::Now()); }

absl::Status RestrictModes(const std::string& data_dir) {
  std::error_code ec;
  fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("data_dir: cannot chmod 0700 ", data_dir, ": ", ec.message()));
  }
  for (auto it = fs::recursive_directory_iterator(data_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);
    if (ec || fs::is_symlink(st)) continue;
    const fs::perms want = fs::is_directory(st) ? fs::perms::owner_all
                                                : fs::perms::owner_read | fs::perms::owner_write;
    if ((st.permissions() & fs::perms::mask) != want) {
      fs::permissions(it->path(), want, fs::perm_options::replace | fs::perm_options::nofollow, ec);
      ec.clear();
    }
  }
  return absl::OkStatus();
}

absl::Status Store::ClearOwnersOfOldRows() {
  // Rows written before identities existed carry a client-chosen owner: they
  // become owner "" (visible to admins only). user_version 1 marks a store
  // whose owners are authenticated identities.
  int version = 0;
  {
    Stmt st(db_, "PRAGMA user_version");
    if (st.ok() && st.Step() == SQLITE_ROW) version = sqlite3_column_int(st.get(), 0);
  }
  if (version >= 1) return absl::OkStatus();
  CANDIES_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  int cleared = 0;
  struct Table {
    const char* name;
    bool (*without_owner)(const std::string&, std::string*);
  };
  for (const Table& table : {Table{"datasets", WithoutOwner<v1::Dataset>},
                             Table{"jobs", WithoutOwner<v1::Job>},
                             Table{"models", WithoutOwner<v1::Model>}}) {
    std::vector<std::pair<std::string, std::string>> rows;
    {
      Stmt st(db_, absl::StrCat("SELECT id, msg FROM ", table.name).c_str());
      while (st.ok() && st.Step() == SQLITE_ROW) {
        rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)),
                          st.ColumnBlob(1));
      }
    }
    for (auto& [id, msg] : rows) {
      std::string out;
      if (!table.without_owner(msg, &out)) continue;
      Stmt up(db_, absl::StrCat("UPDATE ", table.name, " SET msg = ?1 WHERE id = ?2").c_str());
      up.Blob(1, out);
      up.Text(2, id);
      if (up.Step() != SQLITE_DONE) {
        (void)Exec("ROLLBACK");
        return SqlError(db_, "clear old owners");
      }
      ++cleared;
    }
  }
  CANDIES_RETURN_IF_ERROR(Exec("PRAGMA user_version = 1"));
  CANDIES_RETURN_IF_ERROR(Exec("COMMIT"));
  cleared_owners_on_open_ = cleared;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& data_dir,
                                                   int max_attempts) {
  // Everything the daemon creates is its own: 0700 folders, 0600 files (the
  // HDF5 and SQLite libraries create files with the process umask).
  ::umask(077);
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  for (const char* sub : {"datasets", "results", "models"}) {
    fs::create_directories(fs::path(data_dir) / sub, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("data_dir: cannot create ", (fs::path(data_dir) / sub).string(), ": ",
                       ec.message()));
    }
  }
  std::unique_ptr<Store> store(new Store());
  store->data_dir_ = data_dir;
  const std::string db_path = (fs::path(data_dir) / "candies.db").string();
  if (sqlite3_open(db_path.c_str(), &store->db_) != SQLITE_OK) {
    return SqlError(store->db_, absl::StrCat("open ", db_path));
  }
  sqlite3_busy_timeout(store->db_, 5000);
  CANDIES_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  CANDIES_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  CANDIES_RETURN_IF_ERROR(store->Exec(
      "CREATE TABLE IF NOT EXISTS datasets (id TEXT PRIMARY KEY, path TEXT NOT NULL, "
      "owned INTEGER NOT NULL, created INTEGER NOT NULL, msg BLOB NOT NULL)"));
  CANDIES_RETURN_IF_ERROR(store->Exec(
      "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, state INTEGER NOT NULL, "
      "created INTEGER NOT NULL, seq INTEGER NOT NULL, msg BLOB NOT NULL)"));
  CANDIES_RETURN_IF_ERROR(store->Exec(
      "CREATE TABLE IF NOT EXISTS models (id TEXT PRIMARY KEY, created INTEGER NOT NULL, "
      "msg BLOB NOT NULL)"));
  CANDIES_RETURN_IF_ERROR(store->ClearOwnersOfOldRows());
  // Files of an older version (or made before this umask) lose group/other access.
  CANDIES_RETURN_IF_ERROR(RestrictModes(data_dir));
  CANDIES_RETURN_IF_ERROR(store->MigrateJobAttempts());
  CANDIES_RETURN_IF_ERROR(store->RequeueInterrupted(max_attempts));
  return store;
}

// Databases from before the attempts column get it (the count is also in each
// job's message; RequeueInterrupted takes the larger of the two).
absl::Status Store::MigrateJobAttempts() {
  bool has = false;
  {
    Stmt st(db_, "PRAGMA table_info(jobs)");
    while (st.ok() && st.Step() == SQLITE_ROW) {
      const unsigned char* name = sqlite3_column_text(st.get(), 1);
      if (name != nullptr && std::string(reinterpret_cast<const char*>(name)) == "attempts") {
        has = true;
      }
    }
  }
  if (has) return absl::OkStatus();
  return Exec("ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1");
}

// Jobs that were running when the previous process died run again, unless
// they already ran max_attempts times: a job whose input crashes the daemon
// would otherwise crash every start (a crash loop under Restart=on-failure).
absl::Status Store::RequeueInterrupted(int max_attempts) {
  std::vector<std::pair<v1::Job, int64_t>> running;
  {
    Stmt st(db_, "SELECT msg, attempts FROM jobs WHERE state = ?1 ORDER BY seq");
    if (!st.ok()) return SqlError(db_, "prepare");
    st.Int(1, v1::JOB_STATE_RUNNING);
    while (st.Step() == SQLITE_ROW) {
      v1::Job j;
      if (j.ParseFromString(st.ColumnBlob(0))) {
        running.emplace_back(std::move(j), sqlite3_column_int64(st.get(), 1));
      }
    }
  }
  for (auto& [job, column] : running) {
    const int64_t attempts = std::max<int64_t>(column, job.attempt());
    job.set_stage("");
    if (attempts >= max_attempts) {
      job.set_state(v1::JOB_STATE_FAILED);
      job.set_error(absl::StrCat("interrupted by daemon restart ", attempts,
                                 " times (max-attempts = ", max_attempts, ")"));
      job.set_finished_unix(NowUnix());
      CANDIES_RETURN_IF_ERROR(PutJob(job));
      ++failed_on_open_;
      continue;
    }
    job.set_state(v1::JOB_STATE_QUEUED);
    job.set_attempt(static_cast<int32_t>(attempts + 1));
    job.set_started_unix(0);
    CANDIES_RETURN_IF_ERROR(PutJob(job));
    ++requeued_on_open_;
  }
  return absl::OkStatus();
}

Store::~Store() { sqlite3_close(db_); }

absl::Status Store::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("store: ", sql, ": ", msg));
  }
  return absl::OkStatus();
}

std::string Store::DatasetPath(const std::string& id) const {
  return (fs::path(data_dir_) / "datasets" / (id + ".h5ad")).string();
}
std::string Store::ResultPath(const std::string& job_id) const {
  return (fs::path(data_dir_) / "results" / (job_id + ".h5ad")).string();
}
std::string Store::DenoisedPath(const std::string& job_id) const {
  return (fs::path(data_dir_) / "results" / (job_id + ".denoised.h5ad")).string();
}
std::string Store::ReportPath(const std::string& job_id) const {
  return (fs::path(data_dir_) / "results" / (job_id + ".report.html")).string();
}
std::string Store::PicturesDir(const std::string& job_id) const {
  return (fs::path(data_dir_) / "results" / (job_id + ".pictures")).string();
}
std::string Store::ModelDir(const std::string& model_id) const {
  return (fs::path(data_dir_) / "models" / model_id).string();
}

absl::Status Store::PutModel(const v1::Model& model) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO models VALUES (?1, ?2, ?3)");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Text(1, model.id());
  st.Int(2, model.created_unix());
  st.Blob(3, model.SerializeAsString());
  if (st.Step() != SQLITE_DONE) return SqlError(db_, "put model");
  return absl::OkStatus();
}

std::vector<v1::Model> Store::ListModels() {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT msg FROM models ORDER BY created DESC, id");
  return ReadMessages<v1::Model>(st);
}

absl::Status Store::DeleteModel(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt del(db_, "DELETE FROM models WHERE id = ?1");
  del.Text(1, id);
  if (del.Step() != SQLITE_DONE) return SqlError(db_, "delete model");
  if (sqlite3_changes(db_) == 0) return NotFound("model", id);
  // Row first, folder second (as for datasets).
  std::error_code ec;
  fs::remove_all(ModelDir(id), ec);
  return absl::OkStatus();
}

absl::Status Store::PutDataset(v1::Dataset& dataset, const AnnData& adata) {
  const std::string path = DatasetPath(dataset.id());
  const std::string tmp = path + ".tmp";
  CANDIES_RETURN_IF_ERROR(WriteH5ad(adata, tmp));
  CANDIES_RETURN_IF_ERROR(DurableRename(tmp, path));
  std::error_code ec;
  dataset.set_size_bytes(static_cast<int64_t>(fs::file_size(path, ec)));
  return PutDatasetRow(dataset, path, /*owned=*/true);
}

absl::Status Store::PutDatasetRow(const v1::Dataset& dataset, const std::string& path,
                                  bool owned) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO datasets VALUES (?1, ?2, ?5, ?3, ?4)");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Int(5, owned ? 1 : 0);
  st.Text(1, dataset.id());
  st.Text(2, path);
  st.Int(3, dataset.created_unix());
  st.Blob(4, dataset.SerializeAsString());
  if (st.Step() != SQLITE_DONE) return SqlError(db_, "insert dataset");
  return absl::OkStatus();
}

absl::StatusOr<v1::Dataset> Store::GetDataset(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT msg FROM datasets WHERE id = ?1");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Text(1, id);
  if (st.Step() != SQLITE_ROW) return NotFound("dataset", id);
  v1::Dataset d;
  if (!d.ParseFromString(st.ColumnBlob(0))) return absl::DataLossError("store: corrupt dataset row " + id);
  return d;
}

absl::StatusOr<std::string> Store::GetDatasetFile(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT path, owned FROM datasets WHERE id = ?1");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Text(1, id);
  if (st.Step() != SQLITE_ROW) return NotFound("dataset", id);
  // Checked at use: jobs parse only the validated copies in the data dir. Rows
  // of older daemons pointed at the registered path itself, which can have
  // been swapped (for a symlink to another file) since it was checked.
  if (sqlite3_column_int(st.get(), 1) == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset ", id, " was registered by an older candiesd without a validated copy; "
        "register the file again"));
  }
  return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)));
}

std::vector<v1::Dataset> Store::ListDatasets() {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT msg FROM datasets ORDER BY created DESC, id");
  return ReadMessages<v1::Dataset>(st);
}

absl::Status Store::DeleteDataset(const std::string& id) {
  absl::MutexLock lock(&mu_);
  std::string path;
  bool owned = false;
  {
    Stmt st(db_, "SELECT path, owned FROM datasets WHERE id = ?1");
    st.Text(1, id);
    if (st.Step() != SQLITE_ROW) return NotFound("dataset", id);
    path = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
    owned = sqlite3_column_int(st.get(), 1) != 0;
  }
  Stmt del(db_, "DELETE FROM datasets WHERE id = ?1");
  del.Text(1, id);
  if (del.Step() != SQLITE_DONE) return SqlError(db_, "delete dataset");
  // Row first, file second: a crash in between leaves an orphan file, never a
  // row pointing at nothing. Registered files are not ours to delete.
  if (owned) {
    std::error_code ec;
    fs::remove(path, ec);
  }
  return absl::OkStatus();
}

absl::Status Store::PutJob(const v1::Job& job) {
  absl::MutexLock lock(&mu_);
  // seq keeps submission order stable among jobs created in the same second.
  Stmt st(db_,
          "INSERT INTO jobs (id, state, created, seq, msg, attempts) "
          "VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?4, ?5) "
          "ON CONFLICT(id) DO UPDATE SET state = excluded.state, msg = excluded.msg, "
          "attempts = excluded.attempts");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Text(1, job.id());
  st.Int(2, job.state());
  st.Int(3, job.created_unix());
  st.Blob(4, job.SerializeAsString());
  st.Int(5, std::max(1, job.attempt()));
  if (st.Step() != SQLITE_DONE) return SqlError(db_, "put job");
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> Store::GetJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, "SELECT msg FROM jobs WHERE id = ?1");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Text(1, id);
  if (st.Step() != SQLITE_ROW) return NotFound("job", id);
  v1::Job j;
  if (!j.ParseFromString(st.ColumnBlob(0))) return absl::DataLossError("store: corrupt job row " + id);
  return j;
}

std::vector<v1::Job> Store::ListJobs(v1::JobState state) {
  absl::MutexLock lock(&mu_);
  Stmt st(db_, state == v1::JOB_STATE_UNSPECIFIED
                   ? "SELECT msg FROM jobs ORDER BY seq DESC"
                   : "SELECT msg FROM jobs WHERE state = ?1 ORDER BY seq DESC");
  if (state != v1::JOB_STATE_UNSPECIFIED) st.Int(1, state);
  return ReadMessages<v1::Job>(st);
}

}  // namespace candies::server
