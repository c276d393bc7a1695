// SafetensorsFile: header validation on in-memory images, and exact widening
// of every BF16 and F16 bit pattern.
#include "models/safetensors.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/models/package_writer.h"

namespace lstmserve {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(const std::string& image) {
  return SafetensorsFile::FromBytes(reinterpret_cast<const uint8_t*>(image.data()), image.size(),
                                    "mem.safetensors");
}

// An image whose header is `header` and whose data section is `data_bytes` zeros.
std::string Image(const std::string& header, size_t data_bytes) {
  return testing::SafetensorsImage(header, std::string(data_bytes, '\0'));
}

void ExpectInvalid(const std::string& image, const std::string& message_part) {
  auto file = Parse(image);
  ASSERT_FALSE(file.ok()) << "accepted; wanted an error with: " << message_part;
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("mem.safetensors: "));
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(message_part));
}

TEST(Safetensors, ParsesTensorsAndIgnoresMetadata) {
  const std::vector<float> a = {1.5f, -2.0f, 0.25f, 8.0f, 0.0f, -0.0f};
  const std::string image = testing::SafetensorsImage(
      {{"a", "F32", {2, 3}, testing::F32Bytes(a)},
       {"b", "BF16", {2}, testing::U16Bytes({0x3F80, 0xC000})},
       {"c", "F16", {1, 1, 1}, testing::U16Bytes({0x3800})}});
  auto file = Parse(image);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 3u);
  const TensorView& va = (*file)->tensors().at("a");
  EXPECT_EQ(va.dtype, DType::kF32);
  EXPECT_EQ(va.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(va.num_elements(), 6);
  EXPECT_EQ(va.num_bytes, 24u);
  std::vector<float> out(6);
  SafetensorsFile::ToFloat32(va, out.data());
  EXPECT_EQ(out, a);
  SafetensorsFile::ToFloat32((*file)->tensors().at("b"), out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  SafetensorsFile::ToFloat32((*file)->tensors().at("c"), out.data());
  EXPECT_EQ(out[0], 0.5f);

  // The same with a __metadata__ entry, as PyTorch-side writers add.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  auto with_meta = Parse(Image(header, 8));
  ASSERT_TRUE(with_meta.ok()) << with_meta.status();
  EXPECT_EQ((*with_meta)->tensors().size(), 1u);
}

TEST(Safetensors, EmptyHeaderAndEmptyTensorsAreFine) {
  auto empty = Parse(Image("{}", 0));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE((*empty)->tensors().empty());
  auto zero = Parse(Image(R"({"z":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})", 0));
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ((*zero)->tensors().at("z").num_elements(), 0);
  // Widening an empty tensor touches no memory, so a null `out` (an empty
  // vector's data()) is fine. Found by safetensors_fuzzer: this was
  // memcpy(nullptr, ..., 0), undefined behaviour that UBSan reports.
  SafetensorsFile::ToFloat32((*zero)->tensors().at("z"), nullptr);
}

TEST(Safetensors, RejectsBadFraming) {
  ExpectInvalid("", "file is 0 bytes, shorter than the 8-byte header length");
  ExpectInvalid(std::string(7, '\0'), "file is 7 bytes");
  ExpectInvalid(testing::SafetensorsImage("{}", "", 3), "header length 3 runs past the end");
  ExpectInvalid(testing::SafetensorsImage("", "", kMaxSafetensorsHeaderBytes + 1),
                "exceeds the cap of 104857600 bytes");
  ExpectInvalid(Image("{\"a\":", 0), "header is not valid JSON");
  ExpectInvalid(Image("\"text\"", 0), "header must be a JSON object");
}

TEST(Safetensors, RejectsBadTensorEntries) {
  ExpectInvalid(Image(R"({"t":{"dtype":"F32","shape":[2]}})", 8),
                "tensor \"t\" needs \"dtype\", \"shape\" and \"data_offsets\"");
  ExpectInvalid(Image(R"({"t":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", 16),
                "tensor \"t\" has unsupported dtype F64");
  ExpectInvalid(Image(R"({"t":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8),
                "unsupported dtype I32");
  ExpectInvalid(Image(R"({"t":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8),
                "unsupported dtype 7");
  ExpectInvalid(Image(R"({"t":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8),
                "shape must be an array");
  ExpectInvalid(Image(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8),
                "bad dimension 2.5");
  ExpectInvalid(
      Image(R"({"t":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})",
            8),
      "impossibly large");
  // 2^32 x 2^32 elements would wrap a 64-bit count to 0 and match 0 bytes.
  ExpectInvalid(
      Image(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0),
      "impossibly large");
  ExpectInvalid(Image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
                "data_offsets must be [begin, end]");
  ExpectInvalid(Image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8),
                "data_offsets must be [begin, end]");
  ExpectInvalid(Image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8),
                "tensor \"t\" data_offsets [8, 0] end before they begin");
  ExpectInvalid(Image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 8),
                "tensor \"t\" data_offsets [4, 12] lie outside the data section of 8 bytes");
  ExpectInvalid(Image(R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", 8),
                "tensor \"t\" holds 8 bytes but its shape [2] of BF16 needs 4");
}

TEST(Safetensors, RejectsOverlappingTensors) {
  ExpectInvalid(Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                          "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                      12),
                "tensors \"a\" and \"b\" overlap in the data section");
  ExpectInvalid(Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                          "b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                      8),
                "overlap");
  // A big tensor spanning two later ones: the overlap with the second is
  // caught even though its sorted neighbour (an empty tensor) ends earlier.
  ExpectInvalid(Image(R"({"big":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},
                          "empty":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},
                          "inner":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                      32),
                "tensors \"big\" and \"inner\" overlap");
  ExpectInvalid(Image(R"({"big":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},
                          "small":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},
                          "inner":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                      32),
                "overlap");
  // Touching is not overlapping; empty tensors overlap nothing.
  auto ok = Parse(Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                            "e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},
                            "b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        16));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

// Every 16-bit pattern widens to exactly the value it stands for.
double ReferenceF16(uint16_t h) {
  const double sign = (h >> 15) ? -1.0 : 1.0;
  const int exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0x1F) return mant == 0 ? sign * INFINITY : NAN;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);
}
double ReferenceBF16(uint16_t b) {
  const double sign = (b >> 15) ? -1.0 : 1.0;
  const int exp = (b >> 7) & 0xFF, mant = b & 0x7F;
  if (exp == 0xFF) return mant == 0 ? sign * INFINITY : NAN;
  if (exp == 0) return sign * std::ldexp(mant, -133);
  return sign * std::ldexp(128 + mant, exp - 134);
}

