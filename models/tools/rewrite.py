"""Graph rewrites: PRelu -> Relu/Min/Mul/Add, constant folding, opset bump, cleanup."""
import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

# Ops whose semantics are identical from opset 9 to 13 for the way they are used here.
SAFE_FOR_OPSET13 = {"Conv", "Relu", "Min", "Mul", "Add", "Reshape", "Flatten", "Gemm"}


def prelu_rewrite(model):
    """PRelu(x, a) -> Add(Relu(x), Mul(a, Min(x, 0))). Exact for every finite x."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    zero = "prelu_rw_zero"
    nodes, n_rw = [], 0
    for node in g.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, a = node.input
        y = node.output[0]
        slope = numpy_helper.to_array(inits[a])
        if slope.ndim == 1:  # per-channel slope given as (C,): broadcast over NCHW needs (C,1,1)
            inits[a].CopyFrom(numpy_helper.from_array(slope.reshape(-1, 1, 1), a))
        p = f"prelu_rw{n_rw}"
        nodes += [
            helper.make_node("Relu", [x], [p + "_pos"], name=p + "_relu"),
            helper.make_node("Min", [x, zero], [p + "_neg"], name=p + "_min"),
            helper.make_node("Mul", [p + "_neg", a], [p + "_negs"], name=p + "_mul"),
            helper.make_node("Add", [p + "_pos", p + "_negs"], [y], name=p + "_add"),
        ]
        n_rw += 1
    if n_rw:
        g.initializer.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), zero))
        del g.node[:]
        g.node.extend(nodes)
    return n_rw


def _static_shapes(model):
    inf = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inf.graph.value_info) + list(inf.graph.input) + list(inf.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        if vi.type.tensor_type.HasField("shape") and all(d is not None for d in dims):
            shapes[vi.name] = dims
    return shapes


def fold_constants(model, max_elems=1 << 20):
    """Fold Constant nodes, Shape of statically-shaped tensors, and nodes with only constant inputs."""
    g = model.graph
    opset = [o for o in model.opset_import if o.domain in ("", "ai.onnx")][0].version
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    shapes = _static_shapes(model)
    outputs = {o.name for o in g.output}
    kept, folded = [], 0
    for node in g.node:
        val = None
        if node.op_type == "Constant":
            val = [numpy_helper.to_array(node.attribute[0].t)]
        elif node.op_type == "Shape" and node.input[0] in shapes:
            val = [np.array(shapes[node.input[0]], dtype=np.int64)]
        elif node.input and all(i in consts for i in node.input if i):
            ins = [consts[i] for i in node.input if i]
            if sum(v.size for v in ins) <= max_elems:
                tmp = helper.make_model(
                    helper.make_graph(
                        [node], "fold",
                        [helper.make_tensor_value_info(i, numpy_helper.from_array(consts[i]).data_type, None)
                         for i in node.input if i],
                        [helper.make_tensor_value_info(o, 0, None) for o in node.output]),
                    opset_imports=[helper.make_opsetid("", opset)])
                val = ReferenceEvaluator(tmp).run(None, {i: consts[i] for i in node.input if i})
        if val is None or any(o in outputs for o in node.output):
            kept.append(node)
            continue
        for o, v in zip(node.output, val):
            consts[o] = np.asarray(v)
        folded += 1
    used = {i for n in kept for i in n.input} | outputs
    old = {i.name for i in g.initializer}
    new_inits = []
    for name, v in consts.items():
        if name in used:
            new_inits.append(numpy_helper.from_array(np.asarray(v), name))
    del g.node[:]
    g.node.extend(kept)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    # drop stale graph inputs that shadowed initializers (old exporters list them as inputs)
    keep_inputs = [i for i in g.input if i.name not in old and i.name not in consts]
    del g.input[:]
    g.input.extend(keep_inputs)
    return folded


def cleanup(model, opset=None, doc=""):
    """Drop value_info, optionally bump the default opset, record a doc string."""
    g = model.graph
    del g.value_info[:]
    if opset is not None:
        bad = {n.op_type for n in g.node} - SAFE_FOR_OPSET13 - {"DequantizeLinear", "QuantizeLinear"}
        if bad:
            raise ValueError(f"cannot bump opset blindly, ops {sorted(bad)}")
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = opset
        model.ir_version = max(model.ir_version, 7)
    model.doc_string = doc
    onnx.checker.check_model(model)
    return model
