// Sampler: greedy and filtered choices, reproducibility by seed, and the
// empirical distribution against the probabilities (fixed seeds, so the
// statistical checks are deterministic).
#include "models/sampler.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace lstmserve {
namespace {

// log of a normalized distribution.
std::vector<float> LogProbs(const std::vector<double>& p) {
  double total = 0.0;
  for (double x : p) total += x;
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x / total)));
  return out;
}

// The argmax is id 3 (not first, not last).
const std::vector<double> kProbs = {0.15, 0.2, 0.05, 0.5, 0.1};
constexpr int kArgmax = 3;

std::vector<double> Frequencies(const SamplingParams& params, const std::vector<float>& lp,
                                int draws) {
  Sampler sampler(params);
  std::vector<double> freq(lp.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    const int32_t id = sampler.Sample(lp.data(), static_cast<int>(lp.size()));
    EXPECT_GE(id, 0);
    EXPECT_LT(id, static_cast<int>(lp.size()));
    freq[id] += 1.0 / draws;
  }
  return freq;
}

// Each frequency within 5 standard errors of its probability.
void ExpectClose(const std::vector<double>& freq, const std::vector<double>& want, int draws) {
  ASSERT_EQ(freq.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const double se = std::sqrt(std::max(want[i] * (1 - want[i]), 1e-12) / draws);
    EXPECT_NEAR(freq[i], want[i], 5 * se + 1e-12) << "id " << i;
  }
}

std::vector<double> Normalized(std::vector<double> p) {
  double total = 0.0;
  for (double x : p) total += x;
  for (double& x : p) x /= total;
  return p;
}

TEST(Sampler, TemperatureZeroIsArgmax) {
  const auto lp = LogProbs(kProbs);
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.Sample(lp.data(), 5), kArgmax);
}

TEST(Sampler, TopKOneIsArgmax) {
  const auto lp = LogProbs(kProbs);
  for (float temperature : {0.5f, 1.0f, 5.0f}) {
    SamplingParams params;
    params.temperature = temperature;
    params.top_k = 1;
    params.seed = 11;
    Sampler sampler(params);
    for (int i = 0; i < 200; ++i) EXPECT_EQ(sampler.Sample(lp.data(), 5), kArgmax);
  }
}

TEST(Sampler, SmallTopPIsArgmax) {
  const auto lp = LogProbs(kProbs);
  SamplingParams params;
  params.top_p = 0.01f;
  params.seed = 12;
  Sampler sampler(params);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(sampler.Sample(lp.data(), 5), kArgmax);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  std::vector<double> flat(50, 1.0);
  const auto lp = LogProbs(flat);
  auto run = [&](uint64_t seed) {
    SamplingParams params;
    params.seed = seed;
    params.top_k = 40;
    params.top_p = 0.9f;
    Sampler sampler(params);
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(sampler.Sample(lp.data(), 50));
    return ids;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
  EXPECT_EQ(run(0), run(0));
}

TEST(Sampler, UniformStreamIsInRangeAndReproducible) {
  SamplingParams params;
  params.seed = 99;
  Sampler a(params), b(params);
  double sum = 0.0;
  for (int i = 0; i < 100000; ++i) {
    const double u = a.NextUniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_EQ(u, b.NextUniform());
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 5 * std::sqrt(1.0 / 12 / 100000));
}

TEST(Sampler, TemperatureOneFollowsTheProbabilities) {
  const int draws = 200000;
  SamplingParams params;
  params.seed = 2024;
  ExpectClose(Frequencies(params, LogProbs(kProbs), draws), kProbs, draws);
}

TEST(Sampler, TemperatureSharpensOrFlattens) {
  const int draws = 200000;
  for (float temperature : {0.5f, 2.0f}) {
    SamplingParams params;
    params.temperature = temperature;
    params.seed = 7;
    std::vector<double> want;
    for (double p : kProbs) want.push_back(std::pow(p, 1.0 / temperature));
    ExpectClose(Frequencies(params, LogProbs(kProbs), draws), Normalized(want), draws);
  }
}

TEST(Sampler, TopKKeepsTheKMostLikelyRenormalized) {
  const int draws = 200000;
  SamplingParams params;
  params.top_k = 2;
  params.seed = 5;
  ExpectClose(Frequencies(params, LogProbs(kProbs), draws),
              Normalized({0.0, 0.2, 0.0, 0.5, 0.0}), draws);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  // Sorted: 0.5, 0.2, 0.15, ... 0.5 + 0.2 < 0.75 <= 0.85: three survive.
  const int draws = 200000;
  SamplingParams params;
  params.top_p = 0.75f;
  params.seed = 6;
  ExpectClose(Frequencies(params, LogProbs(kProbs), draws),
              Normalized({0.15, 0.2, 0.0, 0.5, 0.0}), draws);
}

TEST(Sampler, HandlesVeryUnlikelyTokens) {
  // Log-probs far below the top (as a saturated model produces) never win
  // and never break the arithmetic.
  std::vector<float> lp = {-0.01f, -60.0f, -200.0f, -1e30f};
  SamplingParams params;
  params.seed = 3;
  Sampler sampler(params);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(sampler.Sample(lp.data(), 4), 0);
}

// The sampler before it stopped sorting the whole vocabulary every step: a
// full sort by probability (ties by id), then the same walk. The oracle for
// the partial-sort sampler, which must pick the very same ids.
int32_t FullSortSample(const SamplingParams& params, const float* logprobs, int V,
                       double uniform) {
  std::vector<int32_t> order(V);
  for (int i = 0; i < V; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
  });
  int keep = params.top_k > 0 && params.top_k < V ? params.top_k : V;
  std::vector<double> w(keep);
  double total = 0.0;
  for (int i = 0; i < keep; ++i) {
    w[i] = std::exp((logprobs[order[i]] - logprobs[order[0]]) / params.temperature);
    total += w[i];
  }
  if (params.top_p < 1.0f) {
    double mass = 0.0;
    int n = 0;
    while (n < keep) {
      mass += w[n++];
      if (mass >= params.top_p * total) break;
    }
    keep = n;
    total = mass;
  }
  double r = uniform * total;
  for (int i = 0; i < keep; ++i) {
    r -= w[i];
    if (r < 0.0) return order[i];
  }
  return order[keep - 1];
}

