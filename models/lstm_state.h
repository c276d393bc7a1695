// The recurrent state of one sequence: {h, c} per layer. Plain values,
// thread-compatible; zeros are the initial state, as in PyTorch.
#ifndef LSTMSERVE_MODELS_LSTM_STATE_H_
#define LSTMSERVE_MODELS_LSTM_STATE_H_

#include <vector>

namespace lstmserve {

struct LayerState {
  std::vector<float> h;  // [R]: R = proj_size when projected, else H
  std::vector<float> c;  // [H]
};

struct SequenceState {
  std::vector<LayerState> layers;  // [L]

  // proj_size > 0: a projected LSTM, whose h has proj_size floats.
  static SequenceState Zeros(int num_layers, int hidden_size, int proj_size = 0) {
    SequenceState s;
    s.layers.assign(num_layers,
                    LayerState{std::vector<float>(proj_size > 0 ? proj_size : hidden_size, 0.0f),
                               std::vector<float>(hidden_size, 0.0f)});
    return s;
  }
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_LSTM_STATE_H_
