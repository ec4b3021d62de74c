#include "server/device_slots.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace candies::server {
namespace {

// Slots are scheduler threads: a typo like cpu=100000 must not start that many.
constexpr int kMaxSlots = 1024;

absl::Status Bad(absl::string_view entry, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("device-slots: '", entry, "' ", problem));
}

// "cpu" or "cuda:N" (N a non-negative integer, written without sign), normalized.
std::optional<std::string> SlotDevice(absl::string_view d) {
  if (d == "cpu") return std::string(d);
  if (!absl::ConsumePrefix(&d, "cuda:") || d.empty() || d.size() > 4) return std::nullopt;
  for (char c : d) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int index = 0;
  if (!absl::SimpleAtoi(d, &index)) return std::nullopt;
  return absl::StrCat("cuda:", index);
}

}  // namespace

absl::StatusOr<std::vector<DeviceSlotGroup>> ParseDeviceSlots(absl::string_view text) {
  std::vector<DeviceSlotGroup> groups;
  std::set<std::string> seen;
  int total = 0;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError("device-slots: empty; expected DEVICE=COUNT, ... like cuda:0=1, cpu=2");
  }
  for (absl::string_view raw : absl::StrSplit(text, ',')) {
    const absl::string_view entry = absl::StripAsciiWhitespace(raw);
    if (entry.empty()) return Bad(text, "has an empty entry (two commas or a trailing comma)");
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) return Bad(entry, "is not DEVICE=COUNT (like cuda:0=1 or cpu=2)");
    const absl::string_view name = absl::StripAsciiWhitespace(entry.substr(0, eq));
    const absl::string_view count_text = absl::StripAsciiWhitespace(entry.substr(eq + 1));
    const std::optional<std::string> device = SlotDevice(name);
    if (!device) return Bad(entry, absl::StrCat("names device '", name, "'; expected cpu or cuda:N"));
    int count = 0;
    if (!absl::SimpleAtoi(count_text, &count) || count <= 0) {
      return Bad(entry, absl::StrCat("has count '", count_text, "'; expected a positive integer"));
    }
    if (!seen.insert(*device).second) return Bad(entry, absl::StrCat("lists ", *device, " twice"));
    total += count;
    if (total > kMaxSlots) {
      return Bad(text, absl::StrCat("has more than ", kMaxSlots, " slots in all"));
    }
    groups.push_back({*device, count});
  }
  return groups;
}

std::string FormatDeviceSlots(const std::vector<DeviceSlotGroup>& groups) {
  return absl::StrJoin(groups, ", ", [](std::string* out, const DeviceSlotGroup& g) {
    absl::StrAppend(out, g.device, "=", g.count);
  });
}

SlotPool::SlotPool(const std::vector<DeviceSlotGroup>& groups) {
  for (const DeviceSlotGroup& g : groups) {
    for (int i = 0; i < g.count; ++i) device_.push_back(g.device);
  }
  taken_.assign(device_.size(), false);
  free_ = size();
}

int SlotPool::Acquire() {
  for (int i = 0; i < size(); ++i) {
    if (!taken_[i]) {
      taken_[i] = true;
      --free_;
      return i;
    }
  }
  return -1;
}

void SlotPool::Release(int slot) {
  if (slot < 0 || slot >= size() || !taken_[slot]) return;
  taken_[slot] = false;
  ++free_;
}

int SlotPool::InUse(const std::string& device) const {
  int n = 0;
  for (int i = 0; i < size(); ++i) n += taken_[i] && device_[i] == device;
  return n;
}

absl::StatusOr<WorkerPlacement> PlaceWorker(const std::string& device, const char* parent_visible) {
  if (device == "cpu") return WorkerPlacement{"cpu", std::string()};
  absl::string_view index_text = device;
  if (!absl::ConsumePrefix(&index_text, "cuda:")) return WorkerPlacement{device, std::nullopt};
  int index = 0;
  if (!absl::SimpleAtoi(index_text, &index) || index < 0) {
    return absl::InvalidArgumentError(absl::StrCat("device: '", device, "' is not cuda:N"));
  }
  if (parent_visible == nullptr) return WorkerPlacement{"cuda:0", absl::StrCat(index)};
  // cuda:N counts the GPUs the daemon itself sees.
  const std::vector<std::string> visible =
      absl::StrSplit(parent_visible, ',', absl::SkipWhitespace());
  if (index >= static_cast<int>(visible.size())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device ", device, ": the daemon's CUDA_VISIBLE_DEVICES='", parent_visible, "' names ",
        visible.size(), " GPU(s), so there is no ", device, " (check device-slots)"));
  }
  return WorkerPlacement{"cuda:0", std::string(absl::StripAsciiWhitespace(visible[index]))};
}

}  // namespace candies::server
