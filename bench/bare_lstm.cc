#include "bench/bare_lstm.h"

#include <omp.h>

#include "models/onednn_common.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lstmserve::bench {
namespace {
using onednn::dt;
using onednn::tag;
using md = dnnl::memory::desc;
}  // namespace

struct BareLstm::Impl {
  struct Segment {
    int layers, in;
    dnnl::memory weights_layer, weights_iter, bias;
  };
  struct Shape {
    std::vector<dnnl::lstm_forward> prims;
    std::vector<std::unordered_map<int, dnnl::memory>> args;
  };
  int H;
  onednn::NumericFormat format;
  int threads;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::primitive_attr attr;
  std::vector<Segment> segments;
  std::map<std::pair<int, int>, Shape> shapes;

  dnnl::lstm_forward::primitive_desc Pd(const Segment& s, int T, int N, bool any) {
    const int64_t Ls = s.layers;
    const md wl =
        any ? md({Ls, 1, s.in, 4, H}, format.weights, tag::any) : s.weights_layer.get_desc();
    const md wi = any ? md({Ls, 1, H, 4, H}, format.weights, tag::any) : s.weights_iter.get_desc();
    const md iter({Ls, 1, N, H}, format.data, tag::ldnc), iter_c({Ls, 1, N, H}, dt::f32, tag::ldnc);
    return dnnl::lstm_forward::primitive_desc(
        dnnl::lstm_forward::desc(dnnl::prop_kind::forward_inference,
                                 dnnl::rnn_direction::unidirectional_left2right,
                                 md({T, N, s.in}, format.data, tag::tnc), iter, iter_c, wl, wi,
                                 md({Ls, 1, 4, H}, dt::f32, tag::ldgo),
                                 md({T, N, H}, format.data, tag::tnc), iter, iter_c),
        attr, engine);
  }
};

BareLstm::BareLstm(int E, int H, int L, Precision precision, int threads) : impl_(new Impl) {
  Impl& m = *impl_;
  m.H = H;
  m.format = onednn::FormatFor(precision);
  m.threads = threads > 0 ? threads : omp_get_num_procs();
  if (precision == Precision::kInt8) {
    m.attr.set_rnn_data_qparams(m.format.data_scale, m.format.data_shift);
    m.attr.set_rnn_weights_qparams((1 << 3) | (1 << 4), std::vector<float>(4 * H, 100.0f));
  }
  if (E == H) {
    m.segments.push_back({L, E, {}, {}, {}});
  } else {
    m.segments.push_back({1, E, {}, {}, {}});
    if (L > 1) m.segments.push_back({L - 1, H, {}, {}, {}});
  }
  for (auto& s : m.segments) {
    const auto pd = m.Pd(s, 1, 1, true);
    s.weights_layer = dnnl::memory(pd.weights_layer_desc(), m.engine);
    s.weights_iter = dnnl::memory(pd.weights_iter_desc(), m.engine);
    s.bias = dnnl::memory(pd.bias_desc(), m.engine);
    for (auto* mem : {&s.weights_layer, &s.weights_iter, &s.bias}) {
      std::memset(mem->get_data_handle(), 0, mem->get_desc().get_size());
    }
  }
}

BareLstm::~BareLstm() = default;

void BareLstm::Run(int T, int N) {
  Impl& m = *impl_;
  omp_set_num_threads(m.threads);
  auto it = m.shapes.find({T, N});
  if (it == m.shapes.end()) {
    Impl::Shape shape;
    dnnl::memory layer_in;
    for (auto& s : m.segments) {
      const auto pd = m.Pd(s, T, N, false);
      shape.prims.emplace_back(pd);
      if (!layer_in) {
        layer_in = dnnl::memory(pd.src_layer_desc(), m.engine);
        std::memset(layer_in.get_data_handle(), 0, layer_in.get_desc().get_size());
      }
      auto alloc = [&](const md& d) {
        dnnl::memory mem(d, m.engine);
        std::memset(mem.get_data_handle(), 0, d.get_size());
        return mem;
      };
      dnnl::memory out = alloc(pd.dst_layer_desc());
      shape.args.push_back({{DNNL_ARG_SRC_LAYER, layer_in},
                            {DNNL_ARG_SRC_ITER, alloc(pd.src_iter_desc())},
                            {DNNL_ARG_SRC_ITER_C, alloc(pd.src_iter_c_desc())},
                            {DNNL_ARG_WEIGHTS_LAYER, s.weights_layer},
                            {DNNL_ARG_WEIGHTS_ITER, s.weights_iter},
                            {DNNL_ARG_BIAS, s.bias},
                            {DNNL_ARG_DST_LAYER, out},
                            {DNNL_ARG_DST_ITER, alloc(pd.dst_iter_desc())},
                            {DNNL_ARG_DST_ITER_C, alloc(pd.dst_iter_c_desc())}});
      layer_in = out;
    }
    it = m.shapes.emplace(std::make_pair(T, N), std::move(shape)).first;
  }
  for (size_t i = 0; i < it->second.prims.size(); ++i) {
    it->second.prims[i].execute(m.stream, it->second.args[i]);
  }
  m.stream.wait();
}

std::string EffectiveIsa() { return onednn::IsaName(dnnl::get_effective_cpu_isa()); }

}  // namespace lstmserve::bench
