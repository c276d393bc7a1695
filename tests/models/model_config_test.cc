// ParseModelConfig: the config.json contract (models/FORMAT.md): required
// fields, limits, tokenizers, and metadata pass-through.
#include "models/model_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace lstmserve {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

json Valid() {
  return json::parse(R"({
    "format": "lstmserve-lm", "format_version": 1, "name": "m",
    "tokenizer": {"type": "char", "vocab": ["a", "é", "ß", "中", "🙂", "\n", "\"", "\u0000"]},
    "embedding_dim": 5, "hidden_size": 13, "num_layers": 2,
    "corpus": "tiny.txt", "validation_loss_nats_per_char": 1.5
  })");
}

absl::StatusOr<ModelConfig> Parse(const json& j) { return ParseModelConfig(j.dump(), "cfg.json"); }

void ExpectInvalid(const json& j, const std::string& message_part) {
  auto c = Parse(j);
  ASSERT_FALSE(c.ok()) << "accepted " << j.dump();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("cfg.json: "));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(message_part));
}

TEST(ModelConfig, ParsesAValidCharConfig) {
  auto c = Parse(Valid());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "m");
  EXPECT_EQ(c->tokenizer.type, TokenizerType::kChar);
  EXPECT_EQ(c->tokenizer.vocab,
            (std::vector<char32_t>{U'a', U'é', U'ß', U'中', U'🙂', U'\n', U'"', U'\0'}));
  EXPECT_EQ(c->vocab_size, 8);
  EXPECT_EQ(c->embedding_dim, 5);
  EXPECT_EQ(c->hidden_size, 13);
  EXPECT_EQ(c->num_layers, 2);
  EXPECT_EQ(json::parse(c->metadata_json),
            json::parse(R"({"corpus": "tiny.txt", "validation_loss_nats_per_char": 1.5})"));
}

TEST(ModelConfig, ParsesAByteConfig) {
  json j = Valid();
  j["tokenizer"] = {{"type", "byte"}};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tokenizer.type, TokenizerType::kByte);
  EXPECT_EQ(c->vocab_size, 256);
  EXPECT_TRUE(c->tokenizer.vocab.empty());
}

TEST(ModelConfig, RejectsWrongFormat) {
  auto text = ParseModelConfig("{\"format\": ", "cfg.json");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("cfg.json: unreadable JSON"));
  ExpectInvalid(json::array(), "top level must be a JSON object");
  json j = Valid();
  j["format"] = "lstmserve";
  ExpectInvalid(j, "field \"format\" must be \"lstmserve-lm\", found \"lstmserve\"");
  j.erase("format");
  ExpectInvalid(j, "field \"format\" must be \"lstmserve-lm\", found nothing");
  for (const json& version : {json(0), json(3), json("1"), json(nullptr)}) {
    j = Valid();
    j["format_version"] = version;
    ExpectInvalid(j, "field \"format_version\" must be 1 or 2, found " + version.dump());
  }
}

TEST(ModelConfig, RejectsMissingOrInvalidFields) {
  for (const char* key : {"embedding_dim", "hidden_size", "num_layers"}) {
    SCOPED_TRACE(key);
    json j = Valid();
    j.erase(key);
    ExpectInvalid(j, std::string("missing field \"") + key + "\"");
    j[key] = 0;
    ExpectInvalid(j, std::string("field \"") + key + "\" = 0 is outside [1, ");
    j[key] = -3;
    ExpectInvalid(j, "= -3 is outside");
    j[key] = 4.5;
    ExpectInvalid(j, std::string("field \"") + key + "\" must be an integer, found 4.5");
    j[key] = "4";
    ExpectInvalid(j, "must be an integer, found \"4\"");
  }
  json j = Valid();
  j["hidden_size"] = kMaxWidth + 1;
  ExpectInvalid(j, "\"hidden_size\" = 65537 is outside [1, 65536]");
  j = Valid();
  j["num_layers"] = kMaxLayers + 1;
  ExpectInvalid(j, "\"num_layers\" = 65 is outside [1, 64]");
  j = Valid();
  j.erase("name");
  ExpectInvalid(j, "field \"name\" must be a non-empty string");
  j["name"] = "";
  ExpectInvalid(j, "field \"name\" must be a non-empty string");
  j["name"] = 3;
  ExpectInvalid(j, "field \"name\" must be a non-empty string");
}

