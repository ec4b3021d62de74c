// Slurm time limits (server/slurm_time.h): the forms slurm-time-limit takes,
// and a job's --time from its deadline.
#include "server/slurm_time.h"

#include <gtest/gtest.h>

namespace candies::server {
namespace {

TEST(SlurmTimeTest, ParsesSlurmsForms) {
  const struct {
    const char* text;
    int64_t seconds;
  } good[] = {{"90", 90 * 60},          {"5:30", 5 * 60 + 30},   {"1:02:03", 3723},
              {"2-3", 2 * 86400 + 3 * 3600}, {"1-00:30", 86400 + 1800}, {"1-00:00:00", 86400},
              {"0", 0}};
  for (const auto& g : good) {
    absl::StatusOr<int64_t> s = ParseSlurmTime(g.text);
    ASSERT_TRUE(s.ok()) << g.text << ": " << s.status();
    EXPECT_EQ(*s, g.seconds) << g.text;
  }
  for (const char* bad : {"", "-", "1-", "-5", "1:2:3:4", "1-2:3:4:5", "a", "1:x", "1--2", "1:-2",
                          "unlimited", "1 ", "12345678901"}) {
    absl::StatusOr<int64_t> s = ParseSlurmTime(bad);
    EXPECT_FALSE(s.ok()) << "'" << bad << "' parsed";
    if (!s.ok()) {
      EXPECT_NE(s.status().message().find(std::string("'") + bad + "'"), std::string::npos) << s.status();
    }
  }
}

TEST(SlurmTimeTest, JobTimeIsTheSoonerOfLimitAndDeadline) {
  // No deadline: the configured limit as written (or none).
  EXPECT_EQ(SlurmTimeForJob("1-00:00:00", -1), "1-00:00:00");
  EXPECT_EQ(SlurmTimeForJob("", -1), "");
  // A deadline before the limit: whole minutes, rounded up, at least one.
  EXPECT_EQ(SlurmTimeForJob("1-00:00:00", 90), "2");
  EXPECT_EQ(SlurmTimeForJob("1-00:00:00", 120), "2");
  EXPECT_EQ(SlurmTimeForJob("1-00:00:00", 120.5), "3");
  EXPECT_EQ(SlurmTimeForJob("", 3600), "60");
  EXPECT_EQ(SlurmTimeForJob("", 0), "1");
  // The limit first: it stays as configured.
  EXPECT_EQ(SlurmTimeForJob("30", 3 * 3600), "30");
  EXPECT_EQ(SlurmTimeForJob("0:30", 45), "0:30");  // 30 s < 1 minute
  EXPECT_EQ(SlurmTimeForJob("2", 120), "2");       // equal
  // A deadline centuries away is no limit.
  EXPECT_EQ(SlurmTimeForJob("", 1e300), "");
}

}  // namespace
}  // namespace candies::server
