"""Write / read models/manifest.toml. Measurements come from models/measured.json (see tools/measure.py)
and are attached only when their recorded sha256 matches the file that was just built."""
import hashlib
import json
import os
import tomllib

PKG = {"package": "faceplugin-face-recognition-js", "version": "0.0.1", "license": "MIT"}
FAMILY = "mobilefacenet-fp-js-0.0.1"
# The presentation-attack networks come from elsewhere (Apache-2.0): see PROVENANCE.md.
ANTI_SPOOFING = {"project": "minivision-ai/Silent-Face-Anti-Spoofing", "license": "Apache-2.0",
                 "export": "yakhyo/face-anti-spoofing@c175efe weights/"}
SRC_SHA = {
    "MiniFASNetV2.onnx": "4eed38f0bde33c9b805942a5f25e42ce1161e2bda545254be622be957727794e",
    "MiniFASNetV1SE.onnx": "d819a69bac6b9ade2a0f4d9b60b618e1260f7bf3ba1fddff6c5d82131cb1083f",
    "fr_detect.onnx": "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854",
    "fr_landmark.onnx": "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258",
    "fr_feature.onnx": "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
    "fr_liveness.onnx": "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d",
}
EMBED_IN = {"name": "input", "shape": [1, 3, 112, 112], "layout": "NCHW", "color": "BGR",
            "mean": [127.5, 127.5, 127.5], "scale": [0.0078125, 0.0078125, 0.0078125]}
EMBED_OUT = [{"name": "output", "shape": [1, 512], "meaning": "embedding, L2-normalise before cosine"}]

