// The "byte" tokenizer: 256 ids, id = byte value.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "models/tokenizer_impls.h"

namespace lstmserve {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  ByteTokenizer() {
    for (int b = 0; b < 256; ++b) token_bytes_.push_back(std::string(1, static_cast<char>(b)));
  }

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              absl::string_view field) const override {
    RETURN_IF_ERROR(DecodeClientText(text, field).status());
    std::vector<int32_t> ids;
    ids.reserve(text.size());
    for (unsigned char b : text) ids.push_back(b);
    return ids;
  }

  std::unique_ptr<TextDecoder> NewDecoder() const override {
    return std::make_unique<ByteTableDecoder>(&token_bytes_);
  }
  std::string TokenText(int32_t id) const override { return token_bytes_[id]; }
  int vocab_size() const override { return 256; }
  TokenizerType type() const override { return TokenizerType::kByte; }
  int max_bytes_per_token() const override { return 1; }

 private:
  std::vector<std::string> token_bytes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateByteTokenizer() {
  return std::unique_ptr<Tokenizer>(std::make_unique<ByteTokenizer>());
}

}  // namespace lstmserve
