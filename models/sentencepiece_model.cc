#include "models/sentencepiece_model.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

namespace lstmserve {
namespace {

// The shim's C interface (models/sentencepiece_shim.cc).
struct Shim {
  void* (*load)(const char*, size_t, char*, size_t) = nullptr;
  void (*free)(void*) = nullptr;
  int (*piece_size)(const void*) = nullptr;
  int (*piece_kind)(const void*, int) = nullptr;
  size_t (*id_to_piece)(const void*, int, char*, size_t) = nullptr;
  long (*encode)(const void*, const char*, size_t, int*, size_t, char*, size_t) = nullptr;
  size_t (*decode)(const void*, const int*, size_t, char*, size_t) = nullptr;
  std::string error;  // why it could not be loaded; empty when loaded
};

template <typename F>
bool Resolve(void* lib, const char* name, F* out, std::string* error) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) *error = std::string("the SentencePiece shim lacks ") + name;
  return *out != nullptr;
}

Shim LoadShim() {
  Shim shim;
  std::string path;
  if (const char* env = std::getenv("LSTMSERVE_SPM_SHIM"); env != nullptr && *env != '\0') {
    path = env;
  } else if (std::error_code ec; std::filesystem::exists(LSTMSERVE_SPM_SHIM_PATH, ec)) {
    path = LSTMSERVE_SPM_SHIM_PATH;
  } else {
    path = "liblstmserve_spm.so";
  }
  // A namespace of its own: its libsentencepiece (and that library's private
  // protobuf) never meets the process's libprotobuf.
  void* lib = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    shim.error = "cannot load the SentencePiece library shim " + path + ": " +
                 (why != nullptr ? why : "unknown error");
    return shim;
  }
  if (!Resolve(lib, "lstmserve_spm_load", &shim.load, &shim.error) ||
      !Resolve(lib, "lstmserve_spm_free", &shim.free, &shim.error) ||
      !Resolve(lib, "lstmserve_spm_piece_size", &shim.piece_size, &shim.error) ||
      !Resolve(lib, "lstmserve_spm_piece_kind", &shim.piece_kind, &shim.error) ||
      !Resolve(lib, "lstmserve_spm_id_to_piece", &shim.id_to_piece, &shim.error) ||
      !Resolve(lib, "lstmserve_spm_encode", &shim.encode, &shim.error) ||
      !Resolve(lib, "lstmserve_spm_decode", &shim.decode, &shim.error)) {
    return shim;
  }
  return shim;
}

// Loaded once per process, on first use (thread-safe static init); never unloaded.
const Shim& GetShim() {
  static const Shim* shim = new Shim(LoadShim());
  return *shim;
}

}  // namespace

std::unique_ptr<SentencePieceModel> SentencePieceModel::Load(const std::string& serialized,
                                                             std::string* error) {
  const Shim& shim = GetShim();
  if (!shim.error.empty()) {
    *error = shim.error;
    return nullptr;
  }
  char message[512] = {0};
  void* handle = shim.load(serialized.data(), serialized.size(), message, sizeof(message));
  if (handle == nullptr) {
    *error = message;
    return nullptr;
  }
  std::unique_ptr<SentencePieceModel> model(new SentencePieceModel());
  model->handle_ = handle;
  const int n = shim.piece_size(handle);
  model->pieces_.resize(n > 0 ? n : 0);
  model->kinds_.resize(model->pieces_.size());
  for (int id = 0; id < n; ++id) {
    std::string& piece = model->pieces_[id];
    piece.resize(shim.id_to_piece(handle, id, nullptr, 0));
    shim.id_to_piece(handle, id, piece.data(), piece.size());
    model->kinds_[id] = static_cast<unsigned char>(shim.piece_kind(handle, id));
  }
  return model;
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_ != nullptr) GetShim().free(handle_);
}

bool SentencePieceModel::Encode(const std::string& text, std::vector<int>* ids,
                                std::string* error) const {
  const Shim& shim = GetShim();
  char message[512] = {0};
  ids->resize(text.size() + 2);
  long n = shim.encode(handle_, text.data(), text.size(), ids->data(), ids->size(), message,
                       sizeof(message));
  if (n > static_cast<long>(ids->size())) {  // more ids than bytes: ask again with room
    ids->resize(static_cast<size_t>(n));
    n = shim.encode(handle_, text.data(), text.size(), ids->data(), ids->size(), message,
                    sizeof(message));
  }
  if (n < 0) {
    *error = message;
    ids->clear();
    return false;
  }
  ids->resize(static_cast<size_t>(n));
  return true;
}

std::string SentencePieceModel::DecodeIds(const std::vector<int>& ids) const {
  const Shim& shim = GetShim();
  std::string out(ids.size() * 8 + 16, '\0');
  size_t n = shim.decode(handle_, ids.data(), ids.size(), out.data(), out.size());
  if (n > out.size()) {
    out.resize(n);
    n = shim.decode(handle_, ids.data(), ids.size(), out.data(), out.size());
  }
  out.resize(n);
  return out;
}

}  // namespace lstmserve
