// PrefixCache: one model's LSTM states after token prefixes of earlier
// requests, so that a later request sharing a prefix (a system prompt, a long
// document, a conversation's history) starts from the longest stored one
// instead of from zeros. The scheduler (server/scheduler.h) stores states at
// fixed token intervals along each prompt and at its end; what to store is
// its choice, this class only keeps and finds them.
//
// Keyed by the exact token prefix: a 64-bit hash finds candidates, the
// stored tokens are then compared in full, so a hash collision never returns
// a wrong state. The tokens of one Insert are held once and shared by the
// entries it creates.
//
// Memory: every entry's state ({h, c} floats) plus its bookkeeping, and each
// shared token array, are counted in bytes(); least recently used entries are
// evicted so that bytes() <= capacity after every call. A token array is
// freed with its last entry.
//
// Thread-safe (one internal mutex; calls are short: a lookup hashes the query
// once and compares one stored prefix per candidate).
#ifndef LSTMSERVE_SERVER_PREFIX_CACHE_H_
#define LSTMSERVE_SERVER_PREFIX_CACHE_H_

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "models/lstm_state.h"

namespace lstmserve {

class PrefixCache {
 public:
  // capacity_bytes > 0.
  explicit PrefixCache(int64_t capacity_bytes);

  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // Finds the longest stored prefix of `tokens` of at most `max_length`
  // tokens. Found: copies its state into *state, marks it recently used and
  // returns its length. Otherwise returns 0 and leaves *state untouched.
  int Lookup(absl::Span<const int32_t> tokens, int max_length, SequenceState* state);

  // A state to store: the state after tokens[0 .. length).
  struct Checkpoint {
    int length = 0;  // >= 1
    const SequenceState* state = nullptr;
  };
  // Stores each checkpoint's state keyed by its prefix of `tokens` (lengths
  // <= tokens.size()). A prefix already stored is only marked recently used
  // (the states of one model for one prefix are the same). Then evicts least
  // recently used entries down to the capacity; a single entry larger than
  // the capacity is not stored.
  void Insert(absl::Span<const int32_t> tokens, absl::Span<const Checkpoint> checkpoints);

  int64_t capacity_bytes() const { return capacity_; }
  int64_t bytes() const;
  int entries() const;

 private:
  struct Text {
    std::vector<int32_t> tokens;
    int entries = 0;  // entries sharing it
  };
  struct Entry {
    uint64_t hash = 0;
    int length = 0;
    std::shared_ptr<Text> text;  // tokens[0 .. length) is the key
    SequenceState state;
    int64_t bytes = 0;  // state and bookkeeping (the text is counted apart)
  };
  using Lru = std::list<Entry>;  // most recently used first

  Lru::iterator FindLocked(uint64_t hash, absl::Span<const int32_t> prefix)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(Lru::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t capacity_;
  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);
  std::unordered_multimap<uint64_t, Lru::iterator> by_hash_ ABSL_GUARDED_BY(mu_);
  std::map<int, int> lengths_ ABSL_GUARDED_BY(mu_);  // stored prefix length -> entries
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// Hashes of every prefix: out[k] is the hash of tokens[0 .. k) for k in
// [0, n], n = min(tokens.size(), max_length). Exposed for tests.
std::vector<uint64_t> PrefixHashes(absl::Span<const int32_t> tokens, int max_length);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_PREFIX_CACHE_H_
