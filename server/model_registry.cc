#include "server/model_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/errors.h"
#include "server/log.h"

namespace candies::server {

ModelRegistry::ModelRegistry(int64_t budget_bytes, Store* store, JobBackend* backend,
                             std::function<void(int, int64_t)> on_change)
    : budget_bytes_(budget_bytes), store_(store), backend_(backend),
      on_change_(std::move(on_change)) {
  absl::MutexLock lock(&mu_);
  for (v1::Model& m : store_->ListModels()) {
    m.set_resident(false);
    entries_[m.id()].record = std::move(m);
  }
  NotifyLocked();
}

absl::Status ModelRegistry::LoadPinned() {
  absl::MutexLock lock(&mu_);
  absl::Status first;
  for (auto& [id, e] : entries_) {
    if (!e.record.pinned()) continue;
    absl::Status s = MakeResidentLocked(&e);
    if (!s.ok()) {
      LogLine("warn", "pinned model not loaded", {{"model", id}, {"error", s.ToString()}});
      if (first.ok()) first = s;
    }
  }
  NotifyLocked();
  return first;
}

absl::StatusOr<v1::Model> ModelRegistry::Add(v1::Model record) {
  absl::MutexLock lock(&mu_);
  record.set_resident(false);
  record.set_pinned(false);
  CANDIES_RETURN_IF_ERROR(store_->PutModel(record));
  Entry& e = entries_[record.id()];
  e.record = std::move(record);
  absl::Status s = MakeResidentLocked(&e);
  // The description (sizes, kinds) comes from the loaded model: keep it.
  if (s.ok()) (void)store_->PutModel(e.record);
  NotifyLocked();
  if (!s.ok()) return s;
  return ViewLocked(e);
}

absl::StatusOr<std::shared_ptr<const ResidentModel>> ModelRegistry::Acquire(const std::string& id) {
  absl::MutexLock lock(&mu_);
  CANDIES_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  CANDIES_RETURN_IF_ERROR(MakeResidentLocked(e));
  NotifyLocked();
  return e->model;
}

absl::StatusOr<v1::Model> ModelRegistry::Get(const std::string& id) {
  absl::MutexLock lock(&mu_);
  CANDIES_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  return ViewLocked(*e);
}

std::vector<v1::Model> ModelRegistry::List() {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Model> out;
  for (const auto& [id, e] : entries_) out.push_back(ViewLocked(e));
  std::sort(out.begin(), out.end(), [](const v1::Model& a, const v1::Model& b) {
    return a.created_unix() != b.created_unix() ? a.created_unix() > b.created_unix() : a.id() < b.id();
  });
  return out;
}

absl::StatusOr<v1::Model> ModelRegistry::Load(const std::string& id) {
  absl::MutexLock lock(&mu_);
  CANDIES_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  absl::Status s = MakeResidentLocked(e);
  NotifyLocked();
  CANDIES_RETURN_IF_ERROR(s);
  return ViewLocked(*e);
}

absl::StatusOr<v1::Model> ModelRegistry::Unload(const std::string& id) {
  absl::MutexLock lock(&mu_);
  CANDIES_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  e->model.reset();
  if (e->record.pinned()) {
    e->record.set_pinned(false);
    CANDIES_RETURN_IF_ERROR(store_->PutModel(e->record));
  }
  NotifyLocked();
  return ViewLocked(*e);
}

absl::StatusOr<v1::Model> ModelRegistry::Pin(const std::string& id, bool pin) {
  absl::MutexLock lock(&mu_);
  CANDIES_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  if (pin) {
    // Resident first: a pinned model that cannot be in memory is a broken promise.
    absl::Status s = MakeResidentLocked(e);
    NotifyLocked();
    CANDIES_RETURN_IF_ERROR(s);
  }
  e->record.set_pinned(pin);
  CANDIES_RETURN_IF_ERROR(store_->PutModel(e->record));
  return ViewLocked(*e);
}

absl::StatusOr<v1::Model> ModelRegistry::Publish(const std::string& id, bool shared) {
  absl::MutexLock lock(&mu_);
  CANDIES_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  e->record.set_shared(shared);
  CANDIES_RETURN_IF_ERROR(store_->PutModel(e->record));
  return ViewLocked(*e);
}

absl::Status ModelRegistry::Delete(const std::string& id) {
  absl::MutexLock lock(&mu_);
  CANDIES_RETURN_IF_ERROR(FindLocked(id).status());
  CANDIES_RETURN_IF_ERROR(store_->DeleteModel(id));
  entries_.erase(id);
  NotifyLocked();
  return absl::OkStatus();
}

int64_t ModelRegistry::resident_bytes() {
  absl::MutexLock lock(&mu_);
  return ResidentBytesLocked();
}

absl::StatusOr<ModelRegistry::Entry*> ModelRegistry::FindLocked(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return NotFound("model", id);
  return &it->second;
}

absl::Status ModelRegistry::MakeResidentLocked(Entry* e) {
  e->last_used = ++tick_;
  e->record.set_last_used_unix(NowUnix());
  if (e->model != nullptr) return absl::OkStatus();
  CANDIES_ASSIGN_OR_RETURN(std::shared_ptr<const ResidentModel> m,
                           backend_->LoadModel(store_->ModelDir(e->record.id())));
  const int64_t need = m->bytes();
  if (need > budget_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model ", e->record.id(), ": ", need, " bytes exceed model-memory-budget = ", budget_bytes_));
  }
  // Evict the least recently used unpinned models until it fits.
  while (ResidentBytesLocked() + need > budget_bytes_) {
    Entry* victim = nullptr;
    for (auto& [id, other] : entries_) {
      if (&other == e || other.model == nullptr || other.record.pinned()) continue;
      if (victim == nullptr || other.last_used < victim->last_used) victim = &other;
    }
    if (victim == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "model ", e->record.id(), ": ", need, " bytes do not fit model-memory-budget = ",
          budget_bytes_, " beside ", ResidentBytesLocked(), " bytes of pinned models"));
    }
    LogLine("info", "model evicted", {{"model", victim->record.id()},
                                      {"bytes", absl::StrCat(victim->model->bytes())}});
    victim->model.reset();
  }
  e->model = std::move(m);
  const ResidentModel::Info info = e->model->info();
  e->record.set_bytes(need);
  e->record.set_low_quality(info.low_quality);
  e->record.set_low_kind(info.low_kind);
  e->record.set_high_kind(info.high_kind);
  e->record.set_n_high_features(info.n_high_features);
  e->record.set_n_low_features(info.n_low_features);
  return absl::OkStatus();
}

int64_t ModelRegistry::ResidentBytesLocked() const {
  int64_t total = 0;
  for (const auto& [id, e] : entries_) {
    if (e.model != nullptr) total += e.model->bytes();
  }
  return total;
}

v1::Model ModelRegistry::ViewLocked(const Entry& e) const {
  v1::Model m = e.record;
  m.set_resident(e.model != nullptr);
  return m;
}

void ModelRegistry::NotifyLocked() {
  if (!on_change_) return;
  int n = 0;
  for (const auto& [id, e] : entries_) n += e.model != nullptr;
  on_change_(n, ResidentBytesLocked());
}

}  // namespace candies::server
