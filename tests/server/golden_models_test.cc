// Serving the committed golden packages from disk: several models in one
// server, a byte model whose streamed text never splits a character, and a
// non-ASCII char model.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/utf8.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

std::string Golden(const std::string& name) {
  return std::string(LSTMSERVE_SOURCE_DIR) + "/tests/models/golden/" + name;
}

class GoldenModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto engines = LoadEngines({{"bytes", Golden("byte_l2_h24")},
                                {"unicode", Golden("l2_e32_h16_unicode")}},
                               EngineKind::kReference, EngineOptions());
    ASSERT_TRUE(engines.ok()) << engines.status();
    auto started = LanguageModelServer::Start(TestOptions(), *std::move(engines));
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    client_ = std::make_unique<LanguageModelClient>(absl::StrCat("127.0.0.1:", server_->port()));
  }
  std::unique_ptr<LanguageModelServer> server_;
  std::unique_ptr<LanguageModelClient> client_;
};

TEST_F(GoldenModelsTest, ListsBothModels) {
  auto models = client_->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->models_size(), 2);
  EXPECT_EQ(models->models(0).name(), "bytes");
  EXPECT_EQ(models->models(0).tokenizer(), "byte");
  EXPECT_EQ(models->models(0).vocab_size(), 256);
  EXPECT_EQ(models->models(1).name(), "unicode");
  EXPECT_EQ(models->models(1).tokenizer(), "char");
}

TEST_F(GoldenModelsTest, ByteModelStreamsWholeCharacters) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    v1::GenerateRequest r;
    r.set_model("bytes");
    r.set_prompt("héllo ");
    r.set_max_tokens(300);
    r.set_seed(seed);
    int messages = 0;
    absl::Status s = client_->Generate(r, [&](const v1::GenerateResponse& m) {
      ++messages;
      std::vector<char32_t> cps;
      EXPECT_TRUE(DecodeUtf8(m.text(), &cps)) << "message " << messages << " splits a character";
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_GT(messages, 1);
  }
}

TEST_F(GoldenModelsTest, NonAsciiCharModel) {
  v1::GenerateRequest r;
  r.set_model("unicode");
  r.set_prompt("中文 é");
  r.set_max_tokens(100);
  r.set_seed(3);
  auto g = client_->GenerateText(r);
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<char32_t> cps;
  ASSERT_TRUE(DecodeUtf8(g->text, &cps));
  EXPECT_EQ(cps.size(), 100u);  // one character per token
  r.set_prompt("中文 X");
  absl::Status bad = client_->GenerateText(r).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()),
              ::testing::AllOf(::testing::HasSubstr("'X'"), ::testing::HasSubstr("position 3")));
}

}  // namespace
}  // namespace lstmserve::testing
