// liblstmserve_spm.so: a C interface to the SentencePiece library, loaded by
// models/sentencepiece_model.cc with dlmopen() into a link-map namespace of
// its own. Debian's libsentencepiece carries a private copy of protobuf-lite
// 3.14 whose exported symbols clash with the process's libprotobuf 3.21 (the
// server's gRPC API): with both in one namespace the process crashes before
// main(). Only this shared library links libsentencepiece; nothing in the
// server's namespace does.
//
// Memory never crosses the boundary: the caller passes buffers, and every
// function that fills one returns the length it needed (call again with a
// larger buffer when that exceeds the capacity). Handles are opaque.
// Thread-safety: a loaded model is immutable; all functions but load/free
// may be called from several threads.
#include <sentencepiece_processor.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace {

size_t CopyOut(const std::string& s, char* out, size_t cap) {
  if (out != nullptr && cap > 0) std::memcpy(out, s.data(), s.size() < cap ? s.size() : cap);
  return s.size();
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* lstmserve_spm_load(const char* data, size_t size,
                                                                 char* error, size_t error_cap) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->LoadFromSerializedProto(std::string(data, size));
  if (!status.ok()) {
    const std::string message = status.ToString();
    const size_t n = CopyOut(message, error, error_cap > 0 ? error_cap - 1 : 0);
    if (error_cap > 0) error[n < error_cap ? n : error_cap - 1] = '\0';
    delete sp;
    return nullptr;
  }
  return sp;
}

__attribute__((visibility("default"))) void lstmserve_spm_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

__attribute__((visibility("default"))) int lstmserve_spm_piece_size(const void* handle) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

// Bit 0: a byte-fallback piece; bit 1: a control piece.
__attribute__((visibility("default"))) int lstmserve_spm_piece_kind(const void* handle, int id) {
  const auto* sp = static_cast<const sentencepiece::SentencePieceProcessor*>(handle);
  return (sp->IsByte(id) ? 1 : 0) | (sp->IsControl(id) ? 2 : 0);
}

__attribute__((visibility("default"))) size_t lstmserve_spm_id_to_piece(const void* handle,
                                                                        int id, char* out,
                                                                        size_t cap) {
  return CopyOut(static_cast<const sentencepiece::SentencePieceProcessor*>(handle)->IdToPiece(id),
                 out, cap);
}

// Returns the number of ids (written up to cap), or -1 with the library's
// message in `error` (NUL-terminated).
__attribute__((visibility("default"))) long lstmserve_spm_encode(const void* handle,
                                                                 const char* text, size_t size,
                                                                 int* ids, size_t cap, char* error,
                                                                 size_t error_cap) {
  std::vector<int> out;
  const auto status = static_cast<const sentencepiece::SentencePieceProcessor*>(handle)->Encode(
      std::string(text, size), &out);
  if (!status.ok()) {
    const std::string message = status.ToString();
    const size_t n = CopyOut(message, error, error_cap > 0 ? error_cap - 1 : 0);
    if (error_cap > 0) error[n < error_cap ? n : error_cap - 1] = '\0';
    return -1;
  }
  for (size_t i = 0; i < out.size() && i < cap; ++i) ids[i] = out[i];
  return static_cast<long>(out.size());
}

__attribute__((visibility("default"))) size_t lstmserve_spm_decode(const void* handle,
                                                                   const int* ids, size_t n,
                                                                   char* out, size_t cap) {
  const std::vector<int> v(ids, ids + n);
  return CopyOut(static_cast<const sentencepiece::SentencePieceProcessor*>(handle)->DecodeIds(v),
                 out, cap);
}

}  // extern "C"
