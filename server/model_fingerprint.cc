#include "server/model_fingerprint.h"

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace lstmserve {
namespace {

// Incremental SHA-256 over length-prefixed fields.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void Raw(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  void Field(const void* data, size_t n) {
    const uint64_t size = n;
    Raw(&size, sizeof(size));
    Raw(data, n);
  }
  void Field(const std::string& s) { Field(s.data(), s.size()); }
  void Int(int64_t v) { Raw(&v, sizeof(v)); }
  void Floats(const std::vector<float>& v) { Field(v.data(), v.size() * sizeof(float)); }
  std::string Finish() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &n);
    return std::string(reinterpret_cast<char*>(digest), n);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

void HashConfig(const ModelConfig& c, Sha256* h) {
  h->Field(std::string(TokenizerTypeName(c.tokenizer.type)));
  h->Field(c.tokenizer.vocab.data(), c.tokenizer.vocab.size() * sizeof(char32_t));
  h->Int(c.vocab_size);
  h->Int(c.embedding_dim);
  h->Int(c.hidden_size);
  h->Int(c.num_layers);
}

}  // namespace

absl::StatusOr<std::string> PackageFingerprint(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code error;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file(error)) files.push_back(it->path());
  }
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot list package directory ", directory, ": ", error.message()));
  }
  std::sort(files.begin(), files.end());
  Sha256 h;
  std::vector<char> buffer(1 << 20);
  for (const fs::path& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path.string()));
    h.Field(path.filename().string());
    const uint64_t size = fs::file_size(path, error);
    h.Int(static_cast<int64_t>(size));
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      h.Raw(buffer.data(), static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path.string()));
  }
  return h.Finish();
}

std::string PackageFingerprint(const ModelPackage& package) {
  Sha256 h;
  HashConfig(package.config, &h);
  h.Field(package.config.metadata_json);
  const ModelWeights& w = package.weights;
  h.Floats(w.embedding.data);
  for (const LstmLayerWeights& l : w.layers) {
    h.Floats(l.w_ih.data);
    h.Floats(l.w_hh.data);
    h.Floats(l.b_ih.data);
    h.Floats(l.b_hh.data);
  }
  h.Floats(w.head_w.data);
  h.Floats(w.head_b.data);
  return h.Finish();
}

std::string ConfigFingerprint(const ModelConfig& config) {
  Sha256 h;
  h.Field(std::string("config only"));
  HashConfig(config, &h);
  return h.Finish();
}

std::string FingerprintPrefix(const std::string& fingerprint, int n) {
  return absl::BytesToHexString(
      absl::string_view(fingerprint).substr(0, static_cast<size_t>(n)));
}

}  // namespace lstmserve