TEST(ModelConfig, RejectsBadTokenizers) {
  json j = Valid();
  j.erase("tokenizer");
  ExpectInvalid(j, "missing field \"tokenizer\"");
  j["tokenizer"] = "char";
  ExpectInvalid(j, "field \"tokenizer\" must be an object");
  j["tokenizer"] = {{"vocab", {"a"}}};
  ExpectInvalid(j, "tokenizer.type");
  j["tokenizer"] = {{"type", "wordpiece"}};
  ExpectInvalid(j, "tokenizer.type \"wordpiece\" is not supported");
  j["tokenizer"] = {{"type", "char"}};
  ExpectInvalid(j, "char tokenizer needs an array \"tokenizer.vocab\"");
  j["tokenizer"] = {{"type", "char"}, {"vocab", json::array()}};
  ExpectInvalid(j, "tokenizer.vocab has 0 entries");
}

TEST(ModelConfig, RejectsBadVocabEntries) {
  auto with_entry = [](const json& entry) {
    json j = Valid();
    j["tokenizer"]["vocab"][2] = entry;
    return j;
  };
  ExpectInvalid(with_entry("a"), "tokenizer.vocab[2] = \"a\" duplicates an earlier entry");
  ExpectInvalid(with_entry("🙂"), "tokenizer.vocab[4] = \"🙂\" duplicates");
  ExpectInvalid(with_entry("ab"), "tokenizer.vocab[2] = \"ab\" must be exactly one Unicode code "
                                  "point, found 2");
  ExpectInvalid(with_entry("e\u0301"), "must be exactly one Unicode code point, found 2");
  ExpectInvalid(with_entry("🇫🇷"), "found 2");
  ExpectInvalid(with_entry(""), "tokenizer.vocab[2] = \"\" must be exactly one Unicode code point");
  ExpectInvalid(with_entry(7), "tokenizer.vocab[2] is not a string");
}

// Metadata nested `levels` deep: [[...]] inside the top-level object.
std::string NestedMetadataConfig(int levels) {
  std::string text = Valid().dump();
  text.pop_back();  // the closing brace
  return text + ",\"deep\":" + std::string(levels, '[') + std::string(levels, ']') + "}";
}

TEST(ModelConfig, AcceptsNestingUpTo64Levels) {
  // The top-level object is level 1, so 63 arrays inside make 64.
  auto c = ParseModelConfig(NestedMetadataConfig(63), "cfg.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(json::parse(c->metadata_json).at("deep").dump(),
            std::string(63, '[') + std::string(63, ']'));
}

TEST(ModelConfig, RejectsDeepNestingInsteadOfOverflowingTheStack) {
  // Found by hand while fuzzing (beyond the fuzzers' input size): metadata a
  // million levels deep crashed ParseModelConfig with a stack overflow in
  // nlohmann::json's recursive copy and dump().
  for (int levels : {64, 1000000}) {
    auto c = ParseModelConfig(NestedMetadataConfig(levels), "cfg.json");
    ASSERT_FALSE(c.ok()) << levels;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(c.status().message(),
              "cfg.json: unreadable JSON: arrays and objects nest deeper than 64 levels");
  }
}

json WordConfig() {
  json j = Valid();
  j["format_version"] = 2;
  j["tokenizer"] = json::parse(R"({"type": "word", "vocab": ["<eos>", "the", "café", "<unk>"],
                                   "eos_token": "<eos>", "unk_token": "<unk>"})");
  return j;
}

TEST(ModelConfig, ParsesAWordConfig) {
  auto c = Parse(WordConfig());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->format_version, 2);
  EXPECT_EQ(c->tokenizer.type, TokenizerType::kWord);
  EXPECT_EQ(c->tokenizer.words, (std::vector<std::string>{"<eos>", "the", "café", "<unk>"}));
  EXPECT_EQ(c->tokenizer.eos_token, "<eos>");
  EXPECT_TRUE(c->tokenizer.has_unk);
  EXPECT_EQ(c->tokenizer.unk_token, "<unk>");
  EXPECT_EQ(c->vocab_size, 4);
  json no_unk = WordConfig();
  no_unk["tokenizer"]["unk_token"] = nullptr;
  auto c2 = Parse(no_unk);
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_FALSE(c2->tokenizer.has_unk);
  no_unk["tokenizer"].erase("unk_token");
  ASSERT_TRUE(Parse(no_unk).ok());
}

