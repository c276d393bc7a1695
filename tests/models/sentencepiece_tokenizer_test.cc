// The sentencepiece tokenizer on the committed fixture
// tests/models/data/sp_bpe400.model (made by make_sentencepiece_fixture.py;
// the expected ids come from python3-sentencepiece, the same library
// version): encoding, decoding, streaming that never splits a character
// (byte-fallback pieces), and package loading with its model file.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model_package.h"
#include "testing/random_package.h"
#include "models/sentencepiece_model.h"
#include "models/tokenizer.h"
#include "models/utf8.h"
#include "tests/models/package_writer.h"

namespace lstmserve {
namespace {

using ::testing::HasSubstr;

std::string FixturePath() {
  return std::string(LSTMSERVE_SOURCE_DIR) + "/tests/models/data/sp_bpe400.model";
}

std::unique_ptr<Tokenizer> Pieces() {
  TokenizerConfig config;
  config.type = TokenizerType::kSentencePiece;
  config.model_file = "sp_bpe400.model";
  config.sentencepiece_model = testing::ReadFileOrDie(FixturePath());
  auto t = Tokenizer::Create(config);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

// The library's own one-shot decoding (the oracle of the streaming tests).
std::string LibraryDecode(const std::vector<int32_t>& ids) {
  std::string error;
  auto model = SentencePieceModel::Load(testing::ReadFileOrDie(FixturePath()), &error);
  EXPECT_NE(model, nullptr) << error;
  return model == nullptr ? "" : model->DecodeIds(std::vector<int>(ids.begin(), ids.end()));
}

// "naïve 東京 🙂 zeal": ï, the CJK characters, the emoji and 'z' are
// byte-fallback pieces in this model.
const std::string kMixed = "naïve 東京 🙂 zeal";
const std::vector<int32_t> kMixedIds = {285, 355, 196, 176, 293, 351, 231, 158, 178, 229, 187,
                                        173, 351, 241, 160, 154, 131, 351, 123, 352, 355, 361};

TEST(SentencePieceTokenizer, EncodesAsTheLibraryDoes) {
  auto t = Pieces();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type(), TokenizerType::kSentencePiece);
  EXPECT_EQ(t->vocab_size(), 400);
  auto ids = t->Encode(kMixed);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, kMixedIds);
  auto lines = t->Encode("First Citizen:\n");
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(*lines, (std::vector<int32_t>{351, 397, 313, 299, 307, 271, 360, 123, 280, 374, 11}));
  EXPECT_EQ(t->Decode(*lines), "First Citizen:\n");
  EXPECT_EQ(t->Decode(kMixedIds), kMixed);
  EXPECT_EQ(LibraryDecode(kMixedIds), kMixed);
}

TEST(SentencePieceTokenizer, InvalidUtf8IsRejectedWithItsOffset) {
  auto t = Pieces();
  ASSERT_NE(t, nullptr);
  auto ids = t->Encode("ab\xFF", "prompt");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ids.status().message(), "prompt is not valid UTF-8 at byte offset 2");
}

TEST(SentencePieceTokenizer, StreamingHoldsByteFallbackPiecesUntilTheCharacterIsWhole) {
  auto t = Pieces();
  ASSERT_NE(t, nullptr);
  auto d = t->NewDecoder();
  std::vector<std::string> chunks;
  for (int32_t id : kMixedIds) chunks.push_back(d->Push(id));
  chunks.push_back(d->Flush());
  std::string joined;
  for (const std::string& c : chunks) {
    std::vector<char32_t> cps;
    EXPECT_TRUE(DecodeUtf8(c, &cps)) << "chunk is not whole UTF-8: " << c;
    joined += c;
  }
  EXPECT_EQ(joined, kMixed);
  // The first piece "▁n" loses its "▁" at the start of a generation, as
  // SentencePiece decodes.
  EXPECT_EQ(chunks[0], "n");
  EXPECT_EQ(chunks[1], "a");
  EXPECT_EQ(chunks[2], "");  // <0xC3>: the first byte of ï
  EXPECT_EQ(chunks[3], "ï");
  EXPECT_EQ(chunks[8], "東");
  EXPECT_EQ(chunks[13], "");  // <0xF0>
  EXPECT_EQ(chunks[16], "🙂");
}

TEST(SentencePieceTokenizer, AGenerationCutInsideACharacterEndsAsTheLibraryDecodesIt) {
  auto t = Pieces();
  ASSERT_NE(t, nullptr);
  // ▁H, then the first two bytes of 🙂: the stream holds them back and Flush
  // releases the library's replacement characters.
  const std::vector<int32_t> ids = {339, 241, 160};
  auto d = t->NewDecoder();
  EXPECT_EQ(d->Push(339), "H");
  EXPECT_EQ(d->Push(241), "");
  EXPECT_EQ(d->Push(160), "");
  const std::string tail = d->Flush();
  std::vector<char32_t> cps;
  EXPECT_TRUE(DecodeUtf8(tail, &cps));
  EXPECT_FALSE(tail.empty());
  EXPECT_EQ("H" + tail, LibraryDecode(ids));
  // An interrupted byte run: the library's decoding, streamed.
  const std::vector<int32_t> cut = {351, 241, 160, 339, 241, 160, 154, 131};
  auto d2 = t->NewDecoder();
  std::string streamed;
  for (int32_t id : cut) streamed += d2->Push(id);
  streamed += d2->Flush();
  EXPECT_EQ(streamed, LibraryDecode(cut));
  EXPECT_THAT(streamed, ::testing::EndsWith(" H🙂"));
}

