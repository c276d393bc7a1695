// LoadModelPackage: a valid package round-trips; each corrupted copy of a
// golden fixture is rejected with the right code and a message naming the
// problem; BF16/F16 weights widen exactly.
#include "models/model_package.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/safetensors.h"
#include "tests/models/package_writer.h"
#include "testing/random_package.h"

namespace lstmserve {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::FindTensor;
using testing::PackageSpec;
using testing::RawTensor;

// The smallest golden fixture: char vocab of 11, E=7, H=13, L=1.
constexpr char kBase[] = "l1_h13";
constexpr int kV = 11, kE = 7, kH = 13;

ModelPackage LoadBase() {
  auto pkg = LoadModelPackage(testing::GoldenDir(kBase));
  if (!pkg.ok()) {
    ADD_FAILURE() << pkg.status();
    return {};
  }
  return *std::move(pkg);
}

void ExpectSameWeights(const ModelWeights& a, const ModelWeights& b) {
  auto same = [](const Tensor& x, const Tensor& y) {
    EXPECT_EQ(x.shape, y.shape);
    EXPECT_EQ(x.data, y.data);
  };
  same(a.embedding, b.embedding);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t k = 0; k < a.layers.size(); ++k) {
    same(a.layers[k].w_ih, b.layers[k].w_ih);
    same(a.layers[k].w_hh, b.layers[k].w_hh);
    same(a.layers[k].b_ih, b.layers[k].b_ih);
    same(a.layers[k].b_hh, b.layers[k].b_hh);
  }
  same(a.head_w, b.head_w);
  same(a.head_b, b.head_b);
}

TEST(ModelPackage, GoldenFixtureLoads) {
  ModelPackage p = LoadBase();
  EXPECT_EQ(p.config.name, kBase);
  EXPECT_EQ(p.config.vocab_size, kV);
  EXPECT_EQ(p.config.embedding_dim, kE);
  EXPECT_EQ(p.config.hidden_size, kH);
  EXPECT_EQ(p.config.num_layers, 1);
  EXPECT_EQ(p.ParameterCount(),
            kV * kE + 4 * kH * (kE + kH + 2) + kV * kH + kV);
  EXPECT_THAT(p.config.metadata_json, HasSubstr("description"));
}

TEST(ModelPackage, WrittenPackageRoundTrips) {
  const ModelPackage base = LoadBase();
  testing::ScopedTempDir dir;
  testing::WritePackage(testing::SpecFromPackage(base), dir.path());
  auto again = LoadModelPackage(dir.path());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->directory, dir.path());
  EXPECT_EQ(again->config.tokenizer.vocab, base.config.tokenizer.vocab);
  ExpectSameWeights(again->weights, base.weights);
}

TEST(ModelPackage, ProjectedWordPackageRoundTrips) {
  RandomPackageShape shape;
  shape.word_vocab = true;
  shape.vocab_size = 20;
  shape.embedding_dim = 6;
  shape.hidden_size = 10;
  shape.proj_size = 4;
  shape.num_layers = 2;
  const ModelPackage base = RandomPackage(shape);
  testing::ScopedTempDir dir;
  testing::PackageSpec spec = testing::SpecFromPackage(base);
  EXPECT_EQ(spec.config.at("format_version"), 2);
  testing::WritePackage(spec, dir.path());
  auto again = LoadModelPackage(dir.path());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->config.proj_size, 4);
  EXPECT_EQ(again->config.tokenizer.type, TokenizerType::kWord);
  EXPECT_EQ(again->config.tokenizer.words, base.config.tokenizer.words);
  EXPECT_EQ(again->config.vocab_size, 20);
  ExpectSameWeights(again->weights, base.weights);
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(again->weights.layers[k].w_hr.shape, (std::vector<int64_t>{4, 10}));
    EXPECT_EQ(again->weights.layers[k].w_hr.data, base.weights.layers[k].w_hr.data);
    EXPECT_EQ(again->weights.layers[k].w_hh.shape, (std::vector<int64_t>{40, 4}));
  }
  EXPECT_EQ(again->weights.layers[1].w_ih.shape, (std::vector<int64_t>{40, 4}));
  EXPECT_EQ(again->weights.head_w.shape, (std::vector<int64_t>{20, 4}));
  EXPECT_EQ(again->ParameterCount(), base.ParameterCount());

  // Without weight_hr the package is refused naming the tensor.
  spec.tensors.erase(std::remove_if(spec.tensors.begin(), spec.tensors.end(),
                                    [](const RawTensor& t) { return t.name == "lstm.weight_hr_l1"; }),
                     spec.tensors.end());
  testing::WritePackage(spec, dir.path());
  auto missing = LoadModelPackage(dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("missing tensor \"lstm.weight_hr_l1\" (expected shape [4, 10])"));
  // Without proj_size the same tensors have the wrong shapes.
  testing::PackageSpec plain = testing::SpecFromPackage(base);
  plain.config.erase("proj_size");
  testing::WritePackage(plain, dir.path());
  auto unprojected = LoadModelPackage(dir.path());
  ASSERT_FALSE(unprojected.ok());
  EXPECT_THAT(std::string(unprojected.status().message()),
              HasSubstr("\"lstm.weight_hh_l0\" has shape [40, 4], expected [40, 10]"));
}

