// device-slots (server/device_slots.h): parsing with errors naming the
// entry, the slot pool, and how a worker process is placed on a slot's device.
#include "server/device_slots.h"

#include <gtest/gtest.h>

namespace candies::server {
namespace {

TEST(DeviceSlotsTest, ParsesGoodStrings) {
  absl::StatusOr<std::vector<DeviceSlotGroup>> s = ParseDeviceSlots("cuda:0=1, cuda:1=1, cpu=2");
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<DeviceSlotGroup> want = {{"cuda:0", 1}, {"cuda:1", 1}, {"cpu", 2}};
  EXPECT_EQ(*s, want);
  EXPECT_EQ(FormatDeviceSlots(*s), "cuda:0=1, cuda:1=1, cpu=2");
  // Spaces anywhere around the parts; leading zeros are the same index.
  s = ParseDeviceSlots("  cpu = 3 ,cuda:07=2");
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<DeviceSlotGroup> want2 = {{"cpu", 3}, {"cuda:7", 2}};
  EXPECT_EQ(*s, want2);
  ASSERT_TRUE(ParseDeviceSlots(FormatDeviceSlots(want2)).ok());
  EXPECT_EQ(*ParseDeviceSlots(FormatDeviceSlots(want2)), want2);
}

TEST(DeviceSlotsTest, RefusesBadStringsNamingTheProblem) {
  const struct {
    const char* text;
    const char* says;
  } cases[] = {
      {"", "empty"},
      {"   ", "empty"},
      {"cpu", "is not DEVICE=COUNT"},
      {"cpu=0", "expected a positive integer"},
      {"cpu=-1", "expected a positive integer"},
      {"cpu=two", "has count 'two'"},
      {"cpu=", "has count ''"},
      {"gpu:0=1", "names device 'gpu:0'"},
      {"cuda=1", "names device 'cuda'"},
      {"cuda:=1", "names device 'cuda:'"},
      {"cuda:-1=1", "names device 'cuda:-1'"},
      {"cuda:x=1", "names device 'cuda:x'"},
      {"auto=2", "names device 'auto'"},
      {"CPU=1", "names device 'CPU'"},
      {"cuda:0=1, cuda:00=2", "lists cuda:0 twice"},
      {"cpu=1,", "empty entry"},
      {"cpu=1,,cuda:0=1", "empty entry"},
      {"cpu=1000, cuda:0=100", "more than 1024 slots"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::vector<DeviceSlotGroup>> s = ParseDeviceSlots(c.text);
    ASSERT_FALSE(s.ok()) << "'" << c.text << "' parsed";
    EXPECT_TRUE(absl::IsInvalidArgument(s.status())) << s.status();
    EXPECT_EQ(s.status().message().rfind("device-slots: ", 0), 0u) << s.status();
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << "'" << c.text << "': " << s.status();
  }
}

TEST(DeviceSlotsTest, PoolHandsOutSlotsInListedOrderAndTakesThemBack) {
  SlotPool pool({{"cuda:0", 1}, {"cpu", 2}});
  ASSERT_EQ(pool.size(), 3);
  const int a = pool.Acquire(), b = pool.Acquire(), c = pool.Acquire();
  EXPECT_EQ(pool.device(a), "cuda:0");
  EXPECT_EQ(pool.device(b), "cpu");
  EXPECT_EQ(pool.device(c), "cpu");
  EXPECT_EQ(pool.free(), 0);
  EXPECT_EQ(pool.Acquire(), -1);
  EXPECT_EQ(pool.InUse("cpu"), 2);
  pool.Release(b);
  pool.Release(b);  // twice: no second free slot
  EXPECT_EQ(pool.free(), 1);
  EXPECT_EQ(pool.InUse("cpu"), 1);
  EXPECT_EQ(pool.Acquire(), b);
  pool.Release(a);
  EXPECT_EQ(pool.device(pool.Acquire()), "cuda:0");  // the first listed comes first
}

TEST(DeviceSlotsTest, PlacesWorkersOnTheSlotsDevice) {
  // A cuda slot: that GPU alone, which the worker sees as cuda:0.
  absl::StatusOr<WorkerPlacement> p = PlaceWorker("cuda:2", nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->device, "cuda:0");
  EXPECT_EQ(p->cuda_visible_devices, "2");
  // cuda:N counts the GPUs the daemon sees when its own list is set.
  p = PlaceWorker("cuda:1", "4,6");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->cuda_visible_devices, "6");
  p = PlaceWorker("cuda:0", "GPU-1f3e");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->cuda_visible_devices, "GPU-1f3e");
  p = PlaceWorker("cuda:2", "4,6");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("CUDA_VISIBLE_DEVICES='4,6' names 2 GPU(s)"), std::string::npos)
      << p.status();
  // A cpu slot: no GPU visible at all.
  p = PlaceWorker("cpu", "0,1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->device, "cpu");
  EXPECT_EQ(p->cuda_visible_devices, "");
  // Without device-slots, "auto" and "cuda" leave the environment alone.
  for (const char* d : {"auto", "cuda"}) {
    p = PlaceWorker(d, "3");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->device, d);
    EXPECT_FALSE(p->cuda_visible_devices.has_value());
  }
}

}  // namespace
}  // namespace candies::server
