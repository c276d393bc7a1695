// Portable LSTM states: the bytes of GenerateResponse/ScoreResponse/
// EmbedResponse `state` and of the requests' `state`. A client may hand a
// state to any replica that serves the same weights under the same name and
// holds the signing key; that replica continues the text exactly where the
// state left it.
//
// What a state means: the text of `tokens` tokens that produced it. It holds
// the LSTM's {h, c} after all of them but the last, and the last token's id
// (`last_token`): a continuation feeds that token first, together with the
// new text, exactly where one request over the whole text would feed it. So
// continuing needs no separate evaluation of the output layer (Generate with
// an empty prompt samples from the log-probs after `last_token`), and a
// Generate's state needs no extra step after its last sampled token.
//
// Format version 1 (all integers little-endian):
//   "LSST"                      4 bytes magic
//   u32 format_version          = 1
//   u16 name_bytes, name        the model's name as served
//   32 bytes fingerprint        SHA-256 of the weights (server/model_fingerprint.h)
//   u64 tokens                  >= 1
//   i32 last_token              in [0, vocab_size)
//   u32 num_layers
//   per layer: u32 h_len, u32 c_len, f32[h_len] h, f32[c_len] c
//                               (h_len == c_len == hidden_size today; a projected
//                               LSTM has h of proj_size floats)
//   32 bytes HMAC-SHA256        over every byte above (server/state_keys.h)
// f32 whatever the serving precision: the engines keep states in f32.
//
// Decoding authenticates before it interprets anything beyond the magic and
// the version. Every failure is INVALID_ARGUMENT naming `state` and what is
// wrong; nothing partial is returned. Pure functions; thread-safe.
#ifndef LSTMSERVE_SERVER_STATE_CODEC_H_
#define LSTMSERVE_SERVER_STATE_CODEC_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/lstm_state.h"
#include "models/model_config.h"
#include "server/state_keys.h"

namespace lstmserve {

inline constexpr uint32_t kStateFormatVersion = 1;

// A decoded (or to be encoded) state; see the file comment.
struct PortableState {
  int64_t tokens = 0;
  int32_t last_token = 0;
  SequenceState state;  // after tokens - 1 tokens
};

// The model a state must belong to.
struct StateModel {
  std::string name;
  std::string fingerprint;  // kFingerprintBytes
  int vocab_size = 0;
  // {h floats, c floats} per layer, as in the model's SequenceState.
  std::vector<std::pair<int, int>> layers;

  static StateModel For(std::string name, std::string fingerprint, const ModelConfig& config);
};

// The exact size of a version-1 state of `model`.
size_t EncodedStateSize(const StateModel& model);

// Signs with the key ring's first key. `state` must have `model`'s shape.
std::string EncodeState(const StateModel& model, const PortableState& state,
                        const StateKeyRing& keys);

// Verifies and decodes `bytes` for `model`; see the file comment.
absl::StatusOr<PortableState> DecodeState(absl::string_view bytes, const StateModel& model,
                                          const StateKeyRing& keys);

// One served model's codec: its StateModel and the server's key ring
// (borrowed; outlives the codec). Immutable; thread-safe.
class ModelStateCodec {
 public:
  ModelStateCodec(StateModel model, const StateKeyRing* keys)
      : model_(std::move(model)), keys_(keys) {}
  std::string Encode(const PortableState& state) const {
    return EncodeState(model_, state, *keys_);
  }
  absl::StatusOr<PortableState> Decode(absl::string_view bytes) const {
    return DecodeState(bytes, model_, *keys_);
  }
  const StateModel& model() const { return model_; }

 private:
  const StateModel model_;
  const StateKeyRing* const keys_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_STATE_CODEC_H_