TEST(ModelPackage, TensorOrderInTheFileDoesNotMatter) {
  const ModelPackage base = LoadBase();
  PackageSpec spec = testing::SpecFromPackage(base);
  std::reverse(spec.tensors.begin(), spec.tensors.end());
  testing::ScopedTempDir dir;
  testing::WritePackage(spec, dir.path());
  auto again = LoadModelPackage(dir.path());
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectSameWeights(again->weights, base.weights);
}

// ---- Corrupted packages ------------------------------------------------------

struct Corruption {
  std::string name;
  std::function<void(PackageSpec*)> corrupt;
  absl::StatusCode code;
  std::vector<std::string> message_has;
};

void SetFloat(PackageSpec* spec, const std::string& tensor, size_t index, float value) {
  RawTensor* t = FindTensor(spec, tensor);
  std::memcpy(t->bytes.data() + 4 * index, &value, 4);
}

// The spec's safetensors image with the JSON header edited by `edit`.
void EditHeader(PackageSpec* spec, const std::function<void(nlohmann::json*)>& edit) {
  std::string data;
  nlohmann::json header = testing::SafetensorsHeader(spec->tensors, &data);
  edit(&header);
  spec->safetensors_bytes = testing::SafetensorsImage(header.dump(), data);
}

std::string FullImage(const PackageSpec& spec) {
  return testing::SafetensorsImage(spec.tensors);
}