void ExpectAllPatternsWiden(const char* dtype, double (*reference)(uint16_t)) {
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  const std::string image = testing::SafetensorsImage({{"t", dtype, {65536}, testing::U16Bytes(all)}});
  auto file = Parse(image);
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<float> out(65536);
  SafetensorsFile::ToFloat32((*file)->tensors().at("t"), out.data());
  int bad = 0;
  for (int i = 0; i < 65536 && bad < 10; ++i) {
    const double want = reference(all[i]);
    const bool ok = std::isnan(want) ? std::isnan(out[i])
                                     : (out[i] == want && std::signbit(out[i]) == std::signbit(want));
    if (!ok) {
      ++bad;
      ADD_FAILURE() << dtype << " 0x" << std::hex << i << " widened to " << out[i] << ", want "
                    << want;
    }
  }
}

TEST(Safetensors, EveryF16PatternWidensExactly) { ExpectAllPatternsWiden("F16", ReferenceF16); }
TEST(Safetensors, EveryBF16PatternWidensExactly) { ExpectAllPatternsWiden("BF16", ReferenceBF16); }

TEST(Safetensors, OpenMapsAFileAndReportsMissingOnes) {
  testing::ScopedTempDir dir;
  const std::string path = dir.path() + "/w.safetensors";
  testing::WriteFileOrDie(path, testing::SafetensorsImage(
                                    {{"w", "F32", {3}, testing::F32Bytes({1.0f, 2.0f, 3.0f})}}));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->source(), path);
  std::vector<float> out(3);
  SafetensorsFile::ToFloat32((*file)->tensors().at("w"), out.data());
  EXPECT_EQ(out, (std::vector<float>{1.0f, 2.0f, 3.0f}));

  auto missing = SafetensorsFile::Open(dir.path() + "/none.safetensors");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("none.safetensors"));
  auto directory = SafetensorsFile::Open(dir.path());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr("not a regular file"));
  testing::WriteFileOrDie(path, "");
  EXPECT_THAT(std::string(SafetensorsFile::Open(path).status().message()),
              HasSubstr("file is 0 bytes"));
}

TEST(Safetensors, RejectsDeepNestingInsteadOfOverflowingTheStack) {
  // Found by hand while fuzzing (beyond the fuzzer's input size): a dtype
  // nested a million levels deep crashed FromBytes with a stack overflow in
  // nlohmann::json's recursive dump() for the error message.
  for (int levels : {62, 1000000}) {
    const std::string header = R"({"x":{"dtype":)" + std::string(levels, '[') +
                               std::string(levels, ']') + R"(,"shape":[1],"data_offsets":[0,4]}})";
    auto file = Parse(Image(header, 4));
    ASSERT_FALSE(file.ok()) << levels;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
    if (levels == 62) {  // 2 objects + 62 arrays: within the cap, a bad dtype
      EXPECT_THAT(std::string(file.status().message()), HasSubstr("unsupported dtype [[["));
    } else {
      EXPECT_EQ(file.status().message(),
                "mem.safetensors: header is not valid JSON: arrays and objects nest deeper than "
                "64 levels");
    }
  }
}

}  // namespace
}  // namespace lstmserve
