// Reading Slurm's answers (server/slurm_state.h): scontrol's text as captured
// from slurm-wlm 22.05 on localhost (tests/server/slurm_cluster.sh), and odd
// text, which must give a clear error and never a crash.
#include "server/slurm_state.h"

#include <gtest/gtest.h>

#include <string>

namespace candies::server {
namespace {

// `scontrol show job -o 1` of `sbatch --wrap "exit 3"`.
constexpr char kFailedExit3[] = R"(JobId=1 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-12-03T16:31:59 EligibleTime=2026-12-03T16:31:59 AccrueTime=2026-12-03T16:31:59 StartTime=2026-12-03T16:32:01 EndTime=2026-12-03T16:32:02 Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-03T16:32:01 Scheduler=Main Partition=debug AllocNode:Sid=localhost:14555 ReqNodeList=(null) ExcNodeList=(null) NodeList=vm BatchHost=vm NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,mem=512M,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryCPU=512M MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/tmp/tmp.DuAy3jFYN0 StdErr=/dev/null StdIn=/dev/null StdOut=/dev/null Power= 
)";
// `scontrol show job 2` (multi-line form) after `scancel 2`.
constexpr char kCancelledMultiLine[] = R"(JobId=2 JobName=wrap
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901758 Nice=0 Account=(null) QOS=(null)
   JobState=CANCELLED Reason=None Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15
   RunTime=00:00:08 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2026-12-03T16:31:59 EligibleTime=2026-12-03T16:31:59
   AccrueTime=2026-12-03T16:31:59
   StartTime=2026-12-03T16:32:01 EndTime=2026-12-03T16:32:09 Deadline=N/A
   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-03T16:32:01 Scheduler=Main
   Partition=debug AllocNode:Sid=localhost:14555
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=vm
   BatchHost=vm
   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=1,mem=512M,node=1,billing=1
   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*
   MinCPUsNode=1 MinMemoryCPU=512M MinTmpDiskNode=0
   Features=(null) DelayBoot=00:00:00
   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)
   Command=(null)
   WorkDir=/tmp/tmp.DuAy3jFYN0
   StdErr=/tmp/tmp.DuAy3jFYN0/gpu.out
   StdIn=/dev/null
   StdOut=/tmp/tmp.DuAy3jFYN0/gpu.out
   Power=
   TresPerNode=gres:gpu:1
   

)";
// `scontrol show job -o 5` of a running job with --gres=gpu:1.
constexpr char kRunning[] = R"(JobId=5 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901755 Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:02 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-12-03T16:33:34 EligibleTime=2026-12-03T16:33:34 AccrueTime=2026-12-03T16:33:34 StartTime=2026-12-03T16:33:35 EndTime=Unknown Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-03T16:33:35 Scheduler=Main Partition=debug AllocNode:Sid=localhost:14555 ReqNodeList=(null) ExcNodeList=(null) NodeList=vm BatchHost=vm NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,mem=512M,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryCPU=512M MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/work/main StdErr=/dev/null StdIn=/dev/null StdOut=/dev/null Power= TresPerNode=gres:gpu:1 
)";

TEST(SlurmStateTest, ReadsCapturedScontrolOutput) {
  absl::StatusOr<SlurmJob> failed = ParseScontrolJob(kFailedExit3, "1");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->id, "1");
  EXPECT_EQ(failed->state, "FAILED");
  EXPECT_EQ(failed->reason, "NonZeroExitCode");
  EXPECT_EQ(failed->exit_code, 3);
  EXPECT_EQ(failed->exit_signal, 0);
  EXPECT_EQ(failed->node_list, "vm");

  absl::StatusOr<SlurmJob> cancelled = ParseScontrolJob(kCancelledMultiLine, "2");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state, "CANCELLED");
  EXPECT_EQ(cancelled->exit_code, 0);
  EXPECT_EQ(cancelled->exit_signal, 15);

  absl::StatusOr<SlurmJob> running = ParseScontrolJob(kRunning, "5");
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state, "RUNNING");
  EXPECT_EQ(*ClassifySlurmState(running->state), SlurmOutcome::kActive);
}

TEST(SlurmStateTest, PicksTheAskedJobAmongSeveral) {
  const std::string both = std::string(kFailedExit3) + kRunning;
  absl::StatusOr<SlurmJob> job = ParseScontrolJob(both, "5");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state, "RUNNING");
  // JobId=1 must not match job 12 (whole values only).
  absl::StatusOr<SlurmJob> other = ParseScontrolJob(kFailedExit3, "12");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("other jobs"), std::string::npos) << other.status();
}