TEST(Sampler, PicksWhatAFullSortPicksOnA32kVocabulary) {
  const int V = 32000;
  std::mt19937 rng(17);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  std::vector<float> row(V);
  for (float& x : row) x = logit(rng);
  for (int i = 0; i < 200; ++i) row[rng() % V] = row[rng() % V];  // ties
  double mx = *std::max_element(row.begin(), row.end()), sum = 0.0;
  for (float x : row) sum += std::exp(x - mx);
  for (float& x : row) x = static_cast<float>(x - mx - std::log(sum));
  int compared = 0;
  for (float temperature : {0.5f, 1.0f, 2.0f}) {
    for (int top_k : {0, 1, 40, 5000, V}) {
      for (float top_p : {1.0f, 0.95f, 0.5f}) {
        SamplingParams params{temperature, top_k, top_p, 99};
        Sampler sampler(params);
        Sampler uniforms(params);  // the same stream, to drive the oracle
        for (int draw = 0; draw < 30; ++draw) {
          const int32_t got = sampler.Sample(row.data(), V);
          const int32_t want = FullSortSample(params, row.data(), V, uniforms.NextUniform());
          ASSERT_EQ(got, want) << "T=" << temperature << " top_k=" << top_k
                               << " top_p=" << top_p << " draw " << draw;
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, 3 * 5 * 3 * 30);
}

// A flat row (an untrained model, or a high temperature): the walk a sorted
// sampler makes reaches deep into the vocabulary, which the selection must
// match too; with ties everywhere, the order by id decides.
TEST(Sampler, PicksWhatAFullSortPicksOnAFlatRow) {
  const int V = 10000;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> jitter(-0.05f, 0.05f);
  std::vector<float> row(V);
  for (int i = 0; i < V; ++i) row[i] = -std::log(static_cast<float>(V)) + (i % 3 ? jitter(rng) : 0.0f);
  int compared = 0;
  for (int top_k : {0, 100, 9999}) {
    for (float top_p : {1.0f, 0.9f, 0.3f}) {
      SamplingParams params{1.5f, top_k, top_p, 7};
      Sampler sampler(params);
      Sampler uniforms(params);
      for (int draw = 0; draw < 40; ++draw) {
        const int32_t got = sampler.Sample(row.data(), V);
        const int32_t want = FullSortSample(params, row.data(), V, uniforms.NextUniform());
        ASSERT_EQ(got, want) << "top_k=" << top_k << " top_p=" << top_p << " draw " << draw;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 3 * 3 * 40);

  // Every candidate equal: the order is by id alone.
  std::vector<float> equal(V, -std::log(static_cast<float>(V)));
  for (float top_p : {1.0f, 0.5f}) {
    SamplingParams params{1.0f, 0, top_p, 11};
    Sampler sampler(params);
    Sampler uniforms(params);
    for (int draw = 0; draw < 20; ++draw) {
      ASSERT_EQ(sampler.Sample(equal.data(), V),
                FullSortSample(params, equal.data(), V, uniforms.NextUniform()))
          << "top_p=" << top_p << " draw " << draw;
    }
  }
}

}  // namespace
}  // namespace lstmserve
