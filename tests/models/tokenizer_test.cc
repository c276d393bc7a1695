// Tokenizer: char and byte encode/decode round trips (including the golden
// fixtures' texts), and errors that name the offending character or byte.
#include "models/tokenizer.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model_package.h"
#include "models/utf8.h"
#include "nlohmann/json.hpp"
#include "tests/models/package_writer.h"

namespace lstmserve {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Tokenizer> CharTokenizer(std::u32string vocab) {
  TokenizerConfig config;
  config.type = TokenizerType::kChar;
  config.vocab.assign(vocab.begin(), vocab.end());
  auto t = Tokenizer::Create(config);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::unique_ptr<Tokenizer> ByteTokenizer() {
  TokenizerConfig config;
  config.type = TokenizerType::kByte;
  return *Tokenizer::Create(config);
}

TEST(CharTokenizer, RoundTripsNonAsciiText) {
  auto t = CharTokenizer(U"ab é中🙂\nß");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vocab_size(), 8);
  EXPECT_EQ(t->type(), TokenizerType::kChar);
  const std::string text = "ba 🙂中é\nßa";
  auto ids = t->Encode(text);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{1, 0, 2, 5, 4, 3, 6, 7, 0}));
  EXPECT_EQ(t->Decode(*ids), text);
  EXPECT_EQ(t->TokenText(5), "🙂");
  EXPECT_EQ(t->TokenText(4), "中");
  auto empty = t->Encode("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(CharTokenizer, CharacterOutsideTheVocabNamesItAndItsPosition) {
  auto t = CharTokenizer(U"ab é");
  ASSERT_NE(t, nullptr);
  // Position counts characters, not bytes: 'é' is two bytes.
  auto ids = t->Encode("éa b中a", "prompt");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ids.status().message(),
            "prompt contains '中' (U+4E2D) at character position 4, which is not in the model's "
            "vocabulary of 4 characters");
  auto newline = t->Encode("a\n");
  EXPECT_THAT(std::string(newline.status().message()),
              HasSubstr("text contains U+000A at character position 1"));
  auto emoji = t->Encode("🙂");
  EXPECT_THAT(std::string(emoji.status().message()), HasSubstr("'🙂' (U+1F642) at character position 0"));
}

TEST(CharTokenizer, InvalidUtf8NamesTheByteOffset) {
  auto t = CharTokenizer(U"ab");
  ASSERT_NE(t, nullptr);
  auto ids = t->Encode("ab\xC3(", "prompt");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ids.status().message(), "prompt is not valid UTF-8 at byte offset 2");
}

TEST(CharTokenizer, CreateRejectsDuplicatesAndEmptyVocab) {
  TokenizerConfig config;
  config.vocab = {U'a', U'中', U'a'};
  auto dup = Tokenizer::Create(config);
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("'a' (U+0061)"));
  config.vocab.clear();
  EXPECT_FALSE(Tokenizer::Create(config).ok());
}

TEST(ByteTokenizer, RoundTripsEveryByteOfValidText) {
  auto t = ByteTokenizer();
  EXPECT_EQ(t->vocab_size(), 256);
  EXPECT_EQ(t->type(), TokenizerType::kByte);
  const std::string text = "hé中🙂\n";
  auto ids = t->Encode(text);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{'h', 0xC3, 0xA9, 0xE4, 0xB8, 0xAD, 0xF0, 0x9F, 0x99, 0x82,
                                        '\n'}));
  EXPECT_EQ(t->Decode(*ids), text);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(t->TokenText(b), std::string(1, static_cast<char>(b)));
  // Any byte sequence decodes (ids, not text, are the model's output); the
  // text is valid UTF-8, with U+FFFD for each invalid byte, as streamed.
  EXPECT_EQ(t->Decode({0xFF, 0x00, 0x80}), std::string("\xEF\xBF\xBD\x00\xEF\xBF\xBD", 7));
}

TEST(ByteTokenizer, InputTextMustStillBeValidUtf8) {
  auto ids = ByteTokenizer()->Encode("ok\xFF");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().message(), "text is not valid UTF-8 at byte offset 2");
}

// The golden fixtures' texts encode to their ids with the package's own
// tokenizer (byte models: decoded through Utf8Assembler, as a stream would be).
TEST(Tokenizer, GoldenTextsMatchTheirIds) {
  int checked = 0;
  const auto root = std::filesystem::path(LSTMSERVE_SOURCE_DIR) / "tests/models/golden";
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    const std::string dir = entry.path().string();
    auto pkg = LoadModelPackage(dir);
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    auto t = Tokenizer::Create(pkg->config.tokenizer);
    ASSERT_TRUE(t.ok()) << t.status();
    const auto golden = nlohmann::json::parse(testing::ReadFileOrDie(dir + "/golden.json"));
    for (const auto& seq : golden.at("sequences")) {
      const std::string text = seq.at("text");
      const auto ids = seq.at("ids").get<std::vector<int32_t>>();
      if ((*t)->type() == TokenizerType::kChar) {
        auto encoded = (*t)->Encode(text);
        ASSERT_TRUE(encoded.ok()) << encoded.status();
        EXPECT_EQ(*encoded, ids) << dir;
        EXPECT_EQ((*t)->Decode(ids), text) << dir;
      } else {
        Utf8Assembler assembler;
        std::string streamed;
        for (int32_t id : ids) streamed += assembler.Push((*t)->TokenText(id));
        streamed += assembler.Flush();
        EXPECT_EQ(streamed, text) << dir;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 12);
}

}  // namespace
}  // namespace lstmserve