TEST(ModelConfig, RejectsBadWordVocabularies) {
  json j = WordConfig();
  j["tokenizer"].erase("eos_token");
  ExpectInvalid(j, "word tokenizer needs \"tokenizer.eos_token\"");
  j = WordConfig();
  j["tokenizer"]["eos_token"] = "</s>";
  ExpectInvalid(j, "tokenizer.eos_token = \"</s>\" is not in tokenizer.vocab");
  j = WordConfig();
  j["tokenizer"]["unk_token"] = "<UNK>";
  ExpectInvalid(j, "tokenizer.unk_token = \"<UNK>\" is not in tokenizer.vocab");
  j = WordConfig();
  j["tokenizer"]["vocab"][2] = "the";
  ExpectInvalid(j, "tokenizer.vocab[2] = \"the\" duplicates tokenizer.vocab[1]");
  j = WordConfig();
  j["tokenizer"]["vocab"][2] = "";
  ExpectInvalid(j, "tokenizer.vocab[2] is 0 bytes");
  j = WordConfig();
  j["tokenizer"]["vocab"][2] = "new york";
  ExpectInvalid(j, "tokenizer.vocab[2] = \"new york\" contains whitespace ' ' (U+0020)");
  j = WordConfig();
  j["tokenizer"]["vocab"][2] = "a\u00a0b";
  ExpectInvalid(j, "contains whitespace");
  j = WordConfig();
  j["tokenizer"]["vocab"][2] = 7;
  ExpectInvalid(j, "tokenizer.vocab[2] is not a string");
  // The eos token may be spelled "\n" (it stands for the newline).
  j = WordConfig();
  j["tokenizer"]["vocab"][0] = "\n";
  j["tokenizer"]["eos_token"] = "\n";
  EXPECT_TRUE(Parse(j).ok());
}

TEST(ModelConfig, ParsesASentencePieceConfigWithoutItsVocabularySize) {
  json j = Valid();
  j["format_version"] = 2;
  j["tokenizer"] = {{"type", "sentencepiece"}, {"model_file", "tokenizer.model"}};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tokenizer.type, TokenizerType::kSentencePiece);
  EXPECT_EQ(c->tokenizer.model_file, "tokenizer.model");
  EXPECT_EQ(c->vocab_size, 0);  // the model file's piece count, set by LoadModelPackage
  for (const char* bad : {"../tokenizer.model", "/etc/passwd", "", "..", "sub/t.model"}) {
    j["tokenizer"]["model_file"] = bad;
    ExpectInvalid(j, "must be a plain file name inside the package directory");
  }
  j["tokenizer"].erase("model_file");
  ExpectInvalid(j, "sentencepiece tokenizer needs a string \"tokenizer.model_file\"");
}

TEST(ModelConfig, ParsesProjSize) {
  json j = Valid();
  j["format_version"] = 2;
  j["proj_size"] = 7;
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->proj_size, 7);
  EXPECT_EQ(c->output_size(), 7);
  EXPECT_FALSE(json::parse(c->metadata_json).contains("proj_size"));
  j["proj_size"] = 0;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->proj_size, 0);
  EXPECT_EQ(c->output_size(), 13);
  j["proj_size"] = 13;
  ExpectInvalid(j, "field \"proj_size\" = 13 must be smaller than hidden_size = 13");
  j["proj_size"] = -1;
  ExpectInvalid(j, "field \"proj_size\" = -1 is outside [1, 65536]");
  j["proj_size"] = "7";
  ExpectInvalid(j, "field \"proj_size\" must be an integer");
}

TEST(ModelConfig, Version2FeaturesNeedFormatVersion2AndVersion1StillLoads) {
  json j = WordConfig();
  j["format_version"] = 1;
  ExpectInvalid(j, "a word tokenizer needs \"format_version\": 2, found 1");
  j = Valid();
  j["proj_size"] = 4;
  ExpectInvalid(j, "proj_size needs \"format_version\": 2, found 1");
  j = Valid();
  j["tokenizer"] = {{"type", "sentencepiece"}, {"model_file", "t.model"}};
  ExpectInvalid(j, "a sentencepiece tokenizer needs \"format_version\": 2");
  j = Valid();
  j["format_version"] = 3;
  ExpectInvalid(j, "field \"format_version\" must be 1 or 2, found 3");
  auto v1 = Parse(Valid());
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->format_version, 1);
  json v2 = Valid();
  v2["format_version"] = 2;
  ASSERT_TRUE(Parse(v2).ok());
}

}  // namespace
}  // namespace lstmserve
