#include "server/stop_matcher.h"

#include "gtest/gtest.h"

namespace lstmserve {
namespace {

// Feeds `pieces` one by one; returns the released text and whether it stopped.
std::pair<std::string, bool> Feed(std::vector<std::string> stops,
                                 const std::vector<std::string>& pieces) {
  StopMatcher m(std::move(stops));
  std::string out;
  for (const std::string& p : pieces) {
    if (m.Push(p, &out)) return {out, true};
  }
  m.Flush(&out);
  return {out, false};
}

TEST(StopMatcherTest, NoStopsPassesEverything) {
  EXPECT_EQ(Feed({}, {"ab", "c"}), std::make_pair(std::string("abc"), false));
}

TEST(StopMatcherTest, StopAcrossPiecesIsRemoved) {
  EXPECT_EQ(Feed({"END"}, {"abE", "N", "Dxyz"}), std::make_pair(std::string("ab"), true));
}

TEST(StopMatcherTest, HoldsBackOnlyPossiblePrefixes) {
  StopMatcher m({"END"});
  std::string out;
  EXPECT_FALSE(m.Push("abcE", &out));
  EXPECT_EQ(out, "abc");  // "E" may begin "END"
  EXPECT_FALSE(m.Push("X", &out));
  EXPECT_EQ(out, "abcEX");
}

TEST(StopMatcherTest, EarliestOfSeveralStopsWins) {
  EXPECT_EQ(Feed({"zz", "b"}, {"azzb"}), std::make_pair(std::string("a"), true));
  EXPECT_EQ(Feed({"xyz", "yz"}, {"wxy", "z"}), std::make_pair(std::string("w"), true));
}

TEST(StopMatcherTest, MultiByteCharacters) {
  EXPECT_EQ(Feed({"é!"}, {"caf", "é", "!", "more"}), std::make_pair(std::string("caf"), true));
  EXPECT_EQ(Feed({"é!"}, {"café", "s"}), std::make_pair(std::string("cafés"), false));
}

TEST(StopMatcherTest, FlushReleasesHeldText) {
  EXPECT_EQ(Feed({"END"}, {"abEN"}), std::make_pair(std::string("abEN"), false));
}

}  // namespace
}  // namespace lstmserve
