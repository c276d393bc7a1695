"""ONNX sources (--onnx): Gather -> ONNX LSTM node(s) -> MatMul/Gemm (+Add) -> (Log)Softmax.

The shapes torch.onnx.export and tf2onnx (Keras Embedding/LSTM/Dense) write: the layout ops they
put between (Transpose, Squeeze, Unsqueeze, Reshape, Cast, Shape arithmetic for the zero initial
state) are allowed; any other op, and any LSTM feature the engines do not run (peepholes, clip,
input_forget, activations other than Sigmoid/Tanh/Tanh, reverse or bidirectional, a non-zero
initial state), is refused naming the node and the attribute. ONNX's gate order i, o, f, c and
its bias layout [Wb_iofc, Rb_iofc] become PyTorch's i, f, g, o and bias_ih/bias_hh.
The reference forward is the graph itself, evaluated per the ONNX spec (importers/onnx_eval.py).
"""
import numpy as np
import onnx
from onnx import numpy_helper

from importers import onnx_eval
from importers.package import ImportFailure, Model

LAYOUT_OPS = {"Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat",
              "ConstantOfShape", "Slice", "Reshape", "Transpose", "Expand", "Constant"}
MODEL_OPS = {"LSTM", "MatMul", "Gemm", "Add", "Softmax", "LogSoftmax"}
ONNX_TO_TORCH = (0, 2, 3, 1)  # torch block k (i, f, g, o) = ONNX block ONNX_TO_TORCH[k] (i,o,f,c)


def _name(node):
    return node.name or f"<{node.op_type} -> {node.output[0]}>"


def _reorder(w, H):
    """[4H, ...] in ONNX order i, o, f, c -> PyTorch order i, f, g, o."""
    return np.concatenate([w[k * H:(k + 1) * H] for k in ONNX_TO_TORCH], axis=0)


def _check_lstm(node):
    a = onnx_eval.attrs(node)
    where = f"{_name(node)} (LSTM)"
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction != "forward":
        raise ImportFailure(f"node {where}: attribute direction = {direction!r}; only 'forward' "
                            f"LSTMs can generate left to right")
    acts = [x.decode() if isinstance(x, bytes) else x for x in a.get("activations", [])]
    if acts and acts != ["Sigmoid", "Tanh", "Tanh"]:
        raise ImportFailure(f"node {where}: attribute activations = {acts}; the engines run "
                            f"Sigmoid, Tanh, Tanh only (Keras 2's hard_sigmoid becomes "
                            f"HardSigmoid: retrain or convert with recurrent_activation='sigmoid')")
    for attr in ("activation_alpha", "activation_beta"):
        if attr in a and not acts:
            raise ImportFailure(f"node {where}: attribute {attr} is set; only the default "
                                f"activations are supported")
    if "clip" in a:
        raise ImportFailure(f"node {where}: attribute clip = {a['clip']}: cell clipping is not "
                            f"supported by the engines")
    if a.get("input_forget", 0):
        raise ImportFailure(f"node {where}: attribute input_forget = 1 (coupled input/forget "
                            f"gates) is not supported by the engines")
    if len(node.input) > 7 and node.input[7]:
        raise ImportFailure(f"node {where}: input P (peepholes, {node.input[7]!r}) is set; "
                            f"peephole LSTMs are not supported by the engines")
    return a


def _graph_consts(g):
    """{name: ndarray} of initializers and Constant node outputs."""
    c = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for node in g.node:
        if node.op_type == "Constant":
            c[node.output[0]] = onnx_eval.run_node(node, [], 13)[0]
    return c


def load(path):
    try:
        model = onnx.load(path)
    except Exception as e:  # noqa: BLE001 (protobuf raises several kinds)
        raise ImportFailure(f"--onnx {path}: not an ONNX model: {e}") from e
    return model


