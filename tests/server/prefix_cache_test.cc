// PrefixCache: longest-prefix lookup with exact verification, and LRU
// eviction that keeps the counted memory within the capacity.
#include "server/prefix_cache.h"

#include <numeric>
#include <random>

#include "gtest/gtest.h"

namespace lstmserve {
namespace {

SequenceState StateWith(float v, int layers = 2, int hidden = 8) {
  SequenceState s = SequenceState::Zeros(layers, hidden);
  s.layers[0].h[0] = v;
  return s;
}

std::vector<int32_t> Range(int n, int start = 0) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(PrefixCacheTest, EmptyCacheFindsNothing) {
  PrefixCache cache(1 << 20);
  SequenceState s = StateWith(42);
  EXPECT_EQ(cache.Lookup(Range(10), 10, &s), 0);
  EXPECT_EQ(s.layers[0].h[0], 42);  // untouched
}

TEST(PrefixCacheTest, LongestStoredPrefixWithinTheLimitWins) {
  PrefixCache cache(1 << 20);
  const std::vector<int32_t> prompt = Range(100);
  const SequenceState s32 = StateWith(32), s64 = StateWith(64), s100 = StateWith(100);
  const PrefixCache::Checkpoint checkpoints[] = {{32, &s32}, {64, &s64}, {100, &s100}};
  cache.Insert(prompt, checkpoints);
  EXPECT_EQ(cache.entries(), 3);

  std::vector<int32_t> longer = Range(150);
  SequenceState out;
  EXPECT_EQ(cache.Lookup(longer, 150, &out), 100);
  EXPECT_EQ(out.layers[0].h[0], 100);
  EXPECT_EQ(cache.Lookup(longer, 99, &out), 64);  // the caller's limit
  EXPECT_EQ(out.layers[0].h[0], 64);
  longer[70] = 999;  // diverges after 64
  EXPECT_EQ(cache.Lookup(longer, 150, &out), 64);
  longer[5] = 999;  // diverges before any checkpoint
  EXPECT_EQ(cache.Lookup(longer, 150, &out), 0);
}

TEST(PrefixCacheTest, SharedPrefixesAreStoredOnce) {
  PrefixCache cache(1 << 20);
  const SequenceState s = StateWith(1);
  const PrefixCache::Checkpoint at32[] = {{32, &s}};
  cache.Insert(Range(40), at32);
  const int64_t bytes = cache.bytes();
  std::vector<int32_t> other = Range(40);
  other[35] = 7;  // same first 32 tokens
  cache.Insert(other, at32);
  EXPECT_EQ(cache.entries(), 1);
  EXPECT_EQ(cache.bytes(), bytes);
}

TEST(PrefixCacheTest, HashCollisionsAreVerifiedAgainstTheTokens) {
  // Two different prefixes of one length under one (forced) candidate list:
  // the stored tokens decide. Simulated with many distinct prompts of equal
  // length: every lookup returns exactly its own state.
  PrefixCache cache(64 << 20);
  std::mt19937 rng(1);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 500; ++i) {
    std::vector<int32_t> p(16);
    for (auto& t : p) t = static_cast<int32_t>(rng() % 3);  // few symbols: many near-equal
    const SequenceState s = StateWith(static_cast<float>(i));
    const PrefixCache::Checkpoint c[] = {{16, &s}};
    cache.Insert(p, c);
    prompts.push_back(p);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    SequenceState out;
    ASSERT_EQ(cache.Lookup(prompts[i], 16, &out), 16);
    // The first prompt with these exact tokens owns the entry.
    size_t owner = std::find(prompts.begin(), prompts.end(), prompts[i]) - prompts.begin();
    EXPECT_EQ(out.layers[0].h[0], static_cast<float>(owner));
  }
}

TEST(PrefixCacheTest, FloodOfDistinctPromptsStaysWithinTheBudget) {
  const int64_t capacity = 256 << 10;
  PrefixCache cache(capacity);
  std::mt19937 rng(2);
  int64_t peak = 0;
  std::vector<int32_t> last;
  for (int i = 0; i < 2000; ++i) {
    std::vector<int32_t> p(300);
    for (auto& t : p) t = static_cast<int32_t>(rng() % 50);
    const SequenceState s = StateWith(1, 2, 64);
    const PrefixCache::Checkpoint c[] = {{128, &s}, {256, &s}, {300, &s}};
    cache.Insert(p, c);
    peak = std::max(peak, cache.bytes());
    last = p;
  }
  EXPECT_LE(peak, capacity);
  EXPECT_GT(cache.bytes(), capacity / 2);  // it does fill up
  SequenceState out;
  EXPECT_EQ(cache.Lookup(last, 300, &out), 300);  // the newest survived
}

TEST(PrefixCacheTest, LeastRecentlyUsedIsEvictedFirst) {
  const SequenceState s = StateWith(1, 2, 64);
  // Capacity for about three entries with their texts.
  PrefixCache probe(1 << 20);
  const PrefixCache::Checkpoint c[] = {{10, &s}};
  probe.Insert(Range(10), c);
  PrefixCache cache(probe.bytes() * 3 + 10);
  const auto a = Range(10, 0), b = Range(10, 100), d = Range(10, 200), e = Range(10, 300);
  cache.Insert(a, c);
  cache.Insert(b, c);
  cache.Insert(d, c);
  SequenceState out;
  EXPECT_EQ(cache.Lookup(a, 10, &out), 10);  // a is now the most recent
  cache.Insert(e, c);                        // evicts b
  EXPECT_EQ(cache.Lookup(b, 10, &out), 0);
  EXPECT_EQ(cache.Lookup(a, 10, &out), 10);
  EXPECT_EQ(cache.Lookup(d, 10, &out), 10);
  EXPECT_EQ(cache.Lookup(e, 10, &out), 10);
}

TEST(PrefixCacheTest, AnEntryLargerThanTheCapacityIsNotStored) {
  PrefixCache cache(100);
  const SequenceState s = StateWith(1, 2, 64);
  const PrefixCache::Checkpoint c[] = {{10, &s}};
  cache.Insert(Range(10), c);
  EXPECT_EQ(cache.entries(), 0);
  EXPECT_EQ(cache.bytes(), 0);
}

TEST(PrefixCacheTest, EvictingEveryEntryFreesItsTokens) {
  const SequenceState s = StateWith(1, 2, 64);
  PrefixCache probe(1 << 20);
  const PrefixCache::Checkpoint two[] = {{5, &s}, {10, &s}};
  probe.Insert(Range(10), two);
  PrefixCache cache(probe.bytes());
  cache.Insert(Range(10), two);
  EXPECT_EQ(cache.bytes(), probe.bytes());
  cache.Insert(Range(10, 50), two);  // replaces both
  EXPECT_EQ(cache.entries(), 2);
  EXPECT_EQ(cache.bytes(), probe.bytes());
}

}  // namespace
}  // namespace lstmserve
