// The packages tools/export.py made from the importer's fixtures (tests/import/packages/,
// written by tools/make_import_fixtures.py) served by both engines: the tokenizer encodes the
// probe text to the source's ids, and the reference and oneDNN engines' log-probs (Prefill and
// Step) equal the source framework's own (expected.json: PyTorch's forward; for the ONNX
// fixtures the source's semantics in numpy) and, for the ONNX fixtures, ONNX Runtime's
// (tests/import/fixtures/<name>/ort.json, onnxruntime-node) within 1e-4.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "models/engine_factory.h"
#include "models/model_package.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"

namespace lstmserve {
namespace {

constexpr double kTolerance = 1e-4;

// Every fixture package: char (format version 1), word, SentencePiece and projected (format
// version 2) vocabularies and layers, from every source tools/export.py reads.
const char* const kFixtures[] = {
    "batch_first", "bias_false",       "mapped_names",    "onnx_keras", "onnx_torch",
    "prefix_both", "prefix_module",    "prefix_orig_mod", "proj",       "sentencepiece",
    "train_py",    "wlm_dataparallel", "wlm_module",      "wlm_tied"};

using LogProbs = std::vector<std::vector<double>>;  // [tokens][vocabulary]

std::filesystem::path PackagesDir() {
  return std::filesystem::path(LSTMSERVE_SOURCE_DIR) / "tests/import/packages";
}

std::filesystem::path FixturesDir() {
  return std::filesystem::path(LSTMSERVE_SOURCE_DIR) / "tests/import/fixtures";
}

nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

TEST(ImportFixturesTest, ListCoversEveryPackageInTheDirectory) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(PackagesDir()))
    found.push_back(entry.path().filename().string());
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, std::vector<std::string>(std::begin(kFixtures), std::end(kFixtures)));
}

class ImportFixtureTest : public ::testing::TestWithParam<EngineKind> {};

TEST_P(ImportFixtureTest, EngineMatchesTheSourceFramework) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const std::filesystem::path dir = PackagesDir() / name;
    const nlohmann::json expected = ReadJson(dir / "expected.json");
    const auto ids = expected.at("ids").get<std::vector<int32_t>>();
    // What the engines must reproduce: the source's forward, and ONNX Runtime's where the
    // source is an ONNX file.
    std::vector<std::pair<std::string, LogProbs>> references = {
        {"source", expected.at("logprobs").get<LogProbs>()}};
    const std::filesystem::path ort = FixturesDir() / name / "ort.json";
    if (std::filesystem::exists(ort))
      references.emplace_back("onnxruntime", ReadJson(ort).at("logprobs").get<LogProbs>());
    auto pkg = LoadModelPackage(dir.string());
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    auto tokenizer = Tokenizer::Create(pkg->config.tokenizer);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    auto encoded = (*tokenizer)->Encode(expected.at("text").get<std::string>());
    ASSERT_TRUE(encoded.ok()) << encoded.status();
    EXPECT_EQ(*encoded, ids);

    const ModelConfig c = pkg->config;
    const int V = c.vocab_size;
    for (const auto& [label, want] : references) {
      ASSERT_EQ(want.size(), ids.size()) << label;
      for (const auto& w : want) ASSERT_EQ(w.size(), static_cast<size_t>(V)) << label;
    }
    auto engine = CreateEngine(GetParam(), *std::move(pkg), EngineOptions{});
    ASSERT_TRUE(engine.ok()) << engine.status();
    SequenceState by_prefill = SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size);
    SequenceState by_step = by_prefill;
    std::vector<float> all(ids.size() * V), row(V);
    PrefillItem item{ids, &by_prefill, nullptr, all.data()};
    ASSERT_TRUE((*engine)->Prefill(absl::MakeConstSpan(&item, 1)).ok());
    SequenceState* states[] = {&by_step};
    std::vector<double> max_prefill(references.size()), max_step(references.size());
    for (size_t t = 0; t < ids.size(); ++t) {
      ASSERT_TRUE((*engine)->Step(absl::MakeConstSpan(&ids[t], 1), states, row.data()).ok());
      for (size_t r = 0; r < references.size(); ++r) {
        const std::vector<double>& want = references[r].second[t];
        for (int v = 0; v < V; ++v) {
          max_prefill[r] = std::max(max_prefill[r], std::abs(all[t * V + v] - want[v]));
          max_step[r] = std::max(max_step[r], std::abs(row[v] - want[v]));
        }
      }
    }
    for (size_t r = 0; r < references.size(); ++r) {
      const std::string& label = references[r].first;
      std::printf("[ import   ] %-9s %-16s max |engine - %s| Step %.2g, Prefill %.2g\n",
                  (*engine)->kind(), name, label.c_str(), max_step[r], max_prefill[r]);
      EXPECT_LE(max_step[r], kTolerance) << label;
      EXPECT_LE(max_prefill[r], kTolerance) << label;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, ImportFixtureTest,
                         ::testing::Values(EngineKind::kReference, EngineKind::kOneDnn),
                         [](const auto& info) {
                           return std::string(info.param == EngineKind::kReference ? "Reference"
                                                                                   : "OneDnn");
                         });

}  // namespace
}  // namespace lstmserve
