// The word tokenizer (models/FORMAT.md, "word"): data.Corpus' splitting,
// unknown words with and without <unk>, the eos token for "\n", and the
// decoding rules (single spaces, no space around "\n" or before the first word).
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/tokenizer.h"

namespace lstmserve {
namespace {

// ids: <eos>=0 the=1 cat=2 sat=3 café=4 <unk>=5 東京=6
constexpr int32_t kEos = 0, kThe = 1, kCat = 2, kSat = 3, kCafe = 4, kUnk = 5, kTokyo = 6;

std::unique_ptr<Tokenizer> Words(bool with_unk) {
  TokenizerConfig config;
  config.type = TokenizerType::kWord;
  config.words = {"<eos>", "the", "cat", "sat", "café", "<unk>", "東京"};
  config.eos_token = "<eos>";
  config.has_unk = with_unk;
  if (with_unk) config.unk_token = "<unk>";
  auto t = Tokenizer::Create(config);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::vector<int32_t> EncodeOk(const Tokenizer& t, const std::string& text) {
  auto ids = t.Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(WordTokenizer, SplitsLinesIntoWordsAndEos) {
  auto t = Words(false);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type(), TokenizerType::kWord);
  EXPECT_EQ(t->vocab_size(), 7);
  EXPECT_EQ(EncodeOk(*t, "the cat\nsat\n"),
            (std::vector<int32_t>{kThe, kCat, kEos, kSat, kEos}));
  // Runs of whitespace (tabs, \r, Python's Unicode spaces such as U+00A0 and
  // U+3000) separate words and produce nothing themselves.
  EXPECT_EQ(EncodeOk(*t, "  the\t\tcat \r\n"), (std::vector<int32_t>{kThe, kCat, kEos}));
  EXPECT_EQ(EncodeOk(*t, "the\u00a0cat\u3000sat"), (std::vector<int32_t>{kThe, kCat, kSat}));
  // Non-ASCII words.
  EXPECT_EQ(EncodeOk(*t, "café 東京"), (std::vector<int32_t>{kCafe, kTokyo}));
}

TEST(WordTokenizer, EmptyLinesAreEosAndTextWithoutFinalNewlineGetsNoEos) {
  auto t = Words(false);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(EncodeOk(*t, "\n\n"), (std::vector<int32_t>{kEos, kEos}));
  EXPECT_EQ(EncodeOk(*t, "the\n\n cat"), (std::vector<int32_t>{kThe, kEos, kEos, kCat}));
  EXPECT_EQ(EncodeOk(*t, "the cat"), (std::vector<int32_t>{kThe, kCat}));
  EXPECT_TRUE(EncodeOk(*t, "").empty());
  EXPECT_TRUE(EncodeOk(*t, " \t ").empty());
  // The eos token's spelling is a word like any other.
  EXPECT_EQ(EncodeOk(*t, "the <eos>"), (std::vector<int32_t>{kThe, kEos}));
}

TEST(WordTokenizer, UnknownWordBecomesUnkWhenTheVocabularyHasOne) {
  auto t = Words(true);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(EncodeOk(*t, "the dog sat\nCat"), (std::vector<int32_t>{kThe, kUnk, kSat, kEos, kUnk}));
}

TEST(WordTokenizer, UnknownWordWithoutUnkNamesTheWordAndItsPosition) {
  auto t = Words(false);
  ASSERT_NE(t, nullptr);
  auto ids = t->Encode("the cat\nthe dög sat", "prompt");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ids.status().message(),
            "prompt contains the word \"dög\" at token position 4, which is not in the model's "
            "vocabulary of 7 words (and the model has no unknown-word token)");
  // A very long unknown word is quoted shortened.
  auto long_word = t->Encode(std::string(5000, 'x'));
  ASSERT_FALSE(long_word.ok());
  EXPECT_THAT(std::string(long_word.status().message()),
              ::testing::HasSubstr("\"" + std::string(40, 'x') + "...\" at token position 0"));
}

TEST(WordTokenizer, InvalidUtf8IsRejectedWithItsOffset) {
  auto t = Words(true);
  ASSERT_NE(t, nullptr);
  auto ids = t->Encode("the \xC3(", "text");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().message(), "text is not valid UTF-8 at byte offset 4");
}

TEST(WordTokenizer, DecodesWithSingleSpacesAndNewlines) {
  auto t = Words(true);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->Decode({kThe, kCat, kEos, kSat}), "the cat\nsat");
  // No space before the first word of a generation or of a line, none
  // after the last word of a line.
  EXPECT_EQ(t->Decode({kEos, kThe, kEos, kEos, kCat, kSat, kEos}), "\nthe\n\ncat sat\n");
  EXPECT_EQ(t->Decode({kUnk, kCafe}), "<unk> café");
  EXPECT_EQ(t->Decode({}), "");
  // Text made by decoding encodes back to the same ids.
  const std::vector<int32_t> ids = {kThe, kCat, kEos, kEos, kSat, kTokyo, kEos, kCafe};
  EXPECT_EQ(EncodeOk(*t, t->Decode(ids)), ids);
}

TEST(WordTokenizer, StreamsOneWordAtATime) {
  auto t = Words(true);
  ASSERT_NE(t, nullptr);
  auto d = t->NewDecoder();
  EXPECT_EQ(d->Push(kThe), "the");
  EXPECT_EQ(d->Push(kCat), " cat");
  EXPECT_EQ(d->Push(kEos), "\n");
  EXPECT_EQ(d->Push(kSat), "sat");
  EXPECT_EQ(d->Flush(), "");
  // After Flush the decoder starts a new generation: no leading space.
  EXPECT_EQ(d->Push(kCat), "cat");
  EXPECT_EQ(t->TokenText(kEos), "\n");
  EXPECT_EQ(t->TokenText(kTokyo), "東京");
  EXPECT_EQ(t->max_bytes_per_token(), 0);
}

TEST(WordTokenizer, RejectsAnEosTokenOutsideTheVocabulary) {
  TokenizerConfig config;
  config.type = TokenizerType::kWord;
  config.words = {"a", "b"};
  config.eos_token = "<eos>";
  auto t = Tokenizer::Create(config);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), ::testing::HasSubstr("<eos>"));
}

}  // namespace
}  // namespace lstmserve