std::vector<Corruption> Corruptions() {
  using absl::StatusCode;
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  const StatusCode kNotFound = StatusCode::kNotFound;
  return {
      // Files.
      {"MissingConfig", [](PackageSpec* s) { s->write_config = false; }, kNotFound,
       {"config.json"}},
      {"MissingWeights", [](PackageSpec* s) { s->write_weights = false; }, kNotFound,
       {"model.safetensors"}},
      // config.json.
      {"UnreadableJson", [](PackageSpec* s) { s->config_bytes = "{\"format\": \"lstmserve-lm\","; },
       kInvalid, {"config.json", "unreadable JSON"}},
      {"WrongFormat", [](PackageSpec* s) { s->config["format"] = "onnx"; }, kInvalid,
       {"config.json", "\"format\"", "lstmserve-lm", "onnx"}},
      {"WrongFormatVersion", [](PackageSpec* s) { s->config["format_version"] = 3; }, kInvalid,
       {"\"format_version\" must be 1 or 2, found 3"}},
      {"MissingFormatVersion", [](PackageSpec* s) { s->config.erase("format_version"); },
       kInvalid, {"\"format_version\"", "nothing"}},
      {"MissingName", [](PackageSpec* s) { s->config.erase("name"); }, kInvalid, {"\"name\""}},
      {"MissingHiddenSize", [](PackageSpec* s) { s->config.erase("hidden_size"); }, kInvalid,
       {"missing field \"hidden_size\""}},
      {"ZeroEmbeddingDim", [](PackageSpec* s) { s->config["embedding_dim"] = 0; }, kInvalid,
       {"\"embedding_dim\" = 0 is outside [1, "}},
      {"NegativeLayers", [](PackageSpec* s) { s->config["num_layers"] = -1; }, kInvalid,
       {"\"num_layers\" = -1"}},
      {"StringHiddenSize", [](PackageSpec* s) { s->config["hidden_size"] = "13"; }, kInvalid,
       {"\"hidden_size\" must be an integer"}},
      {"UnknownTokenizer", [](PackageSpec* s) { s->config["tokenizer"]["type"] = "bpe"; },
       kInvalid, {"tokenizer.type", "bpe"}},
      {"DuplicateVocabEntry",
       [](PackageSpec* s) { s->config["tokenizer"]["vocab"][5] = s->config["tokenizer"]["vocab"][2]; },
       kInvalid, {"tokenizer.vocab[5]", "duplicates"}},
      {"MultiCodePointVocabEntry", [](PackageSpec* s) { s->config["tokenizer"]["vocab"][3] = "e\u0301"; },
       kInvalid, {"tokenizer.vocab[3]", "exactly one Unicode code point", "found 2"}},
      {"EmptyVocabEntry", [](PackageSpec* s) { s->config["tokenizer"]["vocab"][0] = ""; },
       kInvalid, {"tokenizer.vocab[0]", "exactly one Unicode code point", "found 0"}},
      {"VocabLargerThanEmbedding",
       [](PackageSpec* s) { s->config["tokenizer"]["vocab"].push_back("z"); }, kInvalid,
       {"\"embedding.weight\"", "shape [11, 7], expected [12, 7]"}},
      {"VocabSmallerThanEmbedding",
       [](PackageSpec* s) { s->config["tokenizer"]["vocab"].erase(0); }, kInvalid,
       {"\"embedding.weight\"", "shape [11, 7], expected [10, 7]"}},
      {"ByteTokenizerWithCharWeights",
       [](PackageSpec* s) { s->config["tokenizer"] = {{"type", "byte"}}; }, kInvalid,
       {"\"embedding.weight\"", "expected [256, 7]"}},
      {"MoreLayersThanTensors", [](PackageSpec* s) { s->config["num_layers"] = 2; }, kInvalid,
       {"missing tensor \"lstm.weight_ih_l1\"", "[52, 13]"}},
      // Safetensors framing.
      {"EmptyWeightsFile", [](PackageSpec* s) { s->safetensors_bytes = ""; }, kInvalid,
       {"model.safetensors", "0 bytes, shorter than the 8-byte header length"}},
      {"ShorterThan8Bytes", [](PackageSpec* s) { s->safetensors_bytes = std::string("\x10\x00\x00", 3); },
       kInvalid, {"3 bytes, shorter than the 8-byte header length"}},
      {"TruncatedFile",
       [](PackageSpec* s) {
         std::string image = FullImage(*s);
         image.resize(image.size() - 10);
         s->safetensors_bytes = image;
       },
       kInvalid, {"model.safetensors", "lie outside the data section"}},
      {"TruncatedInsideHeader",
       [](PackageSpec* s) { s->safetensors_bytes = FullImage(*s).substr(0, 100); }, kInvalid,
       {"runs past the end of the file (100 bytes)"}},
      {"HeaderLengthBeyondFile",
       [](PackageSpec* s) {
         std::string data;
         const std::string header = testing::SafetensorsHeader(s->tensors, &data).dump();
         s->safetensors_bytes =
             testing::SafetensorsImage(header, data, header.size() + data.size() + 1);
       },
       kInvalid, {"header length", "runs past the end of the file"}},
      {"HeaderLengthBeyondCap",
       [](PackageSpec* s) {
         s->safetensors_bytes =
             testing::SafetensorsImage("{}", "", kMaxSafetensorsHeaderBytes + 1);
       },
       kInvalid, {"header length 104857601 exceeds the cap of 104857600 bytes"}},
      {"HeaderLengthHuge",
       [](PackageSpec* s) {
         s->safetensors_bytes = testing::SafetensorsImage("{}", "", ~uint64_t{0});
       },
       kInvalid, {"exceeds the cap"}},
      {"HeaderNotJson",
       [](PackageSpec* s) { s->safetensors_bytes = testing::SafetensorsImage("{\"a\": [1,", ""); },
       kInvalid, {"header is not valid JSON"}},
      {"HeaderNotObject",
       [](PackageSpec* s) { s->safetensors_bytes = testing::SafetensorsImage("[1, 2]", ""); },
       kInvalid, {"header must be a JSON object"}},
      {"TensorEntryMissingOffsets",
       [](PackageSpec* s) {
         EditHeader(s, [](nlohmann::json* h) { (*h)["head.bias"].erase("data_offsets"); });
       },
       kInvalid, {"\"head.bias\"", "data_offsets"}},
      {"OffsetsOutsideData",
       [](PackageSpec* s) {
         EditHeader(s, [](nlohmann::json* h) {
           auto& off = (*h)["head.bias"]["data_offsets"];
           off[0] = off[0].get<uint64_t>() + 1000;
           off[1] = off[1].get<uint64_t>() + 1000;
         });
       },
       kInvalid, {"\"head.bias\"", "lie outside the data section"}},
      {"OffsetsReversed",
       [](PackageSpec* s) {
         EditHeader(s, [](nlohmann::json* h) {
           auto& off = (*h)["head.bias"]["data_offsets"];
           off = {off[1], off[0]};
         });
       },
       kInvalid, {"\"head.bias\" data_offsets [5500, 5456] end before they begin"}},
      {"OverlappingTensors",
       [](PackageSpec* s) {
         // head.bias [11] F32 = 44 bytes, moved onto the start of head.weight.
         EditHeader(s, [](nlohmann::json* h) {
           const uint64_t begin = (*h)["head.weight"]["data_offsets"][0];
           (*h)["head.bias"]["data_offsets"] = {begin + 4, begin + 48};
         });
       },
       kInvalid, {"\"head.bias\"", "\"head.weight\"", "overlap"}},
      {"ByteCountNotMatchingShape",
       [](PackageSpec* s) {
         EditHeader(s, [](nlohmann::json* h) { (*h)["head.bias"]["shape"] = {12}; });
       },
       kInvalid, {"\"head.bias\" holds 44 bytes but its shape [12] of F32 needs 48"}},
      {"NegativeDimension",
       [](PackageSpec* s) {
         EditHeader(s, [](nlohmann::json* h) { (*h)["head.bias"]["shape"] = {-11}; });
       },
       kInvalid, {"\"head.bias\"", "bad dimension -11"}},
      // Tensor set, shapes, dtypes, values.
      {"MissingTensor",
       [](PackageSpec* s) {
         s->tensors.erase(std::remove_if(s->tensors.begin(), s->tensors.end(),
                                         [](const RawTensor& t) { return t.name == "lstm.bias_hh_l0"; }),
                          s->tensors.end());
       },
       kInvalid, {"model.safetensors", "missing tensor \"lstm.bias_hh_l0\"", "[52]"}},
      {"UnexpectedTensor",
       [](PackageSpec* s) {
         s->tensors.push_back({"lstm.weight_ih_l1", "F32", {4 * kH, kH},
                               std::string(4 * kH * kH * 4, '\0')});
       },
       kInvalid, {"unexpected tensor \"lstm.weight_ih_l1\"", "[52, 13]", "num_layers=1"}},
      {"UnexpectedOptimizerState",
       [](PackageSpec* s) { s->tensors.push_back({"step", "F32", {}, std::string(4, '\0')}); },
       kInvalid, {"unexpected tensor \"step\""}},
      {"WrongShapeTransposed",
       [](PackageSpec* s) { FindTensor(s, "head.weight")->shape = {kH, kV}; }, kInvalid,
       {"tensor \"head.weight\" has shape [13, 11], expected [11, 13]"}},
      {"WrongShapeFlattened",
       [](PackageSpec* s) { FindTensor(s, "lstm.weight_hh_l0")->shape = {4 * kH * kH}; },
       kInvalid, {"tensor \"lstm.weight_hh_l0\" has shape [676], expected [52, 13]"}},
      {"UnsupportedDtypeF64",
       [](PackageSpec* s) {
         RawTensor* t = FindTensor(s, "head.bias");
         t->dtype = "F64";
         t->bytes += t->bytes;  // 8 bytes per element
       },
       kInvalid, {"\"head.bias\"", "unsupported dtype F64", "F32, BF16, F16"}},
      {"UnsupportedDtypeI32", [](PackageSpec* s) { FindTensor(s, "embedding.weight")->dtype = "I32"; },
       kInvalid, {"\"embedding.weight\"", "unsupported dtype I32"}},
      {"NaNWeight",
       [](PackageSpec* s) {
         SetFloat(s, "lstm.weight_hh_l0", 17, std::numeric_limits<float>::quiet_NaN());
       },
       kInvalid, {"\"lstm.weight_hh_l0\"", "non-finite", "nan", "flat index 17"}},
      {"InfWeight",
       [](PackageSpec* s) { SetFloat(s, "head.bias", 10, -std::numeric_limits<float>::infinity()); },
       kInvalid, {"\"head.bias\"", "non-finite", "-inf", "flat index 10"}},
      {"F16InfWeight",
       [](PackageSpec* s) {
         RawTensor* t = FindTensor(s, "head.bias");
         t->dtype = "F16";
         std::vector<uint16_t> bits(kV, 0x3C00);  // 1.0
         bits[4] = 0x7C00;                        // +inf
         t->bytes = testing::U16Bytes(bits);
       },
       kInvalid, {"\"head.bias\"", "non-finite", "inf", "flat index 4"}},
      {"BF16NaNWeight",
       [](PackageSpec* s) {
         RawTensor* t = FindTensor(s, "head.bias");
         t->dtype = "BF16";
         std::vector<uint16_t> bits(kV, 0x3F80);  // 1.0
         bits[7] = 0x7FC0;                        // NaN
         t->bytes = testing::U16Bytes(bits);
       },
       kInvalid, {"\"head.bias\"", "non-finite", "nan", "flat index 7"}},
  };
}

