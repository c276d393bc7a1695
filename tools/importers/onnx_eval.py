"""A numpy evaluator for the ONNX operators a stacked-LSTM language model graph uses.

Evaluates the graph as the ONNX operator specification defines each op (the LSTM in ONNX's own
gate order i, o, f, c and bias layout [Wb, Rb]), so that the importer's converted package is
checked against the graph's own semantics, not against the conversion. Only the ops the importer
accepts are implemented (importers/onnx_source.py refuses every other op first).
"""
import numpy as np
import onnx
from onnx import numpy_helper

try:
    _NP_OF = onnx.helper.tensor_dtype_to_np_dtype
except AttributeError:  # onnx < 1.13
    from onnx import mapping

    def _NP_OF(t):
        return mapping.TENSOR_TYPE_TO_NP_TYPE[t]


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _axes(node, ins, a):
    if len(ins) > 1 and ins[1] is not None:
        return [int(x) for x in ins[1]]
    return list(a.get("axes", []))


def _softmax(x, axis, opset, log):
    if opset < 13:  # coerced to 2-D at `axis`
        shape = x.shape
        axis = axis % x.ndim
        x2 = x.reshape(int(np.prod(shape[:axis])), -1)
        return _softmax(x2, -1, 13, log).reshape(shape)
    m = x.max(axis=axis, keepdims=True)
    z = x - m
    lse = np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z - lse if log else np.exp(z - lse)


def _lstm(node, ins, a, opset):
    """ONNX LSTM, forward direction, activations sigmoid/tanh/tanh (checked by the importer)."""
    X, W, R = ins[0], ins[1], ins[2]
    B = ins[3] if len(ins) > 3 else None
    h0 = ins[5] if len(ins) > 5 else None
    c0 = ins[6] if len(ins) > 6 else None
    layout = a.get("layout", 0)
    if layout:
        X = X.transpose(1, 0, 2)  # [batch, seq, in] -> [seq, batch, in]
    T, N, _ = X.shape
    H = R.shape[-1]
    W, R = W[0].astype(np.float64), R[0].astype(np.float64)  # [4H, in], [4H, H]; i, o, f, c
    b = (B[0, :4 * H] + B[0, 4 * H:]).astype(np.float64) if B is not None else np.zeros(4 * H)
    h = np.zeros((N, H)) if h0 is None else (h0.transpose(1, 0, 2) if layout else h0)[0]
    c = np.zeros((N, H)) if c0 is None else (c0.transpose(1, 0, 2) if layout else c0)[0]
    h, c = h.astype(np.float64), c.astype(np.float64)
    ys = []
    for t in range(T):
        g = X[t].astype(np.float64) @ W.T + h @ R.T + b  # [N, 4H]
        i, o, f, cc = (g[:, k * H:(k + 1) * H] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cc)
        h = _sigmoid(o) * np.tanh(c)
        ys.append(h)
    Y = np.stack(ys)[:, None]  # [T, 1, N, H]
    Yh, Yc = h[None], c[None]
    if layout:
        Y, Yh, Yc = Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return [Y, Yh, Yc]


def run_node(node, ins, opset):
    a = attrs(node)
    op = node.op_type
    if op == "Constant":
        if "value" in a:
            return [numpy_helper.to_array(a["value"])]
        for k in ("value_float", "value_int"):
            if k in a:
                return [np.array(a[k])]
        for k in ("value_floats", "value_ints"):
            if k in a:
                return [np.array(a[k])]
        raise ValueError(f"node {node.name!r} (Constant): unsupported value attribute")
    if op == "Identity":
        return [ins[0]]
    if op == "Cast":
        return [ins[0].astype(_NP_OF(a["to"]))]
    if op == "Shape":
        s = np.array(ins[0].shape, dtype=np.int64)
        return [s[a.get("start", 0):a.get("end", None)]]
    if op == "Gather":
        return [np.take(ins[0], ins[1].astype(np.int64), axis=a.get("axis", 0))]
    if op == "Unsqueeze":
        x = ins[0]
        axes = sorted(ax % (x.ndim + len(_axes(node, ins, a))) for ax in _axes(node, ins, a))
        for ax in axes:
            x = np.expand_dims(x, ax)
        return [x]
    if op == "Squeeze":
        axes = _axes(node, ins, a)
        return [np.squeeze(ins[0], axis=tuple(axes)) if axes else np.squeeze(ins[0])]
    if op == "Concat":
        return [np.concatenate([np.atleast_1d(x) for x in ins], axis=a["axis"])]
    if op == "ConstantOfShape":
        v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return [np.full([int(d) for d in ins[0]], v.reshape(-1)[0], dtype=v.dtype)]
    if op == "Slice":
        x = ins[0]
        if opset < 10:
            starts, ends = a["starts"], a["ends"]
            axes = a.get("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts, ends = ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        sl = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(s), int(max(min(e, 2 ** 62), -2 ** 62)), int(st))
        return [x[tuple(sl)]]
    if op == "Reshape":
        shape = [int(d) for d in ins[1]]
        shape = [ins[0].shape[i] if d == 0 and not a.get("allowzero", 0) else d
                 for i, d in enumerate(shape)]
        return [ins[0].reshape(shape)]
    if op == "Transpose":
        return [ins[0].transpose(a.get("perm", None))]
    if op == "Expand":
        return [ins[0] * np.ones([int(d) for d in ins[1]], dtype=ins[0].dtype)]
    if op == "MatMul":
        return [np.matmul(ins[0], ins[1])]
    if op == "Add":
        return [ins[0] + ins[1]]
    if op == "Gemm":
        A = ins[0].T if a.get("transA", 0) else ins[0]
        Bm = ins[1].T if a.get("transB", 0) else ins[1]
        y = a.get("alpha", 1.0) * (A @ Bm)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a.get("beta", 1.0) * ins[2]
        return [y]
    if op in ("Softmax", "LogSoftmax"):
        axis = a.get("axis", -1 if opset >= 13 else 1)
        return [_softmax(ins[0].astype(np.float64), axis, opset, op == "LogSoftmax")]
    if op == "LSTM":
        return _lstm(node, ins, a, opset)
    raise ValueError(f"node {node.name!r}: op {op} is not evaluated")


def evaluate(model, feeds, want, record=None):
    """Runs `model` (onnx.ModelProto) on {input name: array}; returns {name: array} of `want`.

    record(node, inputs) is called before each node runs (the importer checks LSTM states)."""
    g = model.graph
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=13)
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    env.update(feeds)
    for node in g.node:
        ins = [env[n] if n else None for n in node.input]
        if record:
            record(node, ins)
        outs = run_node(node, ins, opset)
        for name, val in zip(node.output, outs):
            if name:
                env[name] = val
    return {k: env[k] for k in want}