ENTRIES = [
    dict(name="detect", file="detect.onnx", role="detect", variant="fp32", src="fr_detect.onnx",
         transform="constant folding (Shape/Gather/Unsqueeze/Concat chains -> constant Reshape shapes)",
         input={"name": "input", "shape": [1, 3, 240, 320], "layout": "NCHW", "color": "RGB",
                "mean": [127.0, 127.0, 127.0], "scale": [0.0078125, 0.0078125, 0.0078125]},
         outputs=[{"name": "scores", "shape": [1, 4420, 2], "meaning": "softmax, face prob = [..., 1]"},
                  {"name": "boxes", "shape": [1, 4420, 4], "meaning": "decoded x1,y1,x2,y2 normalised 0..1"}]),
    dict(name="landmark", file="landmark.onnx", role="landmark", variant="fp32", src="fr_landmark.onnx",
         transform="constant folding (no-op for this graph)",
         input={"name": "input", "shape": [1, 1, 64, 64], "layout": "NCHW", "color": "GRAY",
                "mean": [0.0], "scale": [0.00390625]},
         outputs=[{"name": "output", "shape": [1, 136], "meaning": "68 (x,y) pairs normalised to the crop"}]),
    dict(name="liveness", file="liveness.onnx", role="liveness", variant="fp32", src="fr_liveness.onnx",
         transform="prelu-rewrite (PRelu -> Relu + slope*Min(x,0)); constant folding",
         crop={"box_scale": 2.7, "side": 128, "bgr": False, "live_class": 0},
         input={"name": "input", "shape": [1, 3, 128, 128], "layout": "NCHW", "color": "RGB",
                "mean": [0.0, 0.0, 0.0], "scale": [1.0, 1.0, 1.0],
                "note": "as fed by fr_liveness.js: box scaled 2.7x, resized to 128x128, raw 0..255 values"},
         outputs=[{"name": "output", "shape": [1, 3], "meaning": "logits; fr_liveness.js uses softmax()[0]"}]),
    *(dict(name=f"liveness-{v}", file=f"liveness-minifasnet-{v}.onnx", role="liveness", variant=f"minifasnet-{v}",
           src=src, origin=ANTI_SPOOFING, transform="none (copied unchanged)",
           crop={"box_scale": scale, "side": 80, "bgr": True, "live_class": 1},
           input={"name": "input", "shape": [1, 3, 80, 80], "layout": "NCHW", "color": "BGR",
                  "mean": [0.0, 0.0, 0.0], "scale": [1.0, 1.0, 1.0],
                  "note": f"detector box scaled {scale}x about its centre (shrunk to fit the frame), resized to 80x80"},
           outputs=[{"name": "output", "shape": [1, 3], "meaning": "logits; softmax class 1 = real, 0 and 2 = attack"}])
      for v, src, scale in (("v2", "MiniFASNetV2.onnx", 2.7), ("v1se", "MiniFASNetV1SE.onnx", 4.0))),
    dict(name="embed-fp32", file="embed-fp32.onnx", role="embed", variant="fp32", src="fr_feature.onnx",
         transform="prelu-rewrite (PRelu -> Relu + slope*Min(x,0)); constant folding; opset 9 -> 13",
         input=EMBED_IN, outputs=EMBED_OUT),
    dict(name="embed-int8w", file="embed-int8w.onnx", role="embed", variant="int8w", src="fr_feature.onnx",
         transform="prelu-rewrite; opset 13; weight-only int8: Conv weights int8 symmetric per-output-channel "
                   "(zero point 0) -> DequantizeLinear(axis=0); biases and slopes fp32",
         input=EMBED_IN, outputs=EMBED_OUT),
    dict(name="embed-int8", file="embed-int8w.onnx", role="embed", variant="int8", src="fr_feature.onnx",
         compute="int8", measured=False,
         transform="the int8w file run in int8 by the engine: each 1x1 convolution quantizes its input "
                   "(symmetric, per call, max|x|/127), multiplies int8 x int8 -> int32 on tract's int8 "
                   "kernels and dequantizes with the per-channel weight scales (device/engine/src/kernels)",
         input=EMBED_IN, outputs=EMBED_OUT),
    dict(name="embed-int8qdq", file="embed-int8qdq.onnx", role="embed", variant="int8qdq", src="fr_feature.onnx",
         transform="prelu-rewrite; opset 13; onnxruntime quantize_static QDQ, per-channel int8 symmetric weights, "
                   "{act} activations, {method} calibration on {n} aligned crops ({calib}); only Conv quantized "
                   "(Relu/Min/Mul/Add of the PRelu rewrite and residual Adds stay fp32)",
         input=EMBED_IN, outputs=EMBED_OUT),
]


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_val(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_val(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def write(models_dir, build_info):
    mpath = os.path.join(models_dir, "measured.json")
    measured = json.load(open(mpath)) if os.path.exists(mpath) else {}
    tpath = os.path.join(models_dir, "measured-tract.json")
    measured_tract = json.load(open(tpath)) if os.path.exists(tpath) else {}
    lines = ["# Generated by models/rebuild.sh (tools/manifest.py). Do not edit by hand.",
             "# See PROVENANCE.md. [model.measured] (Python onnxruntime reference) comes from measured.json",
             "# (tools/measure.py), [model.measured_tract] (the Rust engine) from measured-tract.json",
             "# (tools/measure_tract.py); each is attached only when its sha256 matches the shipped file.", "",
             "schema = 1", f"embedding_family = {_val(FAMILY)}",
             "# The embedding variant a device runs unless configured otherwise: the int8 file (1.3 MB) with",
             "# its 1x1 convolutions computed in int8 on tract's int8 kernels (see PROVENANCE.md).",
             'shipped_embed = "int8"', ""]
    for e in ENTRIES:
        path = os.path.join(models_dir, e["file"])
        sha = _sha(path)
        transform = e["transform"].format(act=build_info.get("qdq_activation"), method=build_info.get("qdq_method"),
                                          n=build_info.get("calibration_count"), calib=build_info.get("calibration"))
        lines += ["[[model]]", f"name = {_val(e['name'])}", f"file = {_val(e['file'])}", f"role = {_val(e['role'])}",
                  f"variant = {_val(e['variant'])}", f"sha256 = {_val(sha)}", f"bytes = {os.path.getsize(path)}"]
        if e.get("compute"):
            lines.append(f"compute = {_val(e['compute'])}")
        if e["role"] == "embed":
            lines += [f"embedding_model_id = {_val(FAMILY + '/' + e['variant'])}",
                      f"embedding_family = {_val(FAMILY)}", "embedding_dim = 512"]
        if e.get("origin"):
            src = dict(e["origin"], file=e["src"], sha256=SRC_SHA[e["src"]])
        else:
            src = dict(PKG, path="package/model/" + e["src"], sha256=SRC_SHA[e["src"]])
        lines += [f"source = {_val(src)}", f"transform = {_val(transform)}", f"input = {_val(e['input'])}",
                  f"outputs = {_val(e['outputs'])}"]
        if e.get("crop"):
            lines.append(f"crop = {_val(e['crop'])}")
        m = measured.get(e["file"]) if e.get("measured", True) else None
        if m and m.get("sha256") == sha:
            lines += ["", "[model.measured]"]
            for k in sorted(m):
                if k != "sha256":
                    lines.append(f"{k} = {_val(m[k])}")
        t = measured_tract.get(e["name"])
        if t and t.get("sha256") == sha:
            lines += ["", "[model.measured_tract]"]
            for k in sorted(t):
                if k != "sha256" and t[k] is not None:
                    lines.append(f"{k} = {_val(t[k])}")
        lines.append("")
    with open(os.path.join(models_dir, "manifest.toml"), "w") as f:
        f.write("\n".join(lines))


def save_measurements(models_dir, filename, measurements):
    """Writes a measurements file (e.g. measured.json) and regenerates manifest.toml with it."""
    with open(os.path.join(models_dir, filename), "w") as f:
        json.dump(measurements, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(models_dir, "build-info.json")) as f:
        write(models_dir, json.load(f))


def load(path):
    with open(path, "rb") as f:
        return tomllib.load(f)["model"]
