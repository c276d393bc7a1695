// The recurrent state of one sequence: {h, c} per layer. Plain values,
// thread-compatible; zeros are the initial state, as in PyTorch.
#ifndef LSTMSERVE_MODELS_LSTM_STATE_H_
#define LSTMSERVE_MODELS_LSTM_STATE_H_

#include <vector>

namespace lstmserve {

struct LayerState {
  std::vector<float> h;  // [H]
  std::vector<float> c;  // [H]
};

struct SequenceState {
  std::vector<LayerState> layers;  // [L]

  static SequenceState Zeros(int num_layers, int hidden_size) {
    SequenceState s;
    s.layers.assign(num_layers, LayerState{std::vector<float>(hidden_size, 0.0f),
                                           std::vector<float>(hidden_size, 0.0f)});
    return s;
  }
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_LSTM_STATE_H_