void PrintTo(const Corruption& c, std::ostream* os) { *os << c.name; }

class CorruptedPackageTest : public ::testing::TestWithParam<Corruption> {};

TEST_P(CorruptedPackageTest, IsRejectedNamingTheProblem) {
  const Corruption& c = GetParam();
  PackageSpec spec = testing::SpecFromPackage(LoadBase());
  c.corrupt(&spec);
  testing::ScopedTempDir dir;
  testing::WritePackage(spec, dir.path());
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_FALSE(pkg.ok()) << c.name << " was accepted";
  EXPECT_EQ(pkg.status().code(), c.code) << pkg.status();
  for (const std::string& part : c.message_has) {
    EXPECT_THAT(std::string(pkg.status().message()), HasSubstr(part));
  }
  // Every message names the file it is about.
  EXPECT_THAT(std::string(pkg.status().message()), HasSubstr(dir.path()));
}

INSTANTIATE_TEST_SUITE_P(Loader, CorruptedPackageTest, ::testing::ValuesIn(Corruptions()),
                         [](const auto& info) { return info.param.name; });

TEST(ModelPackage, MissingDirectoryIsNotFound) {
  testing::ScopedTempDir dir;
  const std::string missing = dir.path() + "/no_such_model";
  auto pkg = LoadModelPackage(missing);
  ASSERT_FALSE(pkg.ok());
  EXPECT_EQ(pkg.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pkg.status().message(), missing + ": model package directory not found");
}

