// Checks that a TSan build sees absl::Mutex (tools/sanitizers/tsan_absl_sync.cc)
// and still reports real races; tools/sanitize.sh runs it before the tests.
//   tsan_selftest guarded  memory shared only under absl::Mutex, handed over
//                          with Mutex::Await, CondVar and Notification: must
//                          exit 0 with no report.
//   tsan_selftest racy     one unguarded counter: TSan must report a data race.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

int Guarded() {
  absl::Mutex mu;
  absl::CondVar cv;
  int counter = 0;       // guarded by mu
  bool ready = false;    // guarded by mu
  std::string handoff;   // written before Notify, read after the wait
  absl::Notification note;
  std::thread writer([&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
    {
      absl::MutexLock lock(&mu);
      ready = true;
      cv.Signal();
    }
    handoff = "from the writer";
    note.Notify();
  });
  for (int i = 0; i < 1000; ++i) {
    absl::MutexLock lock(&mu);
    ++counter;
  }
  {
    absl::MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
    mu.Await(absl::Condition(+[](int* c) { return *c == 2000; }, &counter));
  }
  note.WaitForNotification();
  const bool ok = handoff == "from the writer";
  writer.join();
  std::printf("guarded: counter %d, handoff %s\n", counter, ok ? "ok" : "wrong");
  return counter == 2000 && ok ? 0 : 1;
}

int Racy() {
  int counter = 0;
  std::thread other([&] { for (int i = 0; i < 1000; ++i) ++counter; });
  for (int i = 0; i < 1000; ++i) ++counter;
  other.join();
  std::printf("racy: counter %d\n", counter);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "guarded") == 0) return Guarded();
  if (argc == 2 && std::strcmp(argv[1], "racy") == 0) return Racy();
  std::fprintf(stderr, "usage: tsan_selftest guarded|racy\n");
  return 2;
}
