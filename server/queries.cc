#include "server/queries.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/errors.h"

namespace candies::server {

absl::StatusOr<v1::Dataset> Queries::SeenDataset(const Principal& who, const std::string& id) {
  auto d = store_->GetDataset(id);
  if (d.ok() && !who.Sees(d->owner())) return NotFound("dataset", id);
  return d;
}

absl::StatusOr<v1::Job> Queries::SeenJob(const Principal& who, const std::string& id) {
  auto j = store_->GetJob(id);
  if (j.ok() && !who.Sees(j->owner())) return NotFound("job", id);
  return j;
}

absl::StatusOr<v1::Model> Queries::SeenModel(const Principal& who, const std::string& id) {
  auto m = models_->Get(id);
  if (m.ok() && !who.Sees(m->owner()) && !m->shared()) return NotFound("model", id);
  return m;
}

absl::StatusOr<v1::Job> Queries::GetJob(const Principal& who, const std::string& id) {
  if (id.empty()) return Invalid("id", "is empty");
  CANDIES_ASSIGN_OR_RETURN(v1::Job job, SeenJob(who, id));
  tracker_->Decorate(&job);
  return job;
}

absl::StatusOr<v1::ListJobsResponse> Queries::ListJobs(const Principal& who,
                                                       const v1::ListJobsRequest& req) {
  if (req.page_size() < 0 || req.page_size() > options_.max_page_size) {
    return Invalid("page_size", absl::StrCat("must be in [0, ", options_.max_page_size,
                                             "] (max-page-size)"));
  }
  const int page = req.page_size() == 0 ? std::min(100, options_.max_page_size) : req.page_size();
  int64_t offset = 0;
  if (!req.page_token().empty() && (!absl::SimpleAtoi(req.page_token(), &offset) || offset < 0)) {
    return Invalid("page_token", "is not a token from a previous ListJobs");
  }
  std::vector<v1::Job> jobs = store_->ListJobs(req.state());
  jobs.erase(std::remove_if(jobs.begin(), jobs.end(),
                            [&](const v1::Job& j) { return !who.Sees(j.owner()); }),
             jobs.end());
  const std::map<std::string, int> positions = scheduler_->QueuePositions();
  v1::ListJobsResponse out;
  for (int64_t i = offset; i < static_cast<int64_t>(jobs.size()) && i < offset + page; ++i) {
    v1::Job* j = out.add_jobs();
    *j = std::move(jobs[static_cast<size_t>(i)]);
    tracker_->Decorate(j, &positions);
  }
  if (offset + page < static_cast<int64_t>(jobs.size())) {
    out.set_next_page_token(absl::StrCat(offset + page));
  }
  return out;
}

v1::ListDatasetsResponse Queries::ListDatasets(const Principal& who) {
  v1::ListDatasetsResponse out;
  for (auto& d : store_->ListDatasets()) {
    if (who.Sees(d.owner())) *out.add_datasets() = std::move(d);
  }
  return out;
}

v1::ListModelsResponse Queries::ListModels(const Principal& who) {
  v1::ListModelsResponse out;
  for (v1::Model& m : models_->List()) {
    if (who.Sees(m.owner()) || m.shared()) *out.add_models() = std::move(m);
  }
  out.set_resident_bytes(models_->resident_bytes());
  out.set_budget_bytes(models_->budget_bytes());
  return out;
}

v1::QueueStatus Queries::Queue(const Principal& who) {
  v1::QueueStatus out;
  out.set_queued(scheduler_->queued());
  out.set_running(scheduler_->running());
  out.set_workers(options_.workers);
  out.set_max_queue(options_.max_queue);
  const std::map<std::string, int> positions = scheduler_->QueuePositions();
  std::vector<v1::Job> jobs;
  for (v1::JobState s : {v1::JOB_STATE_RUNNING, v1::JOB_STATE_QUEUED}) {
    for (v1::Job& j : store_->ListJobs(s)) {
      if (!who.Sees(j.owner())) continue;
      tracker_->Decorate(&j, &positions);
      jobs.push_back(std::move(j));
    }
  }
  // Running first (position -1), then in run order; ties keep the store's order.
  std::stable_sort(jobs.begin(), jobs.end(), [](const v1::Job& a, const v1::Job& b) {
    return a.queue_position() < b.queue_position();
  });
  for (v1::Job& j : jobs) *out.add_jobs() = std::move(j);
  return out;
}

absl::StatusOr<v1::JobMetrics> Queries::JobMetrics(const Principal& who, const std::string& id) {
  if (id.empty()) return Invalid("id", "is empty");
  CANDIES_ASSIGN_OR_RETURN(v1::Job job, SeenJob(who, id));
  return results_->ReadMetrics(job);
}

absl::StatusOr<std::string> Queries::Report(const Principal& who, const std::string& id,
                                            int64_t max_bytes) {
  if (id.empty()) return Invalid("id", "is empty");
  CANDIES_ASSIGN_OR_RETURN(v1::Job job, SeenJob(who, id));
  std::string html;
  int64_t total = 0;
  bool too_big = false;
  absl::Status s = results_->Fetch(job, "report", [&](const v1::ResultChunk& c) {
    total = std::max<int64_t>(total, c.total_bytes());
    too_big = total > max_bytes || static_cast<int64_t>(html.size() + c.data().size()) > max_bytes;
    if (too_big) return false;  // Fetch stops reading
    html += c.data();
    return true;
  });
  if (too_big) {
    return absl::ResourceExhaustedError(absl::StrCat("report: job ", id, "'s report is ", total,
                                                     " bytes, above http-max-report-bytes = ",
                                                     max_bytes));
  }
  CANDIES_RETURN_IF_ERROR(s);
  return html;
}

}  // namespace candies::server