TEST(ModelPackage, FileInsteadOfDirectoryIsRejected) {
  testing::ScopedTempDir dir;
  const std::string file = dir.path() + "/model.tar";
  testing::WriteFileOrDie(file, "not a directory");
  auto pkg = LoadModelPackage(file);
  ASSERT_FALSE(pkg.ok());
  EXPECT_EQ(pkg.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pkg.status().message(), file + ": not a directory");
}

TEST(ModelPackage, ConfigThatIsADirectoryIsRejected) {
  PackageSpec spec = testing::SpecFromPackage(LoadBase());
  spec.write_config = false;
  testing::ScopedTempDir dir;
  testing::WritePackage(spec, dir.path());
  std::filesystem::create_directory(dir.path() + "/config.json");
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_FALSE(pkg.ok());
  EXPECT_EQ(pkg.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(pkg.status().message()),
              AllOf(HasSubstr("config.json"), HasSubstr("not a regular file")));
}

TEST(ModelPackage, WeightsThatAreADirectoryAreRejected) {
  PackageSpec spec = testing::SpecFromPackage(LoadBase());
  spec.write_weights = false;
  testing::ScopedTempDir dir;
  testing::WritePackage(spec, dir.path());
  std::filesystem::create_directory(dir.path() + "/model.safetensors");
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_FALSE(pkg.ok());
  EXPECT_EQ(pkg.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(pkg.status().message()),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("not a regular file")));
}

// ---- Reduced-precision weights -------------------------------------------------

// Independent reference widening: the value the 16 bits stand for, in double.
double WidenF16(uint16_t h) {
  const int sign = h >> 15 ? -1 : 1, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);  // exp < 31 for finite values
}
double WidenBF16(uint16_t b) {
  const int sign = b >> 15 ? -1 : 1, exp = (b >> 7) & 0xFF, mant = b & 0x7F;
  if (exp == 0) return sign * std::ldexp(mant, -133);
  return sign * std::ldexp(128 + mant, exp - 134);
}

