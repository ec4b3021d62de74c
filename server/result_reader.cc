#include "server/result_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/io/h5ad.h"
#include "core/util/status_macros.h"
#include "server/errors.h"
#include "server/job_vocabulary.h"

namespace candies::server {
namespace fs = std::filesystem;

absl::Status ResultReader::Fetch(const v1::Job& job, const std::string& part_in,
                                 const ChunkSink& write) {
  if (job.state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "id: job ", job.id(), " has no result (state ", v1::JobState_Name(job.state()), ")"));
  }
  const std::string part = part_in.empty() ? "h5ad" : part_in;
  if (part != "h5ad" && part != "denoised_h5ad" && part != "report") return FetchArray(job, part, write);
  return FetchFile(job, part, write);
}

absl::StatusOr<v1::JobMetrics> ResultReader::ReadMetrics(const v1::Job& job) {
  if (job.state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "id: job ", job.id(), " has no result (state ", v1::JobState_Name(job.state()), ")"));
  }
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(job.id());
    if (it != cache_.end()) return it->second;
  }
  // Read without the lock: two first readers of one job both read the file.
  CANDIES_ASSIGN_OR_RETURN(v1::JobMetrics m, ReadMetricsFile(job));
  absl::MutexLock lock(&cache_mu_);
  if (cache_size_ > 0 && cache_.emplace(job.id(), m).second) {
    cache_order_.push_back(job.id());
    while (static_cast<int>(cache_order_.size()) > cache_size_) {
      cache_.erase(cache_order_.front());
      cache_order_.pop_front();
    }
  }
  return m;
}

absl::StatusOr<v1::JobMetrics> ResultReader::ReadMetricsFile(const v1::Job& job) {
  ReadOptions options;  // uns is what is wanted; the big optional parts are skipped
  options.read_layers = false;
  options.read_obsp = false;
  options.read_varm = false;
  CANDIES_ASSIGN_OR_RETURN(AnnData a, ReadH5ad(store_->ResultPath(job.id()), options));
  v1::JobMetrics out;
  out.set_job_id(job.id());
  out.set_n_obs(static_cast<int64_t>(a.obs.index.size()));
  const UnsValue* candies = a.uns.Find("candies");
  if (candies == nullptr || candies->kind != UnsValue::Kind::kMap) return out;
  // Numbers of a map: floats, and ints written by other tools.
  auto numbers = [&](const char* key, google::protobuf::Map<std::string, double>* to) {
    const UnsValue* m = candies->Find(key);
    if (m == nullptr || m->kind != UnsValue::Kind::kMap) return;
    for (const auto& [k, v] : m->children) {
      if (v.kind == UnsValue::Kind::kFloat) (*to)[k] = v.f;
      if (v.kind == UnsValue::Kind::kInt) (*to)[k] = static_cast<double>(v.i);
    }
  };
  numbers("metrics", out.mutable_metrics());
  numbers("seconds", out.mutable_stage_seconds());
  if (const UnsValue* low = candies->Find("low_quality");
      low != nullptr && low->kind == UnsValue::Kind::kString) {
    out.set_low_quality(low->str);
  }
  if (const UnsValue* w = candies->Find("warnings");
      w != nullptr && w->kind == UnsValue::Kind::kStringArray) {
    for (const std::string& s : w->strings) out.add_warnings(s);
  }
  return out;
}