def convert(model, source="--onnx"):
    g = model.graph
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise ImportFailure(f"node {_name(node)}: op {node.domain}.{node.op_type} is not "
                                f"a standard ONNX op")
        if node.op_type in ("Loop", "Scan", "If"):
            raise ImportFailure(f"node {_name(node)} ({node.op_type}): a {node.op_type} instead "
                                f"of an ONNX LSTM node cannot be imported (tf2onnx writes one "
                                f"when it cannot match the LSTM pattern; export with a plain "
                                f"Keras LSTM layer or opset >= 9)")
        if node.op_type not in LAYOUT_OPS | MODEL_OPS:
            raise ImportFailure(f"node {_name(node)}: op {node.op_type} is not part of "
                                f"Gather -> LSTM -> MatMul/Gemm (+Add) -> (Log)Softmax")
    consts = _graph_consts(g)
    float_consts = {k for k, v in consts.items()
                    if np.issubdtype(v.dtype, np.floating) and v.size > 0}
    used = set()
    producers = {o: n for n in g.node for o in n.output}

    # Embedding: the Gather on a float [V, E] table.
    gathers = [n for n in g.node if n.op_type == "Gather" and n.input[0] in float_consts]
    if len(gathers) != 1:
        raise ImportFailure(f"{source}: expected one Gather on an embedding table, found "
                            f"{[_name(n) for n in gathers]}")
    gather = gathers[0]
    table = consts[gather.input[0]]
    if table.ndim != 2 or onnx_eval.attrs(gather).get("axis", 0) != 0:
        raise ImportFailure(f"node {_name(gather)}: the embedding Gather must take rows of a "
                            f"2-D table (axis 0), got shape {list(table.shape)}")
    used.add(gather.input[0])
    V, E = table.shape
    ids_input = _trace_input(gather.input[1], producers, {i.name for i in g.input})

    lstms = [n for n in g.node if n.op_type == "LSTM"]
    if not lstms:
        raise ImportFailure(f"{source}: no LSTM node")
    tensors = {"embedding.weight": table.astype(np.float32)}
    H = None
    for k, node in enumerate(lstms):
        _check_lstm(node)
        for idx, what in ((1, "W"), (2, "R")):
            if node.input[idx] not in consts:
                raise ImportFailure(f"node {_name(node)}: input {what} is not a constant")
        W, R = consts[node.input[1]], consts[node.input[2]]
        used.update(node.input[1:3])
        if W.shape[0] != 1:
            raise ImportFailure(f"node {_name(node)}: W has {W.shape[0]} directions")
        if k > 0 and R.shape[-1] != H:
            raise ImportFailure(f"node {_name(node)}: hidden_size {R.shape[-1]} differs from "
                                f"the first LSTM's {H}; the format needs one hidden size for "
                                f"all layers")
        H = R.shape[-1]
        tensors[f"lstm.weight_ih_l{k}"] = _reorder(W[0], H).astype(np.float32)
        tensors[f"lstm.weight_hh_l{k}"] = _reorder(R[0], H).astype(np.float32)
        if len(node.input) > 3 and node.input[3]:
            if node.input[3] not in consts:
                raise ImportFailure(f"node {_name(node)}: input B is not a constant")
            B = consts[node.input[3]][0]
            used.add(node.input[3])
            tensors[f"lstm.bias_ih_l{k}"] = _reorder(B[:4 * H], H).astype(np.float32)
            tensors[f"lstm.bias_hh_l{k}"] = _reorder(B[4 * H:], H).astype(np.float32)
        else:
            tensors[f"lstm.bias_ih_l{k}"] = np.zeros(4 * H, np.float32)
            tensors[f"lstm.bias_hh_l{k}"] = np.zeros(4 * H, np.float32)
        for idx, what in ((5, "initial_h"), (6, "initial_c")):
            if len(node.input) > idx and node.input[idx] in consts:
                if np.any(consts[node.input[idx]] != 0):
                    raise ImportFailure(f"node {_name(node)}: input {what} is a non-zero "
                                        f"constant; the engines start every sequence at zero")
                used.add(node.input[idx])
    if tensors["lstm.weight_ih_l0"].shape[1] != E:
        raise ImportFailure(f"node {_name(lstms[0])}: input size "
                            f"{tensors['lstm.weight_ih_l0'].shape[1]} != embedding size {E}")

    # Head: after the last LSTM, MatMul [H, V] (+ Add [V]) or Gemm.
    last = [n.output[0] for n in g.node].index(lstms[-1].output[0])
    head_w = head_b = None
    final = None
    for node in list(g.node)[last + 1:]:
        if node.op_type == "MatMul" and head_w is None:
            w = next((i for i in node.input if i in float_consts), None)
            if w is None or consts[w].ndim != 2 or node.input[1] != w:
                raise ImportFailure(f"node {_name(node)} (MatMul): expected activations x a "
                                    f"constant [hidden, vocabulary] matrix")
            head_w = consts[w].T
            used.add(w)
            final = node
        elif node.op_type == "Gemm" and head_w is None:
            a = onnx_eval.attrs(node)
            if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                raise ImportFailure(f"node {_name(node)} (Gemm): attributes alpha/beta/transA "
                                    f"must be the defaults, got {a}")
            if node.input[1] not in float_consts:
                raise ImportFailure(f"node {_name(node)} (Gemm): input B is not a constant")
            w = consts[node.input[1]]
            head_w = w if a.get("transB", 0) else w.T
            used.add(node.input[1])
            if len(node.input) > 2 and node.input[2]:
                head_b = np.broadcast_to(consts[node.input[2]], (head_w.shape[0],))
                used.add(node.input[2])
            final = node
        elif node.op_type == "Add" and head_w is not None and head_b is None:
            b = next((i for i in node.input if i in float_consts), None)
            if b is None:
                raise ImportFailure(f"node {_name(node)} (Add): expected a constant bias")
            head_b = np.broadcast_to(consts[b], (head_w.shape[0],)).reshape(-1)
            used.add(b)
            final = node
        elif node.op_type in ("Softmax", "LogSoftmax") and head_w is not None:
            final = node
        elif node.op_type in MODEL_OPS:
            raise ImportFailure(f"node {_name(node)}: op {node.op_type} after the head is not "
                                f"part of Gather -> LSTM -> MatMul/Gemm (+Add) -> (Log)Softmax")
    if head_w is None:
        raise ImportFailure(f"{source}: no MatMul/Gemm output layer after the last LSTM")
    if head_w.shape != (V, H):
        raise ImportFailure(f"{source}: output layer {list(head_w.shape)} (as [V, H]) does not "
                            f"match vocabulary {V} and hidden size {H}")
    tensors["head.weight"] = np.ascontiguousarray(head_w, dtype=np.float32)
    tensors["head.bias"] = (np.zeros(V, np.float32) if head_b is None
                            else np.ascontiguousarray(head_b, dtype=np.float32))
    left = sorted(float_consts - used)
    if left:
        raise ImportFailure(f"{source}: float tensors not used by the package: {left}")
    out_name = final.output[0]
    if out_name not in {o.name for o in g.output}:
        raise ImportFailure(f"{source}: the output layer's result {out_name!r} is not a graph "
                            f"output")
    model_out = Model(tensors, V, E, H, len(lstms))
    model_out.reference = _reference(model, ids_input, out_name, final.op_type, lstms, V)
    return model_out


