// ThreadSanitizer annotations for Debian's prebuilt Abseil synchronization
// library (LSTMSERVE_SANITIZE=thread only; see tools/sanitizers/README.md).
//
// Why: absl::Mutex (used by lstmserve and inside gRPC) locks with atomics and
// futexes in libabsl_synchronization.so. Abseil only tells TSan about its locks
// when that library itself is compiled with -fsanitize=thread; Debian's is not,
// so TSan would see no happens-before edge at all between two threads that
// take the same absl::Mutex and would report every ABSL_GUARDED_BY member as a
// data race. Instead of suppressing those (which would also hide real races),
// this library interposes the Mutex and CondVar entry points: each wrapper
// makes the same __tsan_mutex_* calls Abseil's own TSan build makes
// (absl/synchronization/mutex.cc) around the real function, found with
// dlsym(RTLD_NEXT). Linked ahead of Abseil into every program of a TSan build,
// it wins symbol resolution for the program, gRPC and Abseil itself (whose
// internal calls, e.g. Notification -> Mutex::Lock, go through the PLT).
//
// ReleasableMutexLock and gRPC reach these same entry points. ~Mutex is not
// annotated (TSan forgets a heap mutex when its memory is freed): gRPC
// destroys its mutexes after handoffs TSan cannot see, and a destroy
// annotation there would be reported as a race with the last lock. Waits that
// release and re-take the mutex (Await*, CondVar::Wait*) are annotated as
// unlock + lock, as Abseil does. Conditions evaluated inside the real calls
// run while TSan ignores accesses, as inside Abseil's annotated slow paths.
// absl::Notification's flag is an atomic that the inline HasBeenNotified()
// reads in instrumented code but Notify() sets inside Abseil, so Notify
// releases, and the out-of-line waits acquire, on the flag's address.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

#if !defined(__SANITIZE_THREAD__)
#error "tsan_absl_sync.cc is only for builds with -fsanitize=thread"
#endif

namespace {

void* Real(const char* mangled) {
  void* fn = dlsym(RTLD_NEXT, mangled);
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found after this library: %s\n", mangled,
                 dlerror());
    std::abort();
  }
  return fn;
}