absl::Status ResultReader::FetchFile(const v1::Job& job, const std::string& part,
                                     const ChunkSink& write) {
  const std::string path = part == "h5ad"     ? store_->ResultPath(job.id())
                           : part == "report" ? store_->ReportPath(job.id())
                                              : store_->DenoisedPath(job.id());
  if (part == "report" && !fs::exists(path)) {
    return absl::NotFoundError(absl::StrCat("part: job ", job.id(), " has no report (the daemon "
                                            "logged why it could not draw it)"));
  }
  if (part == "denoised_h5ad" && !fs::exists(path)) {
    return absl::NotFoundError(absl::StrCat("part: job ", job.id(), " made no denoised matrix (kind ",
                                            KindName(job.spec()), ")"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::DataLossError(absl::StrCat("result file of ", job.id(), " is missing"));
  std::error_code ec;
  const int64_t total = static_cast<int64_t>(fs::file_size(path, ec));
  std::string buf(static_cast<size_t>(chunk_bytes_), '\0');
  bool first = true;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    v1::ResultChunk c;
    c.set_data(buf.data(), static_cast<size_t>(got));
    if (first) c.set_total_bytes(total);
    first = false;
    if (!write(c)) return absl::CancelledError("client went away");
    metrics_->BytesDownloaded(static_cast<double>(got));
  }
  return absl::OkStatus();
}

absl::Status ResultReader::FetchArray(const v1::Job& job, const std::string& part,
                                      const ChunkSink& write) {
  static const std::set<std::string> kObsm = {"X_candies", "X_candies_mod1", "X_candies_mod2",
                                              "X_candies_denoised", "spatial"};
  if (kObsm.count(part) == 0 && part != "candies_cluster" && part != "denoised_matrix") {
    return Invalid("part", absl::StrCat("'", part, "' is not h5ad, denoised_h5ad, report, X_candies, "
                                        "X_candies_mod1, X_candies_mod2, X_candies_denoised, "
                                        "spatial, candies_cluster or denoised_matrix"));
  }
  const bool denoised = part == "denoised_matrix";
  const std::string path = denoised ? store_->DenoisedPath(job.id()) : store_->ResultPath(job.id());
  if (denoised && !fs::exists(path)) {
    return absl::NotFoundError(absl::StrCat("part: job ", job.id(), " made no denoised matrix (kind ",
                                            KindName(job.spec()), ")"));
  }
  CANDIES_ASSIGN_OR_RETURN(AnnData a, ReadH5ad(path));
  std::vector<int32_t> labels;
  Matrix m;
  if (part == "candies_cluster") {
    const Column* c = a.obs.Find("candies_cluster");
    if (c == nullptr || c->kind != Column::Kind::kCategorical) {
      return absl::DataLossError(absl::StrCat("result of ", job.id(), " has no obs[candies_cluster]"));
    }
    // Categories are the domain numbers as text ("0", "1", ...).
    for (int32_t code : c->codes) {
      int32_t v = -1;
      if (code >= 0 && !absl::SimpleAtoi(c->categories[static_cast<size_t>(code)], &v)) v = code;
      labels.push_back(v);
    }
    m.n_rows = static_cast<int64_t>(labels.size());
    m.n_cols = 1;
  } else if (denoised) {
    m = ToDense(a.X);
  } else {
    auto it = a.obsm.find(part);
    if (it == a.obsm.end()) {
      return absl::NotFoundError(absl::StrCat("part: the result of job ", job.id(), " has no obsm[\"",
                                              part, "\"] (kind ", KindName(job.spec()), ")"));
    }
    m = ToDense(it->second);
  }
  const int64_t cols = std::max<int64_t>(1, m.n_cols);
  const int64_t rows_per_chunk = std::max<int64_t>(1, chunk_bytes_ / 4 / cols);
  for (int64_t r = 0; r < m.n_rows || r == 0; r += rows_per_chunk) {
    const int64_t end = std::min(m.n_rows, r + rows_per_chunk);
    v1::ResultChunk c;
    c.set_n_rows(m.n_rows);
    c.set_n_cols(m.n_cols);
    c.set_row_offset(r);
    if (r == 0) {
      for (const auto& n : a.obs.index) c.add_obs_names(n);
      if (denoised) {
        for (const auto& n : a.var.index) c.add_var_names(n);
      }
    }
    if (!labels.empty()) {
      c.mutable_labels()->Add(labels.begin() + r, labels.begin() + end);
    } else if (end > r) {
      c.mutable_values()->Add(m.values.begin() + r * m.n_cols, m.values.begin() + end * m.n_cols);
    }
    if (!write(c)) return absl::CancelledError("client went away");
    metrics_->BytesDownloaded(static_cast<double>((end - r) * cols * 4));
    if (m.n_rows == 0) break;
  }
  return absl::OkStatus();
}

}  // namespace candies::server
