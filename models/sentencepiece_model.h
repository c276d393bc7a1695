// SentencePieceModel: a SentencePiece model run by the SentencePiece library,
// with a std-only interface.
//
// The library is not linked into this process's namespace: Debian's
// libsentencepiece carries a private protobuf-lite 3.14 whose exported
// symbols clash with libprotobuf 3.21 (gRPC's), which crashes any process
// that loads both before main(). So only liblstmserve_spm.so
// (models/sentencepiece_shim.cc, a small C interface) links it, and Load
// brings that library in with dlmopen() into a link-map namespace of its
// own, once per process. It is found at $LSTMSERVE_SPM_SHIM, else at the
// path the build put it, else as "liblstmserve_spm.so" on the library path.
//
// Immutable after Load; the const methods are thread-safe.
#ifndef LSTMSERVE_MODELS_SENTENCEPIECE_MODEL_H_
#define LSTMSERVE_MODELS_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <vector>

namespace lstmserve {

class SentencePieceModel {
 public:
  // Parses a serialized ModelProto (a .model file's bytes). Null and
  // *error set (the library's message, or why the library could not be
  // loaded) when it is not one.
  static std::unique_ptr<SentencePieceModel> Load(const std::string& serialized,
                                                  std::string* error);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  // Encodes UTF-8 text to ids (no BOS/EOS). False and *error on failure.
  bool Encode(const std::string& text, std::vector<int>* ids, std::string* error) const;
  // The library's decoding of `ids`.
  std::string DecodeIds(const std::vector<int>& ids) const;

  int piece_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& IdToPiece(int id) const { return pieces_[id]; }
  bool IsByte(int id) const { return (kinds_[id] & 1) != 0; }     // "<0xAB>"
  bool IsControl(int id) const { return (kinds_[id] & 2) != 0; }  // <s>, </s>: invisible

 private:
  SentencePieceModel() = default;
  void* handle_ = nullptr;            // the shim's model
  std::vector<std::string> pieces_;   // by id
  std::vector<unsigned char> kinds_;  // by id: bit 0 byte, bit 1 control
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_SENTENCEPIECE_MODEL_H_
