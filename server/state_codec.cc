#include "server/state_codec.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/model_fingerprint.h"

namespace lstmserve {
namespace {

constexpr char kMagic[4] = {'L', 'S', 'S', 'T'};

// Little-endian appends (the host is little-endian x86-64; memcpy keeps the
// code free of alignment assumptions).
template <typename T>
void Put(std::string* out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  const size_t n = out->size();
  out->resize(n + sizeof(T));
  std::memcpy(out->data() + n, &v, sizeof(T));
}

// Reads fixed-size fields from an authenticated buffer of known size.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T* v) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Get(size_t n, absl::string_view* v) {
    if (bytes_.size() - pos_ < n) return false;
    *v = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Floats(size_t n, std::vector<float>* v) {
    if ((bytes_.size() - pos_) / sizeof(float) < n) return false;
    v->resize(n);
    std::memcpy(v->data(), bytes_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("state ", what));
}

constexpr size_t kHeaderBytes = sizeof(kMagic) + sizeof(uint32_t);

}  // namespace

StateModel StateModel::For(std::string name, std::string fingerprint, const ModelConfig& config) {
  StateModel m;
  m.name = std::move(name);
  m.fingerprint = std::move(fingerprint);
  m.vocab_size = config.vocab_size;
  m.layers.assign(config.num_layers, {config.output_size(), config.hidden_size});  // h: P if projected
  return m;
}

size_t EncodedStateSize(const StateModel& model) {
  size_t n = kHeaderBytes + sizeof(uint16_t) + model.name.size() + kFingerprintBytes +
             sizeof(uint64_t) + sizeof(int32_t) + sizeof(uint32_t);
  for (const auto& [h, c] : model.layers) {
    n += 2 * sizeof(uint32_t) + (static_cast<size_t>(h) + c) * sizeof(float);
  }
  return n + kStateMacBytes;
}

std::string EncodeState(const StateModel& model, const PortableState& state,
                        const StateKeyRing& keys) {
  std::string out;
  out.reserve(EncodedStateSize(model));
  out.append(kMagic, sizeof(kMagic));
  Put<uint32_t>(&out, kStateFormatVersion);
  Put<uint16_t>(&out, static_cast<uint16_t>(model.name.size()));
  out += model.name;
  out += model.fingerprint;
  Put<uint64_t>(&out, static_cast<uint64_t>(state.tokens));
  Put<int32_t>(&out, state.last_token);
  Put<uint32_t>(&out, static_cast<uint32_t>(state.state.layers.size()));
  for (const LayerState& l : state.state.layers) {
    Put<uint32_t>(&out, static_cast<uint32_t>(l.h.size()));
    Put<uint32_t>(&out, static_cast<uint32_t>(l.c.size()));
    out.append(reinterpret_cast<const char*>(l.h.data()), l.h.size() * sizeof(float));
    out.append(reinterpret_cast<const char*>(l.c.data()), l.c.size() * sizeof(float));
  }
  const StateMac mac = keys.Sign(out);
  out.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  return out;
}

absl::StatusOr<PortableState> DecodeState(absl::string_view bytes, const StateModel& model,
                                          const StateKeyRing& keys) {
  if (bytes.empty()) return Invalid("is empty");
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Invalid(absl::StrCat("is not an lstmserve state (", bytes.size(),
                                " bytes without the 'LSST' header)"));
  }
  uint32_t version = 0;
  std::memcpy(&version, bytes.data() + sizeof(kMagic), sizeof(version));
  if (version != kStateFormatVersion) {
    return Invalid(absl::StrCat("has format version ", version, "; this server reads version ",
                                kStateFormatVersion, " (resend the text instead)"));
  }
  const size_t expected = EncodedStateSize(model);
  if (bytes.size() != expected) {
    return Invalid(absl::StrCat("is ", bytes.size(), " bytes; a state of model '", model.name,
                                "' is ", expected,
                                " bytes (truncated, extended or from another model)"));
  }
  const absl::string_view signed_part = bytes.substr(0, bytes.size() - kStateMacBytes);
  StateMac mac;
  std::memcpy(mac.data(), bytes.data() + signed_part.size(), kStateMacBytes);
  if (!keys.Verify(signed_part, mac)) {
    return Invalid(
        "signature does not verify: the state was altered, or signed with a key this server "
        "does not hold (--state-key-file)");
  }
  // Authentic from here on: written by a server holding one of our keys.
  Reader r(signed_part);
  absl::string_view skip, name, fingerprint;
  uint16_t name_bytes = 0;
  r.Get(kHeaderBytes, &skip);
  if (!r.Get(&name_bytes) || !r.Get(name_bytes, &name) ||
      !r.Get(model.fingerprint.size(), &fingerprint)) {
    return Invalid("header is truncated");
  }
  if (name != model.name) {
    return Invalid(absl::StrCat("belongs to model '", name, "', not '", model.name, "'"));
  }
  if (fingerprint != model.fingerprint) {
    return Invalid(absl::StrCat("was made by other weights of model '", model.name,
                                "' (fingerprint ", FingerprintPrefix(std::string(fingerprint)),
                                "..., serving ", FingerprintPrefix(model.fingerprint),
                                "...): another version"));
  }
  PortableState out;
  uint64_t tokens = 0;
  uint32_t layers = 0;
  if (!r.Get(&tokens) || !r.Get(&out.last_token) || !r.Get(&layers)) {
    return Invalid("header is truncated");
  }
  if (tokens < 1 || tokens > (uint64_t{1} << 62)) {
    return Invalid(absl::StrCat("covers ", tokens, " tokens; it must cover at least 1"));
  }
  out.tokens = static_cast<int64_t>(tokens);
  if (out.last_token < 0 || out.last_token >= model.vocab_size) {
    return Invalid(absl::StrCat("has last token ", out.last_token, "; the vocabulary has ",
                                model.vocab_size));
  }
  if (layers != model.layers.size()) {
    return Invalid(absl::StrCat("has ", layers, " layers; model '", model.name, "' has ",
                                model.layers.size()));
  }
  out.state.layers.resize(layers);
  for (uint32_t l = 0; l < layers; ++l) {
    uint32_t h = 0, c = 0;
    if (!r.Get(&h) || !r.Get(&c)) return Invalid("is truncated");
    if (static_cast<int>(h) != model.layers[l].first ||
        static_cast<int>(c) != model.layers[l].second) {
      return Invalid(absl::StrCat("layer ", l, " has h of ", h, " and c of ", c,
                                  " floats; the model's has ", model.layers[l].first, " and ",
                                  model.layers[l].second));
    }
    LayerState& ls = out.state.layers[l];
    if (!r.Floats(h, &ls.h) || !r.Floats(c, &ls.c)) return Invalid("is truncated");
    for (const std::vector<float>* v : {&ls.h, &ls.c}) {
      for (float x : *v) {
        if (!std::isfinite(x)) {
          return Invalid(absl::StrCat("layer ", l, " holds a non-finite value"));
        }
      }
    }
  }
  if (r.pos() != signed_part.size()) {
    return Invalid(absl::StrCat("has ", signed_part.size() - r.pos(), " bytes after its layers"));
  }
  return out;
}

}  // namespace lstmserve
