#include "client/latency_stats.h"

#include "gtest/gtest.h"

namespace lstmserve {
namespace {

TEST(LatencyStatsTest, NearestRankPercentiles) {
  LatencyStats s;
  for (int i = 100; i >= 1; --i) s.Add(i);
  EXPECT_EQ(s.count(), 100u);
  EXPECT_EQ(s.Percentile(50), 50);
  EXPECT_EQ(s.Percentile(90), 90);
  EXPECT_EQ(s.Percentile(99), 99);
  EXPECT_EQ(s.Percentile(100), 100);
  EXPECT_EQ(s.Percentile(0), 1);
  EXPECT_DOUBLE_EQ(s.Mean(), 50.5);
}

TEST(LatencyStatsTest, MergeAndEmpty) {
  LatencyStats a, b;
  EXPECT_EQ(a.Percentile(50), 0);
  a.Add(1);
  b.Add(3);
  b.Add(2);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.Percentile(50), 2);
}

}  // namespace
}  // namespace lstmserve
