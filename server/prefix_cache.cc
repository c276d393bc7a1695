#include "server/prefix_cache.h"

#include <algorithm>
#include <cstring>

namespace lstmserve {
namespace {

// Bookkeeping counted per entry besides its floats: the list node, the hash
// map node and the vectors' headers (an estimate, on the high side).
constexpr int64_t kEntryOverheadBytes = 160;
constexpr int64_t kTextOverheadBytes = 64;

int64_t StateBytes(const SequenceState& s) {
  int64_t n = 0;
  for (const LayerState& l : s.layers) {
    n += static_cast<int64_t>(l.h.size() + l.c.size()) * sizeof(float) + 48;
  }
  return n;
}

uint64_t Mix(uint64_t h) {  // splitmix64's finalizer
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

}  // namespace

std::vector<uint64_t> PrefixHashes(absl::Span<const int32_t> tokens, int max_length) {
  const size_t n = std::min(tokens.size(), static_cast<size_t>(std::max(0, max_length)));
  std::vector<uint64_t> out(n + 1);
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over 32-bit units, then mixed
  out[0] = Mix(h);
  for (size_t k = 0; k < n; ++k) {
    h = (h ^ static_cast<uint32_t>(tokens[k])) * 0x100000001b3ULL;
    out[k + 1] = Mix(h ^ (k + 1));
  }
  return out;
}

PrefixCache::PrefixCache(int64_t capacity_bytes) : capacity_(capacity_bytes) {}

PrefixCache::Lru::iterator PrefixCache::FindLocked(uint64_t hash,
                                                   absl::Span<const int32_t> prefix) {
  auto [begin, end] = by_hash_.equal_range(hash);
  for (auto it = begin; it != end; ++it) {
    const Entry& e = *it->second;
    if (e.length == static_cast<int>(prefix.size()) &&
        std::equal(prefix.begin(), prefix.end(), e.text->tokens.begin())) {
      return it->second;
    }
  }
  return lru_.end();
}

int PrefixCache::Lookup(absl::Span<const int32_t> tokens, int max_length, SequenceState* state) {
  absl::MutexLock lock(&mu_);
  if (lru_.empty()) return 0;
  max_length = std::min(max_length, static_cast<int>(tokens.size()));
  if (max_length < 1) return 0;
  // Only lengths some entry has are worth hashing and probing.
  auto first = lengths_.upper_bound(max_length);
  if (first == lengths_.begin()) return 0;
  const std::vector<uint64_t> hashes = PrefixHashes(tokens, std::prev(first)->first);
  for (auto it = std::make_reverse_iterator(first); it != lengths_.rend(); ++it) {
    const int length = it->first;
    auto found = FindLocked(hashes[length], tokens.subspan(0, length));
    if (found == lru_.end()) continue;
    lru_.splice(lru_.begin(), lru_, found);
    *state = found->state;
    return length;
  }
  return 0;
}

void PrefixCache::Insert(absl::Span<const int32_t> tokens,
                         absl::Span<const Checkpoint> checkpoints) {
  int longest = 0;
  for (const Checkpoint& c : checkpoints) longest = std::max(longest, c.length);
  longest = std::min(longest, static_cast<int>(tokens.size()));
  if (longest < 1) return;
  const std::vector<uint64_t> hashes = PrefixHashes(tokens, longest);
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Text> text;
  for (const Checkpoint& c : checkpoints) {
    if (c.length < 1 || c.length > longest || c.state == nullptr) continue;
    const absl::Span<const int32_t> prefix = tokens.subspan(0, c.length);
    auto existing = FindLocked(hashes[c.length], prefix);
    if (existing != lru_.end()) {
      lru_.splice(lru_.begin(), lru_, existing);
      continue;
    }
    const int64_t entry_bytes = StateBytes(*c.state) + kEntryOverheadBytes;
    const int64_t text_bytes =
        text != nullptr ? 0 : static_cast<int64_t>(longest) * 4 + kTextOverheadBytes;
    if (entry_bytes + text_bytes > capacity_) continue;
    if (text == nullptr) {
      text = std::make_shared<Text>();
      text->tokens.assign(tokens.begin(), tokens.begin() + longest);
      bytes_ += text_bytes;
    }
    Entry e;
    e.hash = hashes[c.length];
    e.length = c.length;
    e.text = text;
    e.state = *c.state;
    e.bytes = entry_bytes;
    ++text->entries;
    bytes_ += entry_bytes;
    lru_.push_front(std::move(e));
    by_hash_.emplace(lru_.front().hash, lru_.begin());
    ++lengths_[c.length];
  }
  EvictLocked();
}

void PrefixCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) EraseLocked(std::prev(lru_.end()));
}

void PrefixCache::EraseLocked(Lru::iterator it) {
  auto [begin, end] = by_hash_.equal_range(it->hash);
  for (auto h = begin; h != end; ++h) {
    if (h->second == it) {
      by_hash_.erase(h);
      break;
    }
  }
  auto length = lengths_.find(it->length);
  if (--length->second == 0) lengths_.erase(length);
  bytes_ -= it->bytes;
  if (--it->text->entries == 0) {
    bytes_ -= static_cast<int64_t>(it->text->tokens.size()) * 4 + kTextOverheadBytes;
  }
  lru_.erase(it);
}

int64_t PrefixCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

int PrefixCache::entries() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(lru_.size());
}

}  // namespace lstmserve
