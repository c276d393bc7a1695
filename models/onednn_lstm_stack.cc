#include "models/onednn_lstm_stack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

namespace lstmserve::onednn {
namespace {

// Beyond this many cached primitives per segment the cache is cleared (a
// server sees at most max_batch step shapes plus a few prompt-chunk shapes).
constexpr size_t kMaxCachedPrimitives = 512;
// Fewer (layer, sequence) state rows than this are gathered/scattered on the
// calling thread: waking the OpenMP team costs more than copying them.
constexpr int kParallelRows = 16;

using md = dnnl::memory::desc;

}  // namespace

struct LstmStack::Primitive {
  dnnl::lstm_forward prim;
  dnnl::memory src_layer, src_iter, src_iter_c, dst_layer, dst_iter, dst_iter_c, scratchpad;
  std::unordered_map<int, dnnl::memory> args;
};

// Layers [first_layer, first_layer + num_layers) as one multi-layer primitive.
struct LstmStack::Segment {
  int first_layer = 0;
  int num_layers = 0;
  int input_width = 0;
  dnnl::primitive_attr attr;  // user scratchpad (+ int8 quantization parameters)
  md weights_layer_md, weights_iter_md;
  dnnl::memory weights_layer, weights_iter, bias;  // packed once; bias f32 ldgo
  AlignedBuffer h_in, c_in, h_out, c_out;          // [layers, 1, N, H]
  std::unordered_map<int64_t, Primitive> cache;    // key: T << 32 | N
};

LstmStack::LstmStack(const ModelConfig& config, Precision precision)
    : config_(config), format_(FormatFor(precision)) {}

LstmStack::~LstmStack() = default;

std::unique_ptr<LstmStack> LstmStack::Create(const ModelConfig& config, ModelWeights* weights,
                                             Precision precision, int max_batch,
                                             int max_prompt_chunk, const dnnl::engine& engine,
                                             dnnl::stream* stream) {
  std::unique_ptr<LstmStack> stack(new LstmStack(config, precision));
  stack->engine_ = engine;
  const int E = config.embedding_dim, H = config.hidden_size, L = config.num_layers;

  // int8 activations must lie in [-1, 1]. h does (it is o * tanh(c)); the
  // embedding need not, so each embedding column is divided by its largest
  // magnitude and layer 0's input weights are multiplied by it (exact in
  // real arithmetic).
  std::vector<float> column_scale(E, 1.0f);
  if (precision == Precision::kInt8) {
    std::fill(column_scale.begin(), column_scale.end(), 0.0f);
    const std::vector<float>& emb = weights->embedding.data;
    for (int v = 0; v < config.vocab_size; ++v) {
      for (int e = 0; e < E; ++e) {
        column_scale[e] = std::max(column_scale[e], std::fabs(emb[static_cast<size_t>(v) * E + e]));
      }
    }
    for (float& s : column_scale) s = s > 0.0f ? s : 1.0f;
  }
  if (MatmulLayer::Applies(precision)) {
    if (!MatmulLayer::UsesTable(config)) stack->BuildEmbeddingTable(weights->embedding, column_scale);
    const int max_rows = std::max(max_batch, max_prompt_chunk);
    for (int l = 0; l < L; ++l) {
      stack->layers_.push_back(MatmulLayer::Create(config, *weights, l, precision, max_batch,
                                                   max_rows, engine, stream));
    }
    weights->embedding = Tensor();
    weights->layers.clear();
    weights->layers.shrink_to_fit();
    return stack;
  }
  stack->BuildEmbeddingTable(weights->embedding, column_scale);
  weights->embedding = Tensor();

  // Segments; see the header for why.
  auto add = [&](int first, int count, int in) {
    auto seg = std::make_unique<Segment>();
    seg->first_layer = first;
    seg->num_layers = count;
    seg->input_width = in;
    stack->segments_.push_back(std::move(seg));
  };
  if (E == H) {
    add(0, L, E);
  } else {
    add(0, 1, E);
    if (L > 1) add(1, L - 1, H);
  }
  for (auto& seg : stack->segments_) {
    stack->PackSegment(seg.get(), *weights, column_scale, max_batch, max_prompt_chunk, engine,
                       stream);
  }
  weights->layers.clear();
  weights->layers.shrink_to_fit();
  return stack;
}

void LstmStack::BuildEmbeddingTable(const Tensor& embedding,
                                    const std::vector<float>& column_scale) {
  const int V = config_.vocab_size, E = config_.embedding_dim;
  embedding_table_.resize(static_cast<size_t>(V) * E * format_.data_bytes);
  std::vector<float> row(E);
  for (int v = 0; v < V; ++v) {
    for (int e = 0; e < E; ++e) {
      row[e] = embedding.data[static_cast<size_t>(v) * E + e] / column_scale[e];
    }
    EncodeActivations(format_, row.data(), E,
                      embedding_table_.data() + static_cast<size_t>(v) * E * format_.data_bytes);
  }
}

dnnl::lstm_forward::desc LstmStack::MakeDesc(const Segment& seg, int T, int N,
                                             bool any_weights) const {
  const int64_t Ls = seg.num_layers, In = seg.input_width, H = config_.hidden_size;
  const md src_layer({T, N, In}, format_.data, tag::tnc);
  const md iter_h({Ls, 1, N, H}, format_.data, tag::ldnc);
  const md iter_c({Ls, 1, N, H}, dt::f32, tag::ldnc);
  const md bias({Ls, 1, 4, H}, dt::f32, tag::ldgo);
  const md dst_layer({T, N, H}, format_.data, tag::tnc);
  const md wl =
      any_weights ? md({Ls, 1, In, 4, H}, format_.weights, tag::any) : seg.weights_layer_md;
  const md wi = any_weights ? md({Ls, 1, H, 4, H}, format_.weights, tag::any) : seg.weights_iter_md;
  return dnnl::lstm_forward::desc(dnnl::prop_kind::forward_inference,
                                  dnnl::rnn_direction::unidirectional_left2right, src_layer, iter_h,
                                  iter_c, wl, wi, bias, dst_layer, iter_h, iter_c);
}

void LstmStack::PackSegment(Segment* seg, const ModelWeights& weights,
                            const std::vector<float>& layer0_column_scale, int max_batch,
                            int max_prompt_chunk, const dnnl::engine& engine,
                            dnnl::stream* stream) {
  const int64_t Ls = seg->num_layers, In = seg->input_width, H = config_.hidden_size;
  const int64_t G = 4 * H;  // gate rows, PyTorch order i, f, g, o == oneDNN's

  // User layout ldigo: [layer][dir=1][input][gate][output], i.e. W^T per layer.
  std::vector<float> wl(Ls * In * G), wi(Ls * H * G), bias(Ls * G);
  for (int64_t l = 0; l < Ls; ++l) {
    const int k = seg->first_layer + static_cast<int>(l);
    const LstmLayerWeights& w = weights.layers[k];
    for (int64_t r = 0; r < G; ++r) {
      for (int64_t i = 0; i < In; ++i) {
        const float col = k == 0 ? layer0_column_scale[i] : 1.0f;
        wl[(l * In + i) * G + r] = w.w_ih.data[r * In + i] * col;  // [4H, In] -> [In, 4H]
      }
      for (int64_t i = 0; i < H; ++i) wi[(l * H + i) * G + r] = w.w_hh.data[r * H + i];
      // PyTorch has two biases per layer; the cell only sees their sum.
      bias[l * G + r] = w.b_ih.data[r] + w.b_hh.data[r];
    }
  }

  seg->attr = UserScratchpadAttr();
  dnnl::primitive_attr reorder_attr;
  if (format_.data == dt::u8) {
    // One scale per (gate, output) column, shared by weights_layer and
    // weights_iter as oneDNN requires: 127 / max |w| over both.
    std::vector<float> scales(G, 0.0f);
    for (int64_t l = 0; l < Ls; ++l) {
      for (int64_t i = 0; i < In; ++i) {
        for (int64_t r = 0; r < G; ++r) {
          scales[r] = std::max(scales[r], std::fabs(wl[(l * In + i) * G + r]));
        }
      }
      for (int64_t i = 0; i < H; ++i) {
        for (int64_t r = 0; r < G; ++r) {
          scales[r] = std::max(scales[r], std::fabs(wi[(l * H + i) * G + r]));
        }
      }
    }
    for (float& s : scales) s = s > 0.0f ? kWeightQuantMax / s : 1.0f;
    const int mask = (1 << 3) | (1 << 4);  // the g and o dimensions of ldigo
    for (dnnl::primitive_attr* a : {&seg->attr, &reorder_attr}) {
      a->set_rnn_data_qparams(format_.data_scale, format_.data_shift);
      a->set_rnn_weights_qparams(mask, scales);
    }
  }

  // The preferred layout must not depend on the shape, or one copy could not
  // serve every primitive.
  const auto probe = [&](int T, int N) {
    return dnnl::lstm_forward::primitive_desc(MakeDesc(*seg, T, N, true), seg->attr, engine);
  };
  const auto pd1 = probe(1, 1);
  packed_layout_ = true;
  for (auto [T, N] : {std::pair<int, int>{1, max_batch}, {max_prompt_chunk, 1}}) {
    const auto pd = probe(T, N);
    if (pd.weights_layer_desc() != pd1.weights_layer_desc() ||
        pd.weights_iter_desc() != pd1.weights_iter_desc()) {
      packed_layout_ = false;
    }
  }
  if (packed_layout_) {
    seg->weights_layer_md = pd1.weights_layer_desc();
    seg->weights_iter_md = pd1.weights_iter_desc();
  } else {
    seg->weights_layer_md = md({Ls, 1, In, 4, H}, format_.weights, tag::ldigo);
    seg->weights_iter_md = md({Ls, 1, H, 4, H}, format_.weights, tag::ldigo);
  }

  auto pack = [&](std::vector<float>& user, const md& user_md, const md& packed_md) {
    dnnl::memory src(user_md, engine, user.data());
    dnnl::memory dst(packed_md, engine);
    ReorderSingleThreaded(src, dst, reorder_attr, stream);
    return dst;
  };
  seg->weights_layer = pack(wl, md({Ls, 1, In, 4, H}, dt::f32, tag::ldigo), seg->weights_layer_md);
  seg->weights_iter = pack(wi, md({Ls, 1, H, 4, H}, dt::f32, tag::ldigo), seg->weights_iter_md);
  seg->bias = dnnl::memory(md({Ls, 1, 4, H}, dt::f32, tag::ldgo), engine);
  std::memcpy(seg->bias.get_data_handle(), bias.data(), bias.size() * sizeof(float));
}

LstmStack::Primitive& LstmStack::GetPrimitive(Segment* seg, int T, int N) {
  const int64_t key = (static_cast<int64_t>(T) << 32) | N;
  auto it = seg->cache.find(key);
  if (it != seg->cache.end()) return it->second;
  if (seg->cache.size() >= kMaxCachedPrimitives) seg->cache.clear();

  // Ask for the preferred layout and check it is the packed one; if oneDNN
  // prefers another for this shape, insist on ours (it may pick another
  // implementation) rather than keeping a second copy of the weights.
  auto pd = dnnl::lstm_forward::primitive_desc(MakeDesc(*seg, T, N, true), seg->attr, engine_);
  if (pd.weights_layer_desc() != seg->weights_layer_md ||
      pd.weights_iter_desc() != seg->weights_iter_md) {
    pd = dnnl::lstm_forward::primitive_desc(MakeDesc(*seg, T, N, false), seg->attr, engine_);
  }
  Primitive p;
  p.prim = dnnl::lstm_forward(pd);
  p.src_layer = dnnl::memory(pd.src_layer_desc(), engine_, nullptr);
  p.src_iter = dnnl::memory(pd.src_iter_desc(), engine_, nullptr);
  p.src_iter_c = dnnl::memory(pd.src_iter_c_desc(), engine_, nullptr);
  p.dst_layer = dnnl::memory(pd.dst_layer_desc(), engine_, nullptr);
  p.dst_iter = dnnl::memory(pd.dst_iter_desc(), engine_, nullptr);
  p.dst_iter_c = dnnl::memory(pd.dst_iter_c_desc(), engine_, nullptr);
  p.scratchpad = dnnl::memory(pd.scratchpad_desc(), engine_, nullptr);
  p.args = {
      {DNNL_ARG_SRC_LAYER, p.src_layer},          {DNNL_ARG_SRC_ITER, p.src_iter},
      {DNNL_ARG_SRC_ITER_C, p.src_iter_c},        {DNNL_ARG_WEIGHTS_LAYER, seg->weights_layer},
      {DNNL_ARG_WEIGHTS_ITER, seg->weights_iter}, {DNNL_ARG_BIAS, seg->bias},
      {DNNL_ARG_DST_LAYER, p.dst_layer},          {DNNL_ARG_DST_ITER, p.dst_iter},
      {DNNL_ARG_DST_ITER_C, p.dst_iter_c},        {DNNL_ARG_SCRATCHPAD, p.scratchpad}};
  ++primitives_created_;
  return seg->cache.emplace(key, std::move(p)).first->second;
}

void LstmStack::Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token,
                        absl::Span<SequenceState* const> states, Scratchpad* scratchpad,
                        dnnl::stream* stream) {
  const int N = static_cast<int>(states.size());
  const int64_t E = config_.embedding_dim, H = config_.hidden_size;
  const size_t esize = format_.data_bytes;

  const bool table = layer0_table();
  if (!table) {
    // Layer-0 inputs: [T, N, E] rows gathered from the embedding table.
    input_.Reserve(static_cast<size_t>(T) * N * E * esize);
    for (int t = 0; t < T; ++t) {
      for (int n = 0; n < N; ++n) {
        std::memcpy(input_.data() + (static_cast<size_t>(t) * N + n) * E * esize,
                    embedding_table_.data() + static_cast<size_t>(token(t, n)) * E * esize,
                    E * esize);
      }
    }
  }

  if (!layers_.empty()) {
    const uint8_t* layer_in = input_.data();
    for (size_t l = 0; l < layers_.size(); ++l) {
      AlignedBuffer& out = activations_[l % 2];
      out.Reserve(static_cast<size_t>(T) * N * H * esize);
      layers_[l]->Forward(T, token, layer_in, states, out.data(), scratchpad, stream);
      layer_in = out.data();
    }
    output_ = layer_in;
    return;
  }

  uint8_t* layer_in = input_.data();
  for (size_t s = 0; s < segments_.size(); ++s) {
    Segment* seg = segments_[s].get();
    const size_t state_elems = static_cast<size_t>(seg->num_layers) * N * H;
    seg->h_in.Reserve(state_elems * esize);
    seg->c_in.Reserve(state_elems * sizeof(float));
    seg->h_out.Reserve(state_elems * esize);
    seg->c_out.Reserve(state_elems * sizeof(float));
    // [layers, 1, N, H]: layer l of sequence n at row l * N + n. Gathered
    // on the engine's OpenMP team: at large N this is megabytes per step.
    const int rows = seg->num_layers * N;
#pragma omp parallel for schedule(static) if (rows >= kParallelRows)
    for (int r = 0; r < rows; ++r) {
      const int l = r / N, n = r % N;
      const LayerState& st = states[n]->layers[seg->first_layer + l];
      const size_t row = static_cast<size_t>(r) * H;
      EncodeActivations(format_, st.h.data(), H, seg->h_in.data() + row * esize);
      std::memcpy(seg->c_in.data() + row * sizeof(float), st.c.data(), H * sizeof(float));
    }
    AlignedBuffer& out = activations_[s % 2];
    out.Reserve(static_cast<size_t>(T) * N * H * esize);

    Primitive& p = GetPrimitive(seg, T, N);
    p.src_layer.set_data_handle(layer_in);
    p.src_iter.set_data_handle(seg->h_in.data());
    p.src_iter_c.set_data_handle(seg->c_in.data());
    p.dst_layer.set_data_handle(out.data());
    p.dst_iter.set_data_handle(seg->h_out.data());
    p.dst_iter_c.set_data_handle(seg->c_out.data());
    scratchpad->Bind(&p.scratchpad);
    p.prim.execute(*stream, p.args);
    layer_in = out.data();
  }
  stream->wait();
  output_ = layer_in;

  for (auto& seg : segments_) {
    const int rows = seg->num_layers * N;
#pragma omp parallel for schedule(static) if (rows >= kParallelRows)
    for (int r = 0; r < rows; ++r) {
      const int l = r / N, n = r % N;
      LayerState& st = states[n]->layers[seg->first_layer + l];
      const size_t row = static_cast<size_t>(r) * H;
      DecodeActivations(format_, seg->h_out.data() + row * esize, H, st.h.data());
      std::memcpy(st.c.data(), seg->c_out.data() + row * sizeof(float), H * sizeof(float));
    }
  }
}

const uint8_t* LstmStack::output() const { return output_; }

int LstmStack::primitives_created() const {
  int created = primitives_created_;
  for (const auto& layer : layers_) created += layer->primitives_created();
  return created;
}

size_t LstmStack::weight_bytes() const {
  size_t bytes = embedding_table_.size();
  for (const auto& layer : layers_) bytes += layer->weight_bytes();
  for (const auto& seg : segments_) {
    bytes += seg->weights_layer.get_desc().get_size() + seg->weights_iter.get_desc().get_size() +
             seg->bias.get_desc().get_size();
  }
  return bytes;
}

}  // namespace lstmserve::onednn