// The real function `mangled` as a pointer of type T (resolved once).
#define LSTMSERVE_REAL(T, mangled) \
  static const auto real = reinterpret_cast<T>(Real(#mangled))

// The mangled names below carry Debian 12's inline namespace (absl::debian3):
// another Abseil build fails to compile here instead of resolving nothing.
static_assert(std::is_same_v<absl::Mutex, absl::debian3::Mutex>,
              "tsan_absl_sync.cc names Debian 12's absl::debian3 symbols");

constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;
constexpr unsigned kTryFailed = __tsan_mutex_try_lock_failed;

// Some entry points call others through the PLT (AwaitWithTimeout jumps to
// AwaitWithDeadline, CondVar::WaitWithTimeout to WaitWithDeadline, ...); only
// the outermost call on a thread annotates, or TSan would see the mutex
// released and taken twice.
thread_local int tls_depth = 0;
class Outermost {
 public:
  Outermost() : outermost_(tls_depth++ == 0) {}
  ~Outermost() { --tls_depth; }
  explicit operator bool() const { return outermost_; }

 private:
  const bool outermost_;
};

// TSan checks a mutex's memory (as a read) when it is locked, before it
// acquires what the mutex's earlier holders released. A gRPC reaction thread
// that locks a reactor's mutex for the first time got the reactor through
// gRPC's invisible handoff, so that check would report a race with the
// reactor's allocation. Acquiring the releases made so far first adds only
// real happens-before edges (those unlocks did happen) and avoids that.
void AcquireEarly(void* mu) { __tsan_acquire(mu); }

// Runs `lock` (which returns with the mutex held, in mode `flags`).
template <typename F>
auto AnnotatedLock(void* mu, unsigned flags, F lock) {
  Outermost outermost;
  if (!outermost) return lock();
  AcquireEarly(mu);
  __tsan_mutex_pre_lock(mu, flags);
  auto result = lock();
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

template <typename F>
void AnnotatedUnlock(void* mu, unsigned flags, F unlock) {
  Outermost outermost;
  if (!outermost) return unlock();
  __tsan_mutex_pre_unlock(mu, flags);
  unlock();
  __tsan_mutex_post_unlock(mu, flags);
}

// Runs `wait`, which is entered and left holding the mutex but releases it
// while blocked.
template <typename F>
auto AnnotatedWait(void* mu, unsigned flags, F wait) {
  Outermost outermost;
  if (!outermost) return wait();
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
  AcquireEarly(mu);
  __tsan_mutex_pre_lock(mu, flags);
  auto result = wait();
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

// &Notification::notified_yet_ (private). An explicit instantiation may name
// a private member; this is the standard way to reach it without a friend.
struct NotifiedYet {
  using type = std::atomic<bool> absl::Notification::*;
  friend type Member(NotifiedYet);
};
template <typename Tag, typename Tag::type M>
struct MemberOf {
  friend typename Tag::type Member(Tag) { return M; }
};
template struct MemberOf<NotifiedYet, &absl::Notification::notified_yet_>;

const void* Flag(const absl::Notification* n) { return &(n->*Member(NotifiedYet{})); }

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  LSTMSERVE_REAL(void (*)(Mutex*), _ZN4absl7debian35Mutex4LockEv);
  AnnotatedLock(this, 0, [&] { return (real(this), 0); });
}

void Mutex::ReaderLock() {
  LSTMSERVE_REAL(void (*)(Mutex*), _ZN4absl7debian35Mutex10ReaderLockEv);
  AnnotatedLock(this, kRead, [&] { return (real(this), 0); });
}

bool Mutex::TryLock() {
  LSTMSERVE_REAL(bool (*)(Mutex*), _ZN4absl7debian35Mutex7TryLockEv);
  Outermost outermost;
  if (!outermost) return real(this);
  __tsan_mutex_pre_lock(this, kTry);
  const bool locked = real(this);
  __tsan_mutex_post_lock(this, kTry | (locked ? 0 : kTryFailed), 0);
  return locked;
}

bool Mutex::ReaderTryLock() {
  LSTMSERVE_REAL(bool (*)(Mutex*), _ZN4absl7debian35Mutex13ReaderTryLockEv);
  Outermost outermost;
  if (!outermost) return real(this);
  __tsan_mutex_pre_lock(this, kRead | kTry);
  const bool locked = real(this);
  __tsan_mutex_post_lock(this, kRead | kTry | (locked ? 0 : kTryFailed), 0);
  return locked;
}

void Mutex::Unlock() {
  LSTMSERVE_REAL(void (*)(Mutex*), _ZN4absl7debian35Mutex6UnlockEv);
  AnnotatedUnlock(this, 0, [&] { real(this); });
}

void Mutex::ReaderUnlock() {
  LSTMSERVE_REAL(void (*)(Mutex*), _ZN4absl7debian35Mutex12ReaderUnlockEv);
  AnnotatedUnlock(this, kRead, [&] { real(this); });
}

// LockWhen*: always return holding the mutex (the timed ones return whether
// the condition became true).
void Mutex::LockWhen(const Condition& cond) {
  LSTMSERVE_REAL(void (*)(Mutex*, const Condition&), _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE);
  AnnotatedLock(this, 0, [&] { return (real(this, cond), 0); });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  LSTMSERVE_REAL(void (*)(Mutex*, const Condition&),
                 _ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE);
  AnnotatedLock(this, kRead, [&] { return (real(this, cond), 0); });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
                 _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE);
  return AnnotatedLock(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  LSTMSERVE_REAL(
      bool (*)(Mutex*, const Condition&, absl::Duration),
      _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE);
  return AnnotatedLock(this, kRead, [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, absl::Time),
                 _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE);
  return AnnotatedLock(this, 0, [&] { return real(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  LSTMSERVE_REAL(
      bool (*)(Mutex*, const Condition&, absl::Time),
      _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE);
  return AnnotatedLock(this, kRead, [&] { return real(this, cond, deadline); });
}

// Await*: called holding the mutex; release it while the condition is false.
// Annotated as an exclusive hold: lstmserve only Awaits with the mutex held
// exclusively, and gRPC does not call Await.
void Mutex::Await(const Condition& cond) {
  LSTMSERVE_REAL(void (*)(Mutex*, const Condition&), _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE);
  AnnotatedWait(this, 0, [&] { return (real(this, cond), 0); });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
                 _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE);
  return AnnotatedWait(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  LSTMSERVE_REAL(bool (*)(Mutex*, const Condition&, absl::Time),
                 _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE);
  return AnnotatedWait(this, 0, [&] { return real(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  LSTMSERVE_REAL(void (*)(CondVar*, Mutex*), _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE);
  AnnotatedWait(mu, 0, [&] { return (real(this, mu), 0); });
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  LSTMSERVE_REAL(bool (*)(CondVar*, Mutex*, absl::Duration),
                 _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE);
  return AnnotatedWait(mu, 0, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  LSTMSERVE_REAL(bool (*)(CondVar*, Mutex*, absl::Time),
                 _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE);
  return AnnotatedWait(mu, 0, [&] { return real(this, mu, deadline); });
}

void Notification::Notify() {
  LSTMSERVE_REAL(void (*)(Notification*), _ZN4absl7debian312Notification6NotifyEv);
  __tsan_release(const_cast<void*>(Flag(this)));
  real(this);
}

void Notification::WaitForNotification() const {
  LSTMSERVE_REAL(void (*)(const Notification*),
                 _ZNK4absl7debian312Notification19WaitForNotificationEv);
  real(this);
  __tsan_acquire(const_cast<void*>(Flag(this)));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  LSTMSERVE_REAL(bool (*)(const Notification*, absl::Duration),
                 _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE);
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<void*>(Flag(this)));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  LSTMSERVE_REAL(bool (*)(const Notification*, absl::Time),
                 _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE);
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<void*>(Flag(this)));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
