// Portable states: the codec's round trip and its refusal of everything that
// is not an authentic state of the serving model (the tampering matrix), the
// key file format and the weights fingerprint.
#include "server/state_codec.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/model_fingerprint.h"
#include "server/state_keys.h"
#include "testing/random_package.h"

namespace lstmserve {
namespace {

StateKeyRing Keys(const std::string& key) { return *StateKeyRing::FromKeys({key}); }

StateModel Model(const std::string& name = "tiny", int layers = 3, int hidden = 5) {
  StateModel m;
  m.name = name;
  m.fingerprint = std::string(kFingerprintBytes, 'f');
  m.vocab_size = 37;
  m.layers.assign(layers, {hidden, hidden});
  return m;
}

PortableState Sample(const StateModel& model) {
  PortableState s;
  s.tokens = 1234;
  s.last_token = 17;
  for (const auto& [h, c] : model.layers) {
    LayerState l;
    for (int i = 0; i < h; ++i) l.h.push_back(0.25f * i - 0.5f);
    for (int i = 0; i < c; ++i) l.c.push_back(-1.5f * i + 0.125f);
    s.state.layers.push_back(l);
  }
  return s;
}

// Expects INVALID_ARGUMENT whose message starts with "state".
void ExpectRefused(const absl::StatusOr<PortableState>& r, const std::string& fragment = "") {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "state ")) << r.status();
  if (!fragment.empty()) {
    EXPECT_TRUE(absl::StrContains(r.status().message(), fragment)) << r.status();
  }
}

TEST(StateCodecTest, RoundTripsExactly) {
  const StateModel model = Model();
  const StateKeyRing keys = Keys("0123456789abcdef0123456789abcdef");
  const PortableState in = Sample(model);
  const std::string bytes = EncodeState(model, in, keys);
  EXPECT_EQ(bytes.size(), EncodedStateSize(model));
  auto out = DecodeState(bytes, model, keys);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->tokens, 1234);
  EXPECT_EQ(out->last_token, 17);
  ASSERT_EQ(out->state.layers.size(), 3u);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(out->state.layers[l].h, in.state.layers[l].h);
    EXPECT_EQ(out->state.layers[l].c, in.state.layers[l].c);
  }
}

TEST(StateCodecTest, EncodesProjectedShapes) {
  StateModel model = Model();
  model.layers = {{3, 7}, {3, 7}};  // a projected LSTM: h of P, c of H floats
  const StateKeyRing keys = Keys("0123456789abcdef0123456789abcdef");
  auto out = DecodeState(EncodeState(model, Sample(model), keys), model, keys);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->state.layers[1].h.size(), 3u);
  EXPECT_EQ(out->state.layers[1].c.size(), 7u);
}

TEST(StateCodecTest, EveryFlippedByteIsRefused) {
  const StateModel model = Model();
  const StateKeyRing keys = Keys("0123456789abcdef0123456789abcdef");
  const std::string good = EncodeState(model, Sample(model), keys);
  // Every byte of every region: magic, version, name, fingerprint, counts,
  // floats and the MAC itself.
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t bit : {0x01, 0x80}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ bit);
      ExpectRefused(DecodeState(bad, model, keys));
    }
  }
}

TEST(StateCodecTest, TruncatedExtendedAndEmptyAreRefused) {
  const StateModel model = Model();
  const StateKeyRing keys = Keys("0123456789abcdef0123456789abcdef");
  const std::string good = EncodeState(model, Sample(model), keys);
  for (size_t n = 0; n < good.size(); ++n) ExpectRefused(DecodeState(good.substr(0, n), model, keys));
  ExpectRefused(DecodeState(good + "x", model, keys), "bytes");
  ExpectRefused(DecodeState(good + std::string(1 << 20, '\0'), model, keys), "bytes");
  ExpectRefused(DecodeState("", model, keys), "empty");
  ExpectRefused(DecodeState("not a state at all", model, keys), "header");
}

TEST(StateCodecTest, AnotherKeyIsRefusedAndARotatedRingVerifies) {
  const StateModel model = Model();
  const StateKeyRing old_keys = Keys("0123456789abcdef0123456789abcdef");
  const StateKeyRing other = Keys("fedcba9876543210fedcba9876543210");
  const std::string bytes = EncodeState(model, Sample(model), old_keys);
  ExpectRefused(DecodeState(bytes, model, other), "signature");
  // Rotation: the new key signs, the old one still verifies.
  auto rotated =
      StateKeyRing::FromKeys({"fedcba9876543210fedcba9876543210", "0123456789abcdef0123456789abcdef"});
  ASSERT_TRUE(rotated.ok());
  EXPECT_TRUE(DecodeState(bytes, model, *rotated).ok());
  const std::string fresh = EncodeState(model, Sample(model), *rotated);
  EXPECT_TRUE(DecodeState(fresh, model, other).ok());
  ExpectRefused(DecodeState(fresh, model, old_keys), "signature");
}

