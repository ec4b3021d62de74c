// Devices as resources (config key `device-slots`, docs/SERVICE.md): how many
// jobs may run at once on each device, e.g. "cuda:0=1, cuda:1=1, cpu=2". The
// scheduler takes a free slot for each job it starts (SlotPool) and gives it
// back when the job ends; the job runs on the slot's device. LibTorch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace candies::server {

// One entry of device-slots: `count` jobs at once on `device` ("cpu" or
// "cuda:N"). Without device-slots the daemon has one group, `workers` slots of
// `device` (which may then also be "auto" or "cuda").
struct DeviceSlotGroup {
  std::string device;
  int count = 0;
  bool operator==(const DeviceSlotGroup& o) const { return device == o.device && count == o.count; }
};

// Parses "DEVICE=COUNT, DEVICE=COUNT, ..." (DEVICE: cpu | cuda:N; COUNT: a
// positive integer; each device at most once). Errors start with "device-slots: "
// and quote the entry at fault.
absl::StatusOr<std::vector<DeviceSlotGroup>> ParseDeviceSlots(absl::string_view text);
// "cuda:0=1, cpu=2": the form ParseDeviceSlots reads.
std::string FormatDeviceSlots(const std::vector<DeviceSlotGroup>& groups);

// The slots of all groups, taken in the order the groups are listed (the
// first free slot of the first group that has one). Not thread-safe: the
// scheduler calls it under its lock.
class SlotPool {
 public:
  explicit SlotPool(const std::vector<DeviceSlotGroup>& groups);
  int size() const { return static_cast<int>(device_.size()); }
  int free() const { return free_; }
  // A free slot's index, or -1 when all are taken.
  int Acquire();
  void Release(int slot);
  const std::string& device(int slot) const { return device_[slot]; }
  // Slots of `device` in use now.
  int InUse(const std::string& device) const;

 private:
  std::vector<std::string> device_;  // per slot
  std::vector<bool> taken_;          // per slot
  int free_ = 0;
};

// How a worker process is started for a job on `device`: the device the
// worker is told and the CUDA_VISIBLE_DEVICES it gets (none: inherited as is).
// "cuda:N" -> the daemon's Nth visible GPU alone, seen by the worker as
// cuda:0 (`parent_visible` is the daemon's CUDA_VISIBLE_DEVICES, null when
// unset: N is then the physical index); "cpu" -> no GPU visible; "auto" and
// "cuda" -> unchanged. An N beyond the daemon's list is an error naming it.
struct WorkerPlacement {
  std::string device;
  std::optional<std::string> cuda_visible_devices;
};
absl::StatusOr<WorkerPlacement> PlaceWorker(const std::string& device, const char* parent_visible);

}  // namespace candies::server