TEST(SentencePieceTokenizer, LongGenerationsStreamExactlyTheLibraryDecoding) {
  auto t = Pieces();
  ASSERT_NE(t, nullptr);
  // Every piece id in turn (control, unknown, byte and normal pieces mixed).
  std::vector<int32_t> ids;
  for (int i = 0; i < 3 * t->vocab_size(); ++i) ids.push_back((i * 7919) % t->vocab_size());
  auto d = t->NewDecoder();
  std::string streamed;
  for (int32_t id : ids) {
    const std::string chunk = d->Push(id);
    std::vector<char32_t> cps;
    ASSERT_TRUE(DecodeUtf8(chunk, &cps));
    streamed += chunk;
  }
  streamed += d->Flush();
  EXPECT_EQ(streamed, LibraryDecode(ids));
}

TEST(SentencePieceTokenizer, TokenTextShowsSpacesAndBytes) {
  auto t = Pieces();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->TokenText(339), " H");
  EXPECT_EQ(t->TokenText(241), "\xF0");
  EXPECT_EQ(t->max_bytes_per_token(), 0);
}

TEST(SentencePieceTokenizer, GarbageModelIsRejectedNamingTheFile) {
  TokenizerConfig config;
  config.type = TokenizerType::kSentencePiece;
  config.model_file = "tokenizer.model";
  config.sentencepiece_model = "this is not a protobuf";
  auto t = Tokenizer::Create(config);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("tokenizer.model"));
}

// A package with a sentencepiece tokenizer: V comes from the model file.
testing::PackageSpec SentencePiecePackage() {
  RandomPackageShape shape;
  shape.vocab_size = 400;
  shape.embedding_dim = 8;
  shape.hidden_size = 12;
  shape.num_layers = 1;
  ModelPackage p = RandomPackage(shape);
  p.config.format_version = 2;
  p.config.tokenizer = TokenizerConfig();
  p.config.tokenizer.type = TokenizerType::kSentencePiece;
  p.config.tokenizer.model_file = "tokenizer.model";
  return testing::SpecFromPackage(p);
}

TEST(SentencePiecePackage, LoadsTheModelFileFromThePackage) {
  testing::ScopedTempDir dir;
  testing::WritePackage(SentencePiecePackage(), dir.path());
  testing::WriteFileOrDie(dir.path() + "/tokenizer.model", testing::ReadFileOrDie(FixturePath()));
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_EQ(pkg->config.vocab_size, 400);
  EXPECT_EQ(pkg->config.tokenizer.sentencepiece_model, testing::ReadFileOrDie(FixturePath()));
  auto t = Tokenizer::Create(pkg->config.tokenizer);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->vocab_size(), 400);
}

TEST(SentencePiecePackage, MissingModelFileIsNotFound) {
  testing::ScopedTempDir dir;
  testing::WritePackage(SentencePiecePackage(), dir.path());
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_FALSE(pkg.ok());
  EXPECT_EQ(pkg.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(pkg.status().message()), HasSubstr("tokenizer.model"));
}

TEST(SentencePiecePackage, CorruptModelFileIsRejected) {
  testing::ScopedTempDir dir;
  testing::WritePackage(SentencePiecePackage(), dir.path());
  testing::WriteFileOrDie(dir.path() + "/tokenizer.model",
                          testing::ReadFileOrDie(FixturePath()).substr(0, 100));
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_FALSE(pkg.ok());
  EXPECT_EQ(pkg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pkg.status().message()),
              HasSubstr("tokenizer.model: not a SentencePiece model"));
}

TEST(SentencePiecePackage, VocabularySizeMismatchNamesTheTensor) {
  testing::ScopedTempDir dir;
  testing::PackageSpec spec = SentencePiecePackage();
  testing::WritePackage(spec, dir.path());
  // A model file of 400 pieces, but the tensors are made for 399.
  RandomPackageShape shape;
  shape.vocab_size = 399;
  shape.embedding_dim = 8;
  shape.hidden_size = 12;
  shape.num_layers = 1;
  spec.tensors = testing::PackageTensors(RandomPackage(shape).weights);
  testing::WritePackage(spec, dir.path());
  testing::WriteFileOrDie(dir.path() + "/tokenizer.model", testing::ReadFileOrDie(FixturePath()));
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_FALSE(pkg.ok());
  EXPECT_THAT(std::string(pkg.status().message()),
              HasSubstr("\"embedding.weight\" has shape [399, 8], expected [400, 8]"));
}

}  // namespace
}  // namespace lstmserve