TEST(StateCodecTest, AnotherModelOrVersionIsRefused) {
  const StateKeyRing keys = Keys("0123456789abcdef0123456789abcdef");
  const StateModel tiny = Model("tiny");
  const std::string bytes = EncodeState(tiny, Sample(tiny), keys);
  ExpectRefused(DecodeState(bytes, Model("tiny", 2, 5), keys), "bytes");  // other shape
  ExpectRefused(DecodeState(bytes, Model("tinx"), keys), "model 'tiny'");  // same size, other name
  StateModel v2 = tiny;
  v2.fingerprint = std::string(kFingerprintBytes, 'g');  // same model, other weights
  ExpectRefused(DecodeState(bytes, v2, keys), "other weights");
}

TEST(StateCodecTest, AnOldFormatVersionIsRefused) {
  const StateKeyRing keys = Keys("0123456789abcdef0123456789abcdef");
  const StateModel model = Model();
  std::string bytes = EncodeState(model, Sample(model), keys);
  bytes[4] = 0;  // version 1 -> 0 (little-endian u32 after the magic)
  ExpectRefused(DecodeState(bytes, model, keys), "format version 0");
}

TEST(StateCodecTest, AuthenticButMeaninglessContentIsRefused) {
  // A state this server signed itself but with impossible content (a last
  // token outside the vocabulary, no tokens, a NaN) is still refused.
  const StateKeyRing keys = Keys("0123456789abcdef0123456789abcdef");
  const StateModel model = Model();
  PortableState s = Sample(model);
  s.last_token = 37;
  ExpectRefused(DecodeState(EncodeState(model, s, keys), model, keys), "last token");
  s = Sample(model);
  s.tokens = 0;
  ExpectRefused(DecodeState(EncodeState(model, s, keys), model, keys), "at least 1");
  s = Sample(model);
  s.state.layers[2].c[1] = std::numeric_limits<float>::quiet_NaN();
  ExpectRefused(DecodeState(EncodeState(model, s, keys), model, keys), "non-finite");
}

TEST(StateKeyRingTest, ParsesTheKeyFileFormat) {
  auto ring = StateKeyRing::Parse(
      "# rotated 2026-11-27\n\n  00112233445566778899aabbccddeeff  \n"
      "FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100\n",
      "keys");
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->size(), 2);
  EXPECT_FALSE(ring->random());
  EXPECT_EQ(ring->signing_key_id().size(), 8u);
}

TEST(StateKeyRingTest, RefusesMalformedKeyFiles) {
  for (const char* text : {"", "# only a comment\n", "xyz0123456789abcdef0123456789abcd\n",
                           "0123456789abcdef0123456789abcde\n", "00112233\n"}) {
    auto ring = StateKeyRing::Parse(text, "keys.txt");
    ASSERT_FALSE(ring.ok()) << text;
    EXPECT_EQ(ring.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(ring.status().message(), "keys.txt")) << ring.status();
  }
  EXPECT_EQ(StateKeyRing::FromFile("/nonexistent/keys").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(StateKeyRingTest, RandomKeysDifferPerProcessRing) {
  auto a = StateKeyRing::Random();
  auto b = StateKeyRing::Random();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->random());
  const StateModel model = Model();
  const std::string bytes = EncodeState(model, Sample(model), *a);
  EXPECT_TRUE(DecodeState(bytes, model, *a).ok());
  ExpectRefused(DecodeState(bytes, model, *b), "signature");
}

TEST(ModelFingerprintTest, DiffersWithTheWeightsOnly) {
  RandomPackageShape shape;
  const std::string a = PackageFingerprint(RandomPackage(shape));
  EXPECT_EQ(a.size(), kFingerprintBytes);
  EXPECT_EQ(a, PackageFingerprint(RandomPackage(shape)));
  shape.seed = 8;
  EXPECT_NE(a, PackageFingerprint(RandomPackage(shape)));
}

TEST(ModelFingerprintTest, OfADirectoryCoversEveryFile) {
  const std::string dir = ::testing::TempDir() + "/fingerprint_pkg." + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << "{}";
  std::ofstream(dir + "/model.safetensors") << "weights";
  auto a = PackageFingerprint(dir);
  ASSERT_TRUE(a.ok()) << a.status();
  std::ofstream(dir + "/model.safetensors") << "weightz";
  auto b = PackageFingerprint(dir);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(PackageFingerprint(dir + "/missing").ok());
}

}  // namespace
}  // namespace lstmserve
