// Portable states through the gRPC API: a state returned by one replica
// continues on another replica with the same key exactly as one request over
// the whole text would (greedy Generate, Score, Embed); and every state that
// is not an authentic state of the serving model is INVALID_ARGUMENT naming
// `state`, with nothing else changed.
#include <cmath>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/server/state_helpers.h"

namespace lstmserve::testing {
namespace {

RandomPackageShape Shape() {
  RandomPackageShape s;
  s.num_layers = 3;
  s.embedding_dim = 24;  // != hidden_size
  s.hidden_size = 40;
  s.scale = 0.6f;  // peaked distributions: clear greedy winners
  return s;
}

struct TwoReplicas : public ::testing::Test {
  TwoReplicas()
      : key_file(WriteKeyFile("shared_keys", {kKeyA})),
        a(Config()),
        b(Config()) {}
  ReplicaConfig Config() {
    ReplicaConfig c;
    c.shape = Shape();
    c.key_file = key_file;
    return c;
  }
  std::string key_file;
  Replica a, b;
};

TEST_F(TwoReplicas, GreedyGenerateContinuesOnAnotherReplica) {
  const std::string prompt = "HELLOWORLD";
  const auto first = a.Greedy(prompt, 20, "", /*return_state=*/true);
  ASSERT_FALSE(first.last.state().empty());
  EXPECT_EQ(first.last.usage().prompt_tokens(), 10);
  const std::string next = "ABCDE";
  const auto continued = b.Greedy(next, 30, first.last.state());
  EXPECT_EQ(continued.last.usage().prompt_tokens(), 5);
  const auto whole = a.Greedy(prompt + first.text + next, 30);
  EXPECT_EQ(continued.text, whole.text);
  EXPECT_EQ(continued.text.size(), 30u);
}

TEST_F(TwoReplicas, EmptyPromptContinuesFromTheStateAlone) {
  const auto first = a.Greedy("THESTART", 12, "", true);
  const auto more = b.Greedy("", 18, first.last.state(), true);
  EXPECT_EQ(more.last.usage().prompt_tokens(), 0);
  EXPECT_EQ(first.text + more.text, a.Greedy("THESTART", 30).text);
  // And the state after that covers everything again.
  const auto third = a.Greedy("", 10, more.last.state());
  EXPECT_EQ(first.text + more.text + third.text, b.Greedy("THESTART", 40).text);
}

TEST_F(TwoReplicas, AStopStringIsPartOfTheTextTheStateContinues) {
  // The state covers every generated token, the ones that matched the stop
  // string included (the response's text omits the stop string).
  const std::string prompt = "QUITEALONGPROMPT";
  const std::string free_run = a.Greedy(prompt, 40).text;
  const std::string stop = free_run.substr(12, 2);
  const auto stopped = a.Greedy(prompt, 40, "", true, {stop});
  ASSERT_EQ(stopped.last.finish_reason(), v1::FINISH_REASON_STOP);
  const size_t at = free_run.find(stop);
  ASSERT_EQ(stopped.text, free_run.substr(0, at));
  const auto continued = b.Greedy("XY", 20, stopped.last.state());
  EXPECT_EQ(continued.text, a.Greedy(prompt + stopped.text + stop + "XY", 20).text);
}

TEST_F(TwoReplicas, ScoreContinuesOnAnotherReplica) {
  const std::string head = "SOMECONTEXTTHATCOMESFIRST", tail = "ANDTHENTHISTEXT";
  const auto first = a.Score("", head, "", true);
  ASSERT_FALSE(first.state().empty());
  const auto continued = b.Score("", tail, first.state());
  const auto whole = a.Score(head, tail);
  ASSERT_EQ(continued.token_logprobs_size(), static_cast<int>(tail.size()));
  ASSERT_EQ(whole.token_logprobs_size(), static_cast<int>(tail.size()));
  for (int i = 0; i < whole.token_logprobs_size(); ++i) {
    EXPECT_NEAR(continued.token_logprobs(i), whole.token_logprobs(i), 1e-5) << i;
    EXPECT_EQ(continued.token_ids(i), whole.token_ids(i));
  }
  // A context after a state conditions without being scored.
  const auto with_context = b.Score("MIDDLE", tail, first.state());
  const auto whole2 = a.Score(head + "MIDDLE", tail);
  ASSERT_EQ(with_context.token_logprobs_size(), whole2.token_logprobs_size());
  for (int i = 0; i < whole2.token_logprobs_size(); ++i) {
    EXPECT_NEAR(with_context.token_logprobs(i), whole2.token_logprobs(i), 1e-5) << i;
  }
}

TEST_F(TwoReplicas, EmbedContinuesOnAnotherReplica) {
  const auto first = a.Embed("FIRSTPART", "", true);
  const auto continued = b.Embed("SECONDPART", first.state(), true);
  const auto whole = a.Embed("FIRSTPARTSECONDPART");
  ASSERT_EQ(continued.embedding_size(), whole.embedding_size());
  for (int i = 0; i < whole.embedding_size(); ++i) {
    EXPECT_NEAR(continued.embedding(i), whole.embedding(i), 1e-5);
  }
  for (int l = 0; l < whole.layers_size(); ++l) {
    for (int i = 0; i < whole.layers(l).c_size(); ++i) {
      EXPECT_NEAR(continued.layers(l).c(i), whole.layers(l).c(i), 1e-5);
    }
  }
  EXPECT_EQ(continued.tokens(), 10);
  // The state of an Embed continues a Generate too.
  EXPECT_EQ(b.Greedy("", 15, continued.state()).text, a.Greedy("FIRSTPARTSECONDPART", 15).text);
}

TEST_F(TwoReplicas, StatesPassBetweenRpcs) {
  const auto scored = a.Score("", "SCOREDTEXT", "", true);
  const auto generated = b.Greedy("MORE", 10, scored.state(), true);
  EXPECT_EQ(generated.text, a.Greedy("SCOREDTEXTMORE", 10).text);
  const auto embedded = a.Embed("X", generated.last.state());
  const auto whole = b.Embed("SCOREDTEXTMORE" + generated.text + "X");
  for (int i = 0; i < whole.embedding_size(); ++i) {
    EXPECT_NEAR(embedded.embedding(i), whole.embedding(i), 1e-5);
  }
}

// --- the tampering matrix ------------------------------------------------

void ExpectStateRefused(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "state")) << status;
}

