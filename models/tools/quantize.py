"""int8 variants of the embedding net: weight-only (int8w) and static QDQ (int8qdq)."""
import os
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper


def weight_only_int8(model):
    """Each Conv weight -> int8 initializer (symmetric, per output channel, zp 0) + DequantizeLinear(axis=0)."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    conv_w = []
    for n in g.node:
        if n.op_type == "Conv" and n.input[1] in inits and n.input[1] not in conv_w:
            conv_w.append(n.input[1])
    dq_nodes, new_inits = [], []
    for name in conv_w:
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = (amax / 127.0).astype(np.float32)
        scale[~(scale > 0)] = 1.0  # all-zero (or denormal) output channel: q = 0 whatever the scale
        q = np.clip(np.round(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
        new_inits += [numpy_helper.from_array(q, name + "_q"),
                      numpy_helper.from_array(scale, name + "_scale"),
                      numpy_helper.from_array(np.zeros(w.shape[0], np.int8), name + "_zp")]
        dq_nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"],
                                         [name], name=name + "_dq", axis=0))
    keep = [i for i in g.initializer if i.name not in set(conv_w)]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    nodes = dq_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return len(conv_w)


class CropReader:
    """onnxruntime.quantization CalibrationDataReader over a list of 112x112 RGB uint8 crops."""

    def __init__(self, crops, to_input):
        self.items = [{"input": to_input(c)} for c in crops]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.items):
            return None
        self.i += 1
        return self.items[self.i - 1]

    def rewind(self):
        self.i = 0


def static_qdq(fp32_path, out_path, crops, to_input, method="MinMax", act="uint8", ops=None, percentile=99.999):
    """ops: op types to quantize (None = onnxruntime default: every supported op)."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_static)
    cm = {"MinMax": CalibrationMethod.MinMax, "Percentile": CalibrationMethod.Percentile}[method]
    at = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[act]
    extra = {"WeightSymmetric": True, "ActivationSymmetric": False}
    if method == "Percentile":
        extra.update({"CalibPercentile": percentile, "CalibNumBins": 2048})
    with tempfile.TemporaryDirectory() as td:
        extra["CalibTensorRangeSymmetric"] = False
        tmp = os.path.join(td, "q.onnx")
        quantize_static(fp32_path, tmp, CropReader(crops, to_input), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=at,
                        calibrate_method=cm, extra_options=extra,
                        op_types_to_quantize=ops)
        m = onnx.load(tmp)
    m.producer_name, m.producer_version = "facegate-models", "1"
    onnx.save(m, out_path)
    return m
