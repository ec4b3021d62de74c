// The sandbox (core/util/subprocess.h): a child's crash, hang or runaway
// allocation is reported, not suffered; output comes back; nothing leaks in.
#include "core/util/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace candies {
namespace {

SandboxLimits Quick() {
  SandboxLimits l;
  l.wall_seconds = 2;
  l.cpu_seconds = 2;
  l.max_memory_bytes = int64_t{256} << 20;
  return l;
}

TEST(Sandbox, OutputAndExitCodeComeBack) {
  absl::StatusOr<SandboxResult> r =
      RunSandboxed({"/bin/sh", "-c", "echo hello; echo oops >&2; exit 3"}, Quick());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "hello\n");
  EXPECT_EQ(r->errors, "oops\n");
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->Describe(), "exited with code 3");
}

TEST(Sandbox, CrashIsReportedWithTheSignal) {
  absl::StatusOr<SandboxResult> r = RunInChild(
      [](int) {
        raise(SIGSEGV);
        return 0;
      },
      Quick());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->signal, SIGSEGV);
  EXPECT_EQ(r->Describe(), "killed by signal 11 (Segmentation fault)");
}

TEST(Sandbox, HangIsKilledAtTheWallClockLimit) {
  SandboxLimits l = Quick();
  l.wall_seconds = 0.5;
  absl::StatusOr<SandboxResult> r = RunSandboxed({"/bin/sleep", "30"}, l);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
}

TEST(Sandbox, MemoryLimitStopsARunawayAllocation) {
  absl::StatusOr<SandboxResult> r = RunInChild(
      [](int out) {
        void* p = std::malloc(size_t{1} << 30);  // 1 GiB over a 256 MiB limit
        const char* msg = p == nullptr ? "refused" : "granted";
        return write(out, msg, std::strlen(msg)) > 0 ? 0 : 1;
      },
      Quick());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->output, "refused");
}

TEST(Sandbox, NoDescriptorIsInherited) {
  int fd = open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 3);
  absl::StatusOr<SandboxResult> r =
      RunSandboxed({"/bin/sh", "-c", "ls /proc/self/fd | wc -l"}, Quick());
  close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  // 0, 1, 2 and the one ls opens to list the directory.
  EXPECT_EQ(std::atoi(r->output.c_str()), 4) << r->output;
}

TEST(Sandbox, MissingBinaryIsAnError) {
  absl::StatusOr<SandboxResult> r = RunSandboxed({"/nonexistent/helper"}, Quick());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
}

}  // namespace
}  // namespace candies