// Sends `state` in each RPC; each must be refused naming `state`.
void ExpectRefusedEverywhere(Replica& r, const std::string& state) {
  v1::GenerateRequest g;
  g.set_model(r.model);
  g.set_prompt("ABC");
  g.set_max_tokens(3);
  g.set_state(state);
  ExpectStateRefused(r.client->GenerateText(g).status());
  g.clear_prompt();
  ExpectStateRefused(r.client->GenerateText(g).status());
  v1::ScoreRequest s;
  s.set_model(r.model);
  s.set_text("ABC");
  s.set_state(state);
  ExpectStateRefused(r.client->Score(s).status());
  v1::EmbedRequest e;
  e.set_model(r.model);
  e.set_text("ABC");
  e.set_state(state);
  ExpectStateRefused(r.client->Embed(e).status());
}

TEST_F(TwoReplicas, TamperedStatesAreRefused) {
  const std::string good = a.Greedy("TAMPER", 5, "", true).last.state();
  ASSERT_FALSE(good.empty());
  // One byte flipped in each region: magic, version, name, fingerprint,
  // token count, last token, layer count, a layer's sizes, h, c, the MAC.
  const size_t name_end = 4 + 4 + 2 + a.model.size();
  const size_t regions[] = {0, 4, 9, name_end - 1, name_end + 5, name_end + 32,
                            name_end + 40, name_end + 44, name_end + 48, name_end + 60,
                            good.size() / 2, good.size() - 40, good.size() - 1};
  for (size_t at : regions) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    ExpectRefusedEverywhere(b, bad);
  }
  ExpectRefusedEverywhere(b, good.substr(0, good.size() - 1));  // truncated
  ExpectRefusedEverywhere(b, good.substr(0, 10));
  ExpectRefusedEverywhere(b, good + "extra");                   // extended
  std::string old_version = good;
  old_version[4] = 0;  // format version 0
  ExpectRefusedEverywhere(b, old_version);
  // Nothing else changed: the good state still works on both.
  EXPECT_EQ(b.Greedy("Z", 5, good).text, a.Greedy("Z", 5, good).text);
}

TEST(StateTest, EmptyPromptWithoutAStateIsRefused) {
  Replica r(ReplicaConfig{});
  v1::GenerateRequest g;
  g.set_model(r.model);
  g.set_max_tokens(3);
  const absl::Status s = r.client->GenerateText(g).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "prompt")) << s;
}

TEST(StateTest, AnotherKeyIsRefused) {
  ReplicaConfig c;
  c.key_file = WriteKeyFile("key_a", {kKeyA});
  Replica a(c);
  c.key_file = WriteKeyFile("key_b", {kKeyB});
  Replica b(c);
  const std::string state = a.Greedy("KEYS", 4, "", true).last.state();
  ExpectRefusedEverywhere(b, state);
  // Without a key file each process has its own random key.
  Replica random1(ReplicaConfig{}), random2(ReplicaConfig{});
  const std::string own = random1.Greedy("KEYS", 4, "", true).last.state();
  EXPECT_FALSE(random1.Greedy("X", 2, own).text.empty());
  ExpectRefusedEverywhere(random2, own);
}

TEST(StateTest, RotatedKeysVerifyOldStates) {
  ReplicaConfig c;
  c.key_file = WriteKeyFile("old", {kKeyA});
  Replica old_replica(c);
  c.key_file = WriteKeyFile("rotated", {kKeyB, kKeyA});  // new key signs, old verifies
  Replica rotated(c);
  const std::string old_state = old_replica.Greedy("ROTATE", 4, "", true).last.state();
  const auto continued = rotated.Greedy("X", 6, old_state, true);
  EXPECT_EQ(continued.text, old_replica.Greedy("X", 6, old_state).text);
  ExpectRefusedEverywhere(old_replica, continued.last.state());  // signed with the new key
}

TEST(StateTest, AnotherModelOrOtherWeightsAreRefused) {
  const std::string keys = WriteKeyFile("shared2", {kKeyA});
  ReplicaConfig c;
  c.key_file = keys;
  Replica tiny(c);
  ReplicaConfig other_name = c;
  other_name.model = "tinz";  // same weights and size, other name
  Replica tinz(other_name);
  ReplicaConfig other_weights = c;
  other_weights.shape.seed = 99;  // same name and shape, other weights (another version)
  Replica v2(other_weights);
  ReplicaConfig other_shape = c;
  other_shape.shape.hidden_size = 24;
  Replica small(other_shape);
  const std::string state = tiny.Greedy("MODEL", 4, "", true).last.state();
  ExpectRefusedEverywhere(tinz, state);
  ExpectRefusedEverywhere(v2, state);
  ExpectRefusedEverywhere(small, state);
}

}  // namespace
}  // namespace lstmserve::testing