TEST(SlurmStateTest, OddOutputIsAClearError) {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"", "no JobId="},
      {"slurm_load_jobs error: Socket timed out on send/recv operation", "no JobId="},
      {"JobId=7 JobName=x Reason=None ExitCode=0:0", "no JobState"},
      {"JobId=7 JobState= ExitCode=0:0", "no JobState"},
      {"JobId=7 JobState=RUNNING ExitCode=zero", "is not CODE:SIGNAL"},
      {"JobId=7 JobState=RUNNING ExitCode=1:2:3", "is not CODE:SIGNAL"},
      {"JobId=7 JobState=RUNNING ExitCode=-1:0", "is not CODE:SIGNAL"},
      {"JobId=7 JobState=RUNNING ExitCode=99999999999999999999:0", "is not CODE:SIGNAL"},
      {"JobId=8 JobState=RUNNING", "other jobs"},
      {"\x01\x02=\xff JobId", "no JobId="},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SlurmJob> job = ParseScontrolJob(c.text, "7");
    ASSERT_FALSE(job.ok()) << c.text;
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInternal) << c.text;
    EXPECT_NE(job.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << job.status();
  }
  absl::StatusOr<SlurmJob> gone =
      ParseScontrolJob("slurm_load_jobs error: Invalid job id specified\n", "7");
  EXPECT_TRUE(absl::IsNotFound(gone.status())) << gone.status();
  EXPECT_TRUE(IsUnknownJobError("slurm_load_jobs error: Invalid job id specified\n"));
  EXPECT_FALSE(IsUnknownJobError("slurm_load_jobs error: Unable to contact slurm controller"));
  // A long garbage answer is quoted shortened in the error.
  absl::StatusOr<SlurmJob> long_garbage = ParseScontrolJob(std::string(100000, 'x'), "7");
  ASSERT_FALSE(long_garbage.ok());
  EXPECT_LT(long_garbage.status().message().size(), 400u);
}

TEST(SlurmStateTest, SbatchJobId) {
  EXPECT_EQ(*ParseSbatchJobId("42\n"), "42");
  EXPECT_EQ(*ParseSbatchJobId("42;cluster1\n"), "42");
  EXPECT_EQ(*ParseSbatchJobId("sbatch: warning: something odd\n43\n"), "43");
  for (const char* odd : {"", "\n", "Submitted batch job 42\n", "abc", "-1", ";x",
                          "123456789012345678901234567890"}) {
    absl::StatusOr<std::string> id = ParseSbatchJobId(odd);
    ASSERT_FALSE(id.ok()) << odd;
    EXPECT_NE(id.status().message().find("no job id"), std::string::npos) << id.status();
  }
}

TEST(SlurmStateTest, StatesMapToJobOutcomes) {
  for (const char* s : {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED"}) {
    EXPECT_EQ(*ClassifySlurmState(s), SlurmOutcome::kActive) << s;
  }
  EXPECT_EQ(*ClassifySlurmState("COMPLETED"), SlurmOutcome::kCompleted);
  for (const char* s : {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "CANCELLED by 0", "DEADLINE"}) {
    EXPECT_EQ(*ClassifySlurmState(s), SlurmOutcome::kFailed) << s;
  }
  for (const char* s : {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"}) {
    EXPECT_EQ(*ClassifySlurmState(s), SlurmOutcome::kRetry) << s;
  }
  for (const char* s : {"", "running", "EXPLODED", "COMPLETED\x01"}) {
    absl::StatusOr<SlurmOutcome> o = ClassifySlurmState(s);
    ASSERT_FALSE(o.ok()) << s;
    EXPECT_NE(o.status().message().find("unknown Slurm job state"), std::string::npos);
  }
}

TEST(SlurmStateTest, DescribesWhyAJobEnded) {
  auto describe = [](const char* state, int code, int sig) {
    SlurmJob j;
    j.id = "12";
    j.state = state;
    j.exit_code = code;
    j.exit_signal = sig;
    return DescribeSlurmEnd(j);
  };
  // Measured: kill -9 of the worker -> FAILED 137:0; over --mem -> FAILED 0:9.
  EXPECT_EQ(describe("FAILED", 137, 0), "Slurm job 12 FAILED: the worker was killed by signal 9 (Killed)");
  EXPECT_NE(describe("FAILED", 0, 9).find("killed by signal 9 (Killed): out of memory (slurm-memory)"),
            std::string::npos);
  EXPECT_EQ(describe("FAILED", 2, 0), "Slurm job 12 FAILED: the worker exited with code 2");
  EXPECT_NE(describe("TIMEOUT", 0, 0).find("time limit (slurm-time-limit)"), std::string::npos);
  EXPECT_NE(describe("OUT_OF_MEMORY", 0, 0).find("out of memory"), std::string::npos);
  EXPECT_NE(describe("CANCELLED", 0, 15).find("cancelled on the cluster"), std::string::npos);
  EXPECT_NE(describe("NODE_FAIL", 0, 0).find("node failed"), std::string::npos);
  EXPECT_NE(describe("PREEMPTED", 0, 0).find("preempted"), std::string::npos);
}

}  // namespace
}  // namespace candies::server
