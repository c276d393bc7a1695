// ThreadsPerModel / UsableCores: the cores are those the process may run on
// (its CPU affinity: a container's cpuset, taskset), not the machine's.
#include "server/model_loader.h"

#include <sched.h>

#include "gtest/gtest.h"

namespace lstmserve::testing {
namespace {

// Restricts the calling thread to its first allowed CPU for its lifetime.
class OneCpu {
 public:
  OneCpu() {
    CPU_ZERO(&saved_);
    ok_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0;
    if (!ok_) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &saved_)) {
        CPU_SET(c, &one);
        break;
      }
    }
    ok_ = sched_setaffinity(0, sizeof(one), &one) == 0;
  }
  ~OneCpu() {
    if (ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  bool ok() const { return ok_; }
  int saved_count() const { return CPU_COUNT(&saved_); }

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

TEST(ModelLoaderTest, UsableCoresFollowTheAffinity) {
  const int all = UsableCores();
  EXPECT_GE(all, 1);
  {
    OneCpu one;
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(one.saved_count(), all);
    EXPECT_EQ(UsableCores(), 1);
    EngineOptions options;  // threads 0: split the cores
    EXPECT_EQ(ThreadsPerModel(options, 2), 1);  // at least one each
    EXPECT_EQ(ThreadsPerModel(options, 1), 0);  // one model: OpenMP's default
  }
  EXPECT_EQ(UsableCores(), all);
}

TEST(ModelLoaderTest, ThreadsPerModelSplitsTheUsableCores) {
  EngineOptions options;
  const int cores = UsableCores();
  EXPECT_EQ(ThreadsPerModel(options, 2), std::max(1, cores / 2));
  EXPECT_EQ(ThreadsPerModel(options, 3), std::max(1, cores / 3));
  options.threads = 5;  // given: kept whatever the count
  EXPECT_EQ(ThreadsPerModel(options, 3), 5);
}

}  // namespace
}  // namespace lstmserve::testing
