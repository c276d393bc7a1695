// The prefix-state cache in the server: answers are the same with the cache
// on and off (greedy text identical, log-probs within 1e-5) on awkward
// models and both engines; memory stays within the budget under a flood of
// distinct prompts; the metrics are exact after a known workload.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/state_helpers.h"

namespace lstmserve::testing {
namespace {

constexpr char kQuery[] = "lstmserve_prefix_cache_query_tokens_total{model=\"tiny\"}";
constexpr char kHit[] = "lstmserve_prefix_cache_hit_tokens_total{model=\"tiny\"}";
constexpr char kBytes[] = "lstmserve_prefix_cache_bytes{model=\"tiny\"}";

struct Awkward {
  const char* name;
  EngineKind engine;
  int layers, embedding, hidden;
};

class CacheOnOffTest : public ::testing::TestWithParam<Awkward> {};

TEST_P(CacheOnOffTest, AnswersDoNotDependOnTheCache) {
  const Awkward& p = GetParam();
  ReplicaConfig c;
  c.engine = p.engine;
  c.shape.num_layers = p.layers;
  c.shape.embedding_dim = p.embedding;
  c.shape.hidden_size = p.hidden;
  c.shape.scale = 0.6f;
  c.prefix_cache_interval = 16;
  c.metrics = true;
  Replica off(c);
  c.prefix_cache_bytes = 4 << 20;
  Replica on(c);

  // A shared "system prompt" of 70 tokens (not a multiple of the interval),
  // conversations growing from it, and repeats.
  const std::string system = RandomText(70, 1);
  std::vector<std::string> prompts = {system + "QUESTIONONE", system + "QUESTIONTWO",
                                      system, system + "QUESTIONONE"};
  std::string conversation = system;
  for (int turn = 0; turn < 3; ++turn) {
    conversation += RandomText(9 + turn, 10 + turn);
    prompts.push_back(conversation);
  }
  for (const std::string& prompt : prompts) {
    const auto want = off.Greedy(prompt, 24);
    const auto got = on.Greedy(prompt, 24);
    EXPECT_EQ(got.text, want.text) << prompt;
    const auto s_off = off.Score(prompt.substr(0, 50), prompt.substr(50));
    const auto s_on = on.Score(prompt.substr(0, 50), prompt.substr(50));
    ASSERT_EQ(s_on.token_logprobs_size(), s_off.token_logprobs_size());
    for (int i = 0; i < s_off.token_logprobs_size(); ++i) {
      EXPECT_NEAR(s_on.token_logprobs(i), s_off.token_logprobs(i), 1e-5) << prompt << " " << i;
    }
    const auto e_off = off.Embed(prompt);
    const auto e_on = on.Embed(prompt);
    for (int i = 0; i < e_off.embedding_size(); ++i) {
      EXPECT_NEAR(e_on.embedding(i), e_off.embedding(i), 1e-5);
    }
  }
  // The cache was used (else this proves nothing), and the off one was not.
  auto m = ScrapeMetrics(on.server->metrics_port());
  EXPECT_GT(m[kHit], 200);
  EXPECT_GT(m[kBytes], 0);
  auto m_off = ScrapeMetrics(off.server->metrics_port());
  EXPECT_EQ(m_off[kQuery], 0);
}

// The oneDNN engine runs on OpenMP, whose runtime (libgomp) TSan does not
// see; the TSan stage (tools/sanitize.sh) runs the reference variants, the
// ASan stage and the plain suite all of them.
#if defined(__SANITIZE_THREAD__)
#define LSTMSERVE_ONEDNN_VARIANTS
#else
#define LSTMSERVE_ONEDNN_VARIANTS                                     \
  Awkward{"onednn_3x40_e24", EngineKind::kOneDnn, 3, 24, 40},         \
      Awkward{"onednn_2x64_e17", EngineKind::kOneDnn, 2, 17, 64},
#endif
INSTANTIATE_TEST_SUITE_P(
    Models, CacheOnOffTest,
    ::testing::Values(LSTMSERVE_ONEDNN_VARIANTS
                      Awkward{"reference_3x40_e24", EngineKind::kReference, 3, 24, 40},
                      Awkward{"reference_1x33_e50", EngineKind::kReference, 1, 50, 33}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PrefixCacheServerTest, MetricsAreExactAfterAKnownWorkload) {
  ReplicaConfig c;
  c.prefix_cache_interval = 8;
  c.prefix_cache_bytes = 1 << 20;
  c.metrics = true;
  Replica r(c);
  const std::string a = RandomText(20, 5);
  // 1. Generate a (20 tokens): nothing cached; stores 8, 16, 20.
  r.Greedy(a, 3);
  // 2. Generate a + 5: the 20-token prefix hits; stores 24, 25.
  r.Greedy(a + "ABCDE", 3);
  // 3. Generate a again: at most 19 tokens may come from the cache: 16.
  r.Greedy(a, 3);
  // 4. Score context a (20) + text (4): rows from token 19 are needed: 16;
  //    the last token is never an input: stores 23.
  r.Score(a, "WXYZ");
  // 5. Embed a + "ABCDE" (25 tokens): 24 may come from the cache: 24.
  r.Embed(a + "ABCDE");
  // 6. A request with a client state neither queries nor fills the cache.
  const std::string state = r.Greedy("QQQQ", 2, "", true).last.state();  // query 4, hit 0
  r.Greedy("MORE", 2, state);
  auto m = ScrapeMetrics(r.server->metrics_port());
  EXPECT_EQ(m[kQuery], 20 + 25 + 20 + 24 + 25 + 4);
  EXPECT_EQ(m[kHit], 0 + 20 + 16 + 16 + 24 + 0);
  EXPECT_GT(m[kBytes], 0);
  EXPECT_LE(m[kBytes], 1 << 20);
}

TEST(PrefixCacheServerTest, AFloodOfDistinctPromptsStaysWithinTheBudget) {
  ReplicaConfig c;
  c.prefix_cache_interval = 8;
  c.prefix_cache_bytes = 64 << 10;
  c.metrics = true;
  Replica r(c);
  double peak = 0;
  for (int i = 0; i < 150; ++i) {
    r.Embed(RandomText(100, 1000 + i));
    peak = std::max(peak, ScrapeMetrics(r.server->metrics_port())[kBytes]);
  }
  EXPECT_LE(peak, 64 << 10);
  EXPECT_GT(peak, 32 << 10);  // it filled up: eviction was exercised
  // The newest prompt is still there (checkpoints 8, ..., 96 and 100; at
  // most 99 tokens may come from the cache).
  const auto before = ScrapeMetrics(r.server->metrics_port());
  r.Embed(RandomText(100, 1000 + 149));
  const auto after = ScrapeMetrics(r.server->metrics_port());
  EXPECT_EQ(after.at(kHit) - before.at(kHit), 96);
}

}  // namespace
}  // namespace lstmserve::testing