def _trace_input(name, producers, inputs):
    seen = name
    while seen not in inputs:
        node = producers.get(seen)
        if node is None or node.op_type not in ("Cast", "Identity", "Reshape", "Squeeze",
                                                "Unsqueeze", "Transpose"):
            raise ImportFailure(f"the embedding Gather's indices {name!r} do not come from a "
                                f"graph input")
        seen = node.input[0]
    return seen


def _reference(model, ids_input, out_name, final_op, lstms, V):
    g = model.graph
    inp = next(i for i in g.input if i.name == ids_input)
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inp.type.tensor_type.shape.dim]
    np_type = onnx_eval._NP_OF(inp.type.tensor_type.elem_type)
    lstm0 = lstms[0]
    layout0 = onnx_eval.attrs(lstm0).get("layout", 0)

    def feeds_for(ids, seq_first):
        T = len(ids)
        if len(dims) == 1:
            return {ids_input: np.array(ids, dtype=np_type)}
        arr = np.array(ids, dtype=np_type)
        return {ids_input: arr.reshape(T, 1) if seq_first else arr.reshape(1, T)}

    def other_feeds(T):
        out = {}
        for i in g.input:
            if i.name == ids_input or i.name in {t.name for t in g.initializer}:
                continue
            shape = [d.dim_value if d.HasField("dim_value") else 1
                     for d in i.type.tensor_type.shape.dim]
            dt = onnx_eval._NP_OF(i.type.tensor_type.elem_type)
            out[i.name] = (np.full(shape, T, dtype=dt) if np.issubdtype(dt, np.integer)
                           else np.zeros(shape, dtype=dt))
        return out

    def run(ids):
        T = len(ids)
        fixed = [d for d in dims if d]
        layouts = [True, False]
        if len(dims) == 2 and dims[0] == 1 and dims[1] != 1:
            layouts = [False]
        for seq_first in layouts:
            seen = {}

            def record(node, ins, seen=seen):
                if node.output[0] == lstm0.output[0]:
                    seen["X"] = ins[0].shape
                if node.op_type == "LSTM":
                    for idx, what in ((5, "initial_h"), (6, "initial_c")):
                        if len(ins) > idx and ins[idx] is not None and np.any(ins[idx] != 0):
                            raise ImportFailure(f"node {_name(node)}: input {what} is not zero "
                                                f"on a fresh sequence")
            feeds = {**other_feeds(T), **feeds_for(ids, seq_first)}
            if fixed and len(fixed) == len(dims) and int(np.prod(fixed)) != T:
                raise ImportFailure(f"input {ids_input!r} has the fixed shape {dims}; give the "
                                    f"graph a dynamic sequence axis")
            try:
                y = onnx_eval.evaluate(model, feeds, [out_name], record)[out_name]
            except (ValueError, IndexError) as e:
                if seq_first is layouts[-1]:
                    raise ImportFailure(f"evaluating the graph failed: {e}") from e
                continue
            x_seq = seen["X"][1 if layout0 else 0]
            if T == 1 or x_seq == T:
                y = y.astype(np.float64).reshape(-1, V)
                if final_op == "Softmax":
                    return np.log(y)
                if final_op == "LogSoftmax":
                    return y
                m = y.max(axis=1, keepdims=True)
                return y - m - np.log(np.exp(y - m).sum(axis=1, keepdims=True))
        raise ImportFailure(f"input {ids_input!r}: cannot tell its sequence axis")
    return run
