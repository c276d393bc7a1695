// SentencePieceModel: a thin wrapper of sentencepiece::SentencePieceProcessor
// with a std-only interface. The SentencePiece header declares
// `absl::string_view` itself, which clashes with Debian's Abseil, so only
// sentencepiece_model.cc includes it (and no Abseil header).
// Immutable after Load; the const methods are thread-safe.
#ifndef LSTMSERVE_MODELS_SENTENCEPIECE_MODEL_H_
#define LSTMSERVE_MODELS_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}  // namespace sentencepiece

namespace lstmserve {

class SentencePieceModel {
 public:
  // Parses a serialized ModelProto (a .model file's bytes). Null and
  // *error set (the library's message) when it is not one.
  static std::unique_ptr<SentencePieceModel> Load(const std::string& serialized,
                                                  std::string* error);
  ~SentencePieceModel();

  // Encodes UTF-8 text to ids (no BOS/EOS). False and *error on failure.
  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const;
  // The library's decoding of `ids`.
  std::string DecodeIds(const std::vector<int>& ids) const;

  int piece_size() const;
  const std::string& IdToPiece(int id) const;
  bool IsByte(int id) const;     // a byte-fallback piece "<0xAB>"
  bool IsControl(int id) const;  // <s>, </s>: decodes to nothing

 private:
  SentencePieceModel();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_SENTENCEPIECE_MODEL_H_
