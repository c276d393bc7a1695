// UTF-8 helpers: strict decoding, encoding, code point descriptions, and the
// streaming assembler that never splits a character.
#include "models/utf8.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lstmserve {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

TEST(Utf8, DecodesEveryLength) {
  std::vector<char32_t> cps;
  ASSERT_TRUE(DecodeUtf8("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x99\x82", &cps));  // a é 中 🙂
  EXPECT_EQ(cps, (std::vector<char32_t>{U'a', U'é', U'中', U'🙂'}));
  ASSERT_TRUE(DecodeUtf8("", &cps));
  EXPECT_TRUE(cps.empty());
  ASSERT_TRUE(DecodeUtf8(std::string("\0x", 2), &cps));
  EXPECT_EQ(cps, (std::vector<char32_t>{0, U'x'}));
}

TEST(Utf8, EncodesAndDecodesTheBoundaries) {
  for (char32_t cp : {0x00u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu,
                      0x10000u, 0x1F642u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(cp, &s);
    EXPECT_EQ(s.size(), cp < 0x80 ? 1u : cp < 0x800 ? 2u : cp < 0x10000 ? 3u : 4u) << cp;
    std::vector<char32_t> back;
    ASSERT_TRUE(DecodeUtf8(s, &back)) << cp;
    EXPECT_EQ(back, std::vector<char32_t>{cp});
  }
}

TEST(Utf8, RejectsInvalidSequencesAtTheirOffset) {
  struct Case {
    std::string text;
    size_t offset;
  };
  const Case cases[] = {
      {"ab\xFF", 2},                  // never a lead byte
      {"\x80", 0},                    // lone continuation
      {"x\xC0\x80", 1},               // overlong NUL
      {"xy\xC1\xBF", 2},              // overlong 2-byte
      {"\xE0\x80\x80", 0},            // overlong 3-byte
      {"\xF0\x80\x80\x80", 0},        // overlong 4-byte
      {"a\xED\xA0\x80", 1},           // surrogate U+D800
      {"\xF4\x90\x80\x80", 0},        // U+110000
      {"\xF5\x80\x80\x80", 0},        // lead byte beyond U+10FFFF
      {"\xC3" "a", 0},                // continuation missing
      {"ok\xE4\xB8", 2},              // truncated at the end
      {"\xE4\xB8\xAD\xF0\x9F\x99", 3},  // 中 then a truncated 🙂
  };
  for (const Case& c : cases) {
    std::vector<char32_t> cps;
    size_t offset = 999;
    EXPECT_FALSE(DecodeUtf8(c.text, &cps, &offset)) << c.offset;
    EXPECT_EQ(offset, c.offset);
  }
}

TEST(Utf8, DescribesCodePoints) {
  EXPECT_EQ(DescribeCodePoint(U'x'), "'x' (U+0078)");
  EXPECT_EQ(DescribeCodePoint(U'中'), "'中' (U+4E2D)");
  EXPECT_EQ(DescribeCodePoint(U'🙂'), "'🙂' (U+1F642)");
  EXPECT_EQ(DescribeCodePoint(U'\n'), "U+000A");
  EXPECT_EQ(DescribeCodePoint(0x7F), "U+007F");
  EXPECT_EQ(DescribeCodePoint(0x85), "U+0085");
}

TEST(Utf8Assembler, NeverSplitsACharacterFedOneByteAtATime) {
  const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x99\x82 \xC3\x9F!";  // aé中🙂 ß!
  Utf8Assembler assembler;
  std::string streamed;
  for (size_t i = 0; i < text.size(); ++i) {
    const std::string out = assembler.Push(text.substr(i, 1));
    std::vector<char32_t> cps;
    EXPECT_TRUE(DecodeUtf8(out, &cps)) << "split character emitted after byte " << streamed.size();
    streamed += out;
    EXPECT_EQ(assembler.pending_bytes() + streamed.size(), i + 1);
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(assembler.pending_bytes(), 0u);
  EXPECT_EQ(assembler.Flush(), "");
}

TEST(Utf8Assembler, HoldsAPartialCharacterUntilItCompletes) {
  Utf8Assembler assembler;
  EXPECT_EQ(assembler.Push("x\xF0\x9F"), "x");
  EXPECT_EQ(assembler.pending_bytes(), 2u);
  EXPECT_EQ(assembler.Push("\x99"), "");
  EXPECT_EQ(assembler.Push("\x82y"), "\xF0\x9F\x99\x82y");
}

TEST(Utf8Assembler, ReplacesInvalidBytes) {
  Utf8Assembler assembler;
  EXPECT_EQ(assembler.Push("a\xFF" "b"), std::string("a") + kReplacement + "b");
  EXPECT_EQ(assembler.Push("\x80"), kReplacement);  // stray continuation
  EXPECT_EQ(assembler.Push("\xC0\x80"), std::string(kReplacement) + kReplacement);  // overlong
  EXPECT_EQ(assembler.Push("\xED\xA0\x80" "c"),  // surrogate: never valid, nothing held
            std::string(kReplacement) + kReplacement + kReplacement + "c");
  // A character cut short by an ASCII byte: no raw byte leaks, the ASCII survives.
  const std::string out = assembler.Push(std::string("\xE4\xB8") + "d");
  std::vector<char32_t> cps;
  ASSERT_TRUE(DecodeUtf8(out, &cps));
  ASSERT_GE(cps.size(), 2u);
  EXPECT_EQ(cps.back(), U'd');
  for (size_t i = 0; i + 1 < cps.size(); ++i) EXPECT_EQ(cps[i], 0xFFFDu);
  EXPECT_EQ(assembler.pending_bytes(), 0u);
}

TEST(Utf8Assembler, FlushReplacesACutOffCharacterAndResets) {
  Utf8Assembler assembler;
  EXPECT_EQ(assembler.Push("z\xE4\xB8"), "z");
  EXPECT_EQ(assembler.Flush(), kReplacement);
  EXPECT_EQ(assembler.pending_bytes(), 0u);
  EXPECT_EQ(assembler.Flush(), "");
  EXPECT_EQ(assembler.Push("\xAD"), kReplacement);  // the old prefix is gone
}

}  // namespace
}  // namespace lstmserve
