#include "server/write_dispatcher.h"

#include <utility>

namespace lstmserve {

WriteDispatcher::WriteDispatcher() : thread_([this] { Loop(); }) {}

WriteDispatcher::~WriteDispatcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void WriteDispatcher::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

void WriteDispatcher::Loop() {
  std::deque<std::function<void()>> batch;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WriteDispatcher* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->mu_) {
            return d->stop_ || !d->tasks_.empty();
          },
          this));
      if (tasks_.empty()) return;  // stop_ and nothing left to run
      batch.swap(tasks_);
    }
    for (auto& task : batch) task();
    batch.clear();
  }
}

}  // namespace lstmserve