// The raw 16-bit words of tensor `name` in the safetensors file at `path`.
std::vector<uint16_t> RawWords(const std::string& path, const std::string& name,
                               std::string* dtype) {
  const std::string bytes = testing::ReadFileOrDie(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  const nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  *dtype = h.at(name).at("dtype");
  const uint64_t begin = h.at(name).at("data_offsets")[0], end = h.at(name).at("data_offsets")[1];
  std::vector<uint16_t> words;
  for (uint64_t i = 8 + n + begin; i < 8 + n + end; i += 2) {
    words.push_back(static_cast<uint8_t>(bytes[i]) | (static_cast<uint8_t>(bytes[i + 1]) << 8));
  }
  return words;
}

void ExpectWidenedExactly(const std::string& fixture, const std::string& want_dtype) {
  auto pkg = LoadModelPackage(testing::GoldenDir(fixture));
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  const std::string file = testing::GoldenDir(fixture) + "/model.safetensors";
  const std::vector<std::pair<std::string, const Tensor*>> tensors = {
      {"embedding.weight", &pkg->weights.embedding},
      {"lstm.weight_hh_l1", &pkg->weights.layers[1].w_hh},
      {"head.weight", &pkg->weights.head_w},
      {"head.bias", &pkg->weights.head_b}};
  for (const auto& [name, tensor] : tensors) {
    std::string dtype;
    const std::vector<uint16_t> words = RawWords(file, name, &dtype);
    ASSERT_EQ(dtype, want_dtype) << name;
    ASSERT_EQ(words.size(), tensor->data.size()) << name;
    for (size_t i = 0; i < words.size(); ++i) {
      const double want = dtype == "F16" ? WidenF16(words[i]) : WidenBF16(words[i]);
      ASSERT_EQ(static_cast<double>(tensor->data[i]), want) << name << "[" << i << "]";
    }
  }
}

TEST(ModelPackage, Bf16FixtureWidensExactly) { ExpectWidenedExactly("l2_h29_bf16", "BF16"); }
TEST(ModelPackage, F16FixtureWidensExactly) { ExpectWidenedExactly("l3_e17_h37_f16", "F16"); }

TEST(ModelPackage, MixedDtypesLoadAndWidenExactly) {
  PackageSpec spec = testing::SpecFromPackage(LoadBase());
  // head.bias as F16 edge values, head.weight's first row as BF16 edge values.
  const std::vector<uint16_t> f16 = {0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00,
                                     0x3555, 0x7BFF, 0xFBFF, 0xC000, 0x8001};
  RawTensor* bias = FindTensor(&spec, "head.bias");
  bias->dtype = "F16";
  bias->bytes = testing::U16Bytes(f16);
  std::vector<uint16_t> bf16(kV * kH, 0x3F80);
  const std::vector<uint16_t> edges = {0x0001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x8001,
                                       0x3EAA, 0xC2F7, 0x8000, 0x0000, 0x4049, 0x3C23, 0xBF80};
  std::copy(edges.begin(), edges.end(), bf16.begin());
  RawTensor* head = FindTensor(&spec, "head.weight");
  head->dtype = "BF16";
  head->bytes = testing::U16Bytes(bf16);
  testing::ScopedTempDir dir;
  testing::WritePackage(spec, dir.path());
  auto pkg = LoadModelPackage(dir.path());
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  for (size_t i = 0; i < f16.size(); ++i) {
    EXPECT_EQ(pkg->weights.head_b.data[i], WidenF16(f16[i])) << "F16 word " << std::hex << f16[i];
    EXPECT_EQ(std::signbit(pkg->weights.head_b.data[i]), (f16[i] >> 15) != 0);
  }
  EXPECT_EQ(pkg->weights.head_b.data[7], 65504.0f);
  EXPECT_EQ(pkg->weights.head_b.data[2], std::ldexp(1.0f, -24));
  for (size_t i = 0; i < bf16.size(); ++i) {
    EXPECT_EQ(pkg->weights.head_w.data[i], WidenBF16(bf16[i])) << "BF16 word " << std::hex << bf16[i];
  }
  EXPECT_EQ(pkg->weights.head_w.data[3], std::ldexp(255.0f, 120));  // largest finite BF16
}

}  // namespace
}  // namespace lstmserve
