// A SentencePiece model served from disk (the tokenizer fixture
// tests/models/data/sp_bpe400.model in a package with random weights): the
// library runs in the server process (behind its dlmopen shim), prompts are
// encoded by it, and sampled text streams as whole UTF-8 characters equal to
// the library's decoding of the generated ids.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/utf8.h"
#include "tests/models/package_writer.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

class SubwordModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RandomPackageShape shape;
    shape.vocab_size = 400;
    shape.embedding_dim = 16;
    shape.hidden_size = 24;
    shape.num_layers = 2;
    shape.scale = 0.6f;
    ModelPackage p = RandomPackage(shape);
    p.config.format_version = 2;
    p.config.tokenizer = TokenizerConfig();
    p.config.tokenizer.type = TokenizerType::kSentencePiece;
    p.config.tokenizer.model_file = "tokenizer.model";
    WritePackage(SpecFromPackage(p), dir_.path());
    WriteFileOrDie(dir_.path() + "/tokenizer.model",
                   ReadFileOrDie(std::string(LSTMSERVE_SOURCE_DIR) +
                                 "/tests/models/data/sp_bpe400.model"));
    auto engines = LoadEngines({{"sub", dir_.path()}}, EngineKind::kReference, EngineOptions());
    ASSERT_TRUE(engines.ok()) << engines.status();
    auto started = LanguageModelServer::Start(TestOptions(), *std::move(engines));
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    client_ = std::make_unique<LanguageModelClient>(absl::StrCat("127.0.0.1:", server_->port()));
    auto package = LoadModelPackage(dir_.path());
    ASSERT_TRUE(package.ok()) << package.status();
    auto tokenizer = Tokenizer::Create(package->config.tokenizer);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
  }
  ScopedTempDir dir_;
  std::unique_ptr<LanguageModelServer> server_;
  std::unique_ptr<LanguageModelClient> client_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(SubwordModelTest, SampledTextStreamsWholeCharactersEqualToTheLibraryDecoding) {
  for (uint64_t seed : {1, 2, 3}) {
    v1::GenerateRequest request;
    request.set_model("sub");
    request.set_prompt("First Citizen: 東京");
    request.set_max_tokens(120);
    request.set_seed(seed);
    request.set_temperature(1.5f);  // flat: byte-fallback pieces get sampled too
    request.set_return_tokens(true);
    std::vector<int32_t> ids;
    std::string text;
    ASSERT_TRUE(client_
                    ->Generate(request,
                               [&](const v1::GenerateResponse& r) {
                                 std::vector<char32_t> cps;
                                 EXPECT_TRUE(DecodeUtf8(r.text(), &cps)) << "split character";
                                 text += r.text();
                                 for (const auto& t : r.tokens()) ids.push_back(t.token_id());
                                 return true;
                               })
                    .ok());
    ASSERT_EQ(ids.size(), 120u);
    EXPECT_EQ(text, tokenizer_->Decode(ids)) << "seed " << seed;
  }
}

TEST_F(SubwordModelTest, ScoreUsesTheLibrarysIds) {
  v1::ScoreRequest request;
  request.set_model("sub");
  request.set_text("naïve 東京 🙂 zeal");
  auto r = client_->Score(request);
  ASSERT_TRUE(r.ok()) << r.status();
  auto ids = tokenizer_->Encode("naïve 東京 🙂 zeal");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(r->token_ids_size(), static_cast<int>(ids->size()) - 1);
  for (int i = 0; i < r->token_ids_size(); ++i) EXPECT_EQ(r->token_ids(i), (*ids)[i + 1]);
  auto models = client_->ListModels();
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->models(0).tokenizer(), "sentencepiece");
  EXPECT_EQ(models->models(0).vocab_size(), 400);
}

}  // namespace
}  // namespace lstmserve::testing
