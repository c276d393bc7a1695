// The "sentencepiece" tokenizer: the SentencePiece library (Debian's
// libsentencepiece) on the model file of the package. Encoding adds no
// BOS/EOS; decoding is SentencePiece's own (the first piece of a generation
// loses its leading "▁"; byte-fallback pieces are joined into characters).
//
// Streaming (SentencePieceDecoder) re-decodes a short window of ids with the
// library and emits what is new, holding back a run of byte pieces while it
// ends inside a UTF-8 character, so the stream equals DecodeIds of the whole
// generation.
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "models/sentencepiece_model.h"
#include "base/status_macros.h"
#include "models/tokenizer_impls.h"

namespace lstmserve {
namespace {

// The byte value of a byte-fallback piece "<0xAB>".
int PieceByte(const std::string& piece) {
  if (piece.size() != 6) return -1;
  return static_cast<int>(std::strtol(piece.substr(3, 2).c_str(), nullptr, 16));
}

// Whether `bytes` ends inside a UTF-8 character that later bytes could complete.
bool EndsMidCharacter(const std::string& bytes) {
  const int n = static_cast<int>(bytes.size());
  for (int back = 1; back <= 4 && back <= n; ++back) {
    const unsigned char b = static_cast<unsigned char>(bytes[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const int len = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 1;
    return (b & 0x80) != 0 && len > back;
  }
  return false;
}

class SentencePieceDecoder final : public TextDecoder {
 public:
  explicit SentencePieceDecoder(const SentencePieceModel* sp) : sp_(sp) {}

  std::string Push(int32_t id) override {
    window_.push_back(id);
    if (sp_->IsByte(id)) {
      pending_bytes_.push_back(static_cast<char>(PieceByte(sp_->IdToPiece(id))));
      if (EndsMidCharacter(pending_bytes_)) return "";
    } else {
      pending_bytes_.clear();
    }
    const std::string text = sp_->DecodeIds(window_);
    std::string out = text.size() > emitted_ ? text.substr(emitted_) : std::string();
    emitted_ = text.size();
    // Re-anchor the window on a plain piece once text has been produced:
    // after a non-empty text, DecodeIds(window) = DecodeIds({id}) + the rest.
    if (!sp_->IsByte(id) && !sp_->IsControl(id) && !text.empty()) {
      const std::string alone = sp_->DecodeIds({id});
      if (!alone.empty()) {
        window_.assign(1, id);
        emitted_ = alone.size();
      }
    }
    return out;
  }

  std::string Flush() override {
    const std::string text = sp_->DecodeIds(window_);
    std::string out = text.size() > emitted_ ? text.substr(emitted_) : std::string();
    window_.clear();
    pending_bytes_.clear();
    emitted_ = 0;
    return out;
  }

 private:
  const SentencePieceModel* sp_;
  std::vector<int> window_;    // ids since the anchor (the anchor first)
  size_t emitted_ = 0;         // bytes of DecodeIds(window_) already returned
  std::string pending_bytes_;  // the trailing run of byte pieces, as bytes
};

absl::StatusOr<std::unique_ptr<SentencePieceModel>> LoadModel(
    const std::string& serialized, absl::string_view source) {
  if (serialized.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": empty SentencePiece model"));
  }
  std::string error;
  std::unique_ptr<SentencePieceModel> sp = SentencePieceModel::Load(serialized, &error);
  if (sp == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a SentencePiece model (the library says: ", error, ")"));
  }
  if (sp->piece_size() < 1 || sp->piece_size() > kMaxVocabSize) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": SentencePiece model has ",
                                                   sp->piece_size(), " pieces; expected 1..",
                                                   kMaxVocabSize));
  }
  return sp;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(std::unique_ptr<SentencePieceModel> sp)
      : sp_(std::move(sp)) {}

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              absl::string_view field) const override {
    RETURN_IF_ERROR(DecodeClientText(text, field).status());
    std::vector<int> ids;
    std::string error;
    if (!sp_->Encode(std::string(text), &ids, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " could not be encoded by SentencePiece: ", error));
    }
    return std::vector<int32_t>(ids.begin(), ids.end());
  }

  std::unique_ptr<TextDecoder> NewDecoder() const override {
    return std::make_unique<SentencePieceDecoder>(sp_.get());
  }
  std::string TokenText(int32_t id) const override {
    if (sp_->IsControl(id)) return "";
    const std::string& piece = sp_->IdToPiece(id);
    if (sp_->IsByte(id)) return std::string(1, static_cast<char>(PieceByte(piece)));
    return absl::StrReplaceAll(piece, {{"\xe2\x96\x81", " "}});  // U+2581 "▁"
  }
  int vocab_size() const override { return sp_->piece_size(); }
  TokenizerType type() const override { return TokenizerType::kSentencePiece; }
  int max_bytes_per_token() const override { return 0; }

 private:
  std::unique_ptr<SentencePieceModel> sp_;
};

}  // namespace

absl::StatusOr<int> SentencePieceVocabSize(const std::string& serialized,
                                           absl::string_view source) {
  auto sp = LoadModel(serialized, source);
  if (!sp.ok()) return sp.status();
  return (*sp)->piece_size();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSentencePieceTokenizer(
    const TokenizerConfig& config) {
  auto sp = LoadModel(config.sentencepiece_model, config.model_file);
  if (!sp.ok()) return sp.status();
  return std::unique_ptr<Tokenizer>(std::make_unique<SentencePieceTokenizer>(*std::move(sp)));
}

}  // namespace lstmserve
