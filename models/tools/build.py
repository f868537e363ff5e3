#!/usr/bin/env python3
"""Build the shipped models from the extracted npm package (called by models/rebuild.sh)."""
import argparse
import logging
import glob
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(MODELS, "reference"))
import manifest  # noqa: E402
import quantize  # noqa: E402
import rewrite  # noqa: E402

PACKAGE, VERSION = "faceplugin-face-recognition-js", "0.0.1"
SOURCES = {
    "fr_detect.onnx": "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854",
    "fr_landmark.onnx": "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258",
    "fr_feature.onnx": "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581",
    "fr_liveness.onnx": "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d",
}
MAX_INT8_BYTES = 1_600_000
# (calibration method, percentile, activation type); only Conv is quantized (the PRelu-rewrite
# elementwise ops stay fp32: quantizing them too cost ~0.002 mean cosine on the holdout).
QDQ_CANDIDATES = [("MinMax", None, "uint8"), ("MinMax", None, "int8"), ("Percentile", 99.999, "uint8"),
                  ("Percentile", 99.99, "uint8"), ("Percentile", 99.99, "int8")]
QDQ_OPS = ["Conv"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def check_sources(model_dir):
    expected = dict(SOURCES)
    man = os.path.join(MODELS, "manifest.toml")
    if os.path.exists(man):  # the committed manifest must agree with the table above
        for m in manifest.load(man):
            src = m["source"]
            fn = os.path.basename(src["path"])
            if expected.get(fn, src["sha256"]) != src["sha256"]:
                sys.exit(f"manifest.toml source sha256 for {fn} disagrees with tools/build.py")
    for fn, want in expected.items():
        got = sha256(os.path.join(model_dir, fn))
        if got != want:
            sys.exit(f"sha256 mismatch for {fn}: {got} != {want}")
        print(f"source ok  {fn}  {got}")


def sess(path_or_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def max_diff(orig, new, feeds):
    a, b = sess(orig), sess(new)
    worst = 0.0
    for f in feeds:
        for x, y in zip(a.run(None, f), b.run(None, f)):
            worst = max(worst, float(np.abs(x.astype(np.float64) - y).max()))
    return worst


def save(model, path):
    onnx.save(model, path)
    return path


def lfw_lists(root, pairs):
    """Deterministic calibration/holdout image lists from LFW identities NOT in pairs.txt."""
    used = set()
    with open(pairs) as f:
        for ln in f.read().strip().split("\n")[1:]:
            p = ln.split("\t")
            used.update([p[0]] if len(p) == 3 else [p[0], p[2]])
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and d not in used)
    calib = [f"{n}/{n}_0001.jpg" for n in names[0::4]][:300]
    hold = [f"{n}/{n}_0001.jpg" for n in names[2::4]][:200]
    return calib, hold


def make_crops(rels, root, out_dir):
    import pipeline
    p = pipeline.Pipeline(MODELS)
    crops = []
    os.makedirs(out_dir, exist_ok=True)
    for rel in rels:
        png = os.path.join(out_dir, rel.replace("/", "__").rsplit(".", 1)[0] + ".png")
        if os.path.exists(png):
            crops.append(np.asarray(Image.open(png).convert("RGB")))
            continue
        f = p.face(pipeline.decode(os.path.join(root, rel)))
        if f is not None:
            Image.fromarray(f.crop).save(png)
            crops.append(f.crop)
    return crops


def load_crops(d):
    files = sorted(glob.glob(os.path.join(d, "*.png")))
    return [np.asarray(Image.open(f).convert("RGB").resize((112, 112)) if Image.open(f).size != (112, 112)
                       else Image.open(f).convert("RGB")) for f in files]


def cosines(model_a, model_b, crops, to_input):
    a, b = sess(model_a), sess(model_b)
    out = []
    for c in crops:
        x = {"input": to_input(c)}
        u = a.run(None, x)[0][0].astype(np.float64)
        v = b.run(None, x)[0][0].astype(np.float64)
        out.append(float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))
    return np.array(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--package-dir", help="extracted npm package (contains model/)")
    ap.add_argument("--work")
    ap.add_argument("--calib-dir", help="aligned 112x112 PNG crops from the Rust engine")
    ap.add_argument("--lfw", help="LFW root (default: $FACEGATE_DATA/lfw)")
    ap.add_argument("--print-calib-list", action="store_true",
                    help="print the calibration image list (relative to --lfw) and exit")
    a = ap.parse_args()
    if a.lfw is None:
        import pipeline
        a.lfw = pipeline.DEFAULT_LFW
    if a.print_calib_list:
        print("\n".join(lfw_lists(a.lfw, os.path.join(a.lfw, "pairs.txt"))[0]))
        return
    if not a.package_dir or not a.work:
        ap.error("--package-dir and --work are required")
    logging.disable(logging.WARNING)  # onnxruntime.quantization pre-processing nags
    import pipeline
    src = os.path.join(a.package_dir, "model")
    check_sources(src)
    rng = np.random.default_rng(20240601)
    out = {}

    # --- detect / landmark: constant folding only
    for name, fn, shape in (("detect.onnx", "fr_detect.onnx", (1, 3, 240, 320)),
                            ("landmark.onnx", "fr_landmark.onnx", (1, 1, 64, 64))):
        m = onnx.load(os.path.join(src, fn))
        nf = rewrite.fold_constants(m)
        rewrite.cleanup(m, doc=f"{PACKAGE}@{VERSION} {fn}; constant folding")
        out[name] = save(m, os.path.join(MODELS, name))
        lo = 0.0 if name == "landmark.onnx" else -1.0
        feeds = [{"input": rng.uniform(lo, 1.0, shape).astype(np.float32)} for _ in range(3)]
        print(f"{name}: folded {nf} nodes; max|diff| random {max_diff(os.path.join(src, fn), out[name], feeds):.3g}")

    # --- liveness: PRelu rewrite + folding (stays opset 9)
    m = onnx.load(os.path.join(src, "fr_liveness.onnx"))
    npr = rewrite.prelu_rewrite(m)
    nf = rewrite.fold_constants(m)
    rewrite.cleanup(m, doc=f"{PACKAGE}@{VERSION} fr_liveness.onnx; prelu-rewrite; constant folding")
    out["liveness.onnx"] = save(m, os.path.join(MODELS, "liveness.onnx"))
    feeds = [{"input": rng.uniform(0, 255, (1, 3, 128, 128)).astype(np.float32)} for _ in range(3)]
    print(f"liveness.onnx: {npr} PRelu rewritten, folded {nf}; max|diff| random "
          f"{max_diff(os.path.join(src, 'fr_liveness.onnx'), out['liveness.onnx'], feeds):.3g}")

    # --- embedding fp32: PRelu rewrite + folding + opset 13
    orig_emb = os.path.join(src, "fr_feature.onnx")
    m = onnx.load(orig_emb)
    npr = rewrite.prelu_rewrite(m)
    nf = rewrite.fold_constants(m)
    rewrite.cleanup(m, opset=13, doc=f"{PACKAGE}@{VERSION} fr_feature.onnx; prelu-rewrite; opset 13")
    fp32 = out["embed-fp32.onnx"] = save(m, os.path.join(MODELS, "embed-fp32.onnx"))
    feeds = [{"input": rng.uniform(-1, 1, (1, 3, 112, 112)).astype(np.float32)} for _ in range(3)]
    print(f"embed-fp32.onnx: {npr} PRelu rewritten, folded {nf}; max|diff| random {max_diff(orig_emb, fp32, feeds):.3g}")

    # --- real data: calibration + holdout crops (never inside the repo, only under .work/)
    calib_rel, hold_rel = lfw_lists(a.lfw, os.path.join(a.lfw, "pairs.txt"))
    hold = make_crops(hold_rel, a.lfw, os.path.join(a.work, "holdout"))
    if a.calib_dir:
        calib, calib_src = load_crops(a.calib_dir), "rust-engine crops from --calib-dir"
    else:
        calib, calib_src = make_crops(calib_rel, a.lfw, os.path.join(a.work, "calib")), "python reference crops"
    print(f"calibration: {len(calib)} crops ({calib_src}); holdout: {len(hold)} crops")
    real = [{"input": pipeline.embed_input(c)} for c in hold[:50]]
    print(f"embed-fp32.onnx: max|diff| real crops {max_diff(orig_emb, fp32, real):.3g}")
    det_feeds = []
    for rel in hold_rel[:10]:
        rgb = pipeline.decode(os.path.join(a.lfw, rel))
        x = (pipeline.imgproc.resize_bilinear(rgb, 320, 240) - 127.0) / 128.0
        det_feeds.append({"input": x.astype(np.float32).transpose(2, 0, 1)[None].copy()})
    print(f"detect.onnx: max|diff| real images {max_diff(os.path.join(src, 'fr_detect.onnx'), out['detect.onnx'], det_feeds):.3g}")

    # --- int8 weight-only
    m = onnx.load(fp32)
    nq = quantize.weight_only_int8(m)
    rewrite.cleanup(m, doc=f"{PACKAGE}@{VERSION} fr_feature.onnx; prelu-rewrite; weight-only int8 per-channel")
    w8 = out["embed-int8w.onnx"] = save(m, os.path.join(MODELS, "embed-int8w.onnx"))
    c = cosines(fp32, w8, hold, pipeline.embed_input)
    print(f"embed-int8w.onnx: {nq} conv weights; {os.path.getsize(w8)} bytes; cos vs fp32 mean {c.mean():.5f} min {c.min():.5f}")

    # --- int8 static QDQ: try calibration methods / activation types, keep the best on the holdout
    best = None
    for method, pc, act in QDQ_CANDIDATES:
        label = method if pc is None else f"{method}-{pc}"
        path = os.path.join(a.work, f"qdq-{label}-{act}.onnx")
        quantize.static_qdq(fp32, path, calib, pipeline.embed_input, method, act, QDQ_OPS, pc)
        c = cosines(fp32, path, hold, pipeline.embed_input)
        print(f"  qdq {label:17s} act {act}: cos vs fp32 mean {c.mean():.5f} min {c.min():.5f}; "
              f"{os.path.getsize(path)} bytes")
        if best is None or c.mean() > best[0]:
            best = (float(c.mean()), label, act, path)
    q = out["embed-int8qdq.onnx"] = os.path.join(MODELS, "embed-int8qdq.onnx")
    shutil.copyfile(best[3], q)
    print(f"embed-int8qdq.onnx: picked {best[1]}/{best[2]} (holdout cos {best[0]:.5f})")
    for k in ("embed-int8w.onnx", "embed-int8qdq.onnx"):
        if os.path.getsize(out[k]) > MAX_INT8_BYTES:
            sys.exit(f"{k} is {os.path.getsize(out[k])} bytes > {MAX_INT8_BYTES}")

    build_info = {"qdq_method": best[1], "qdq_activation": best[2], "calibration": calib_src,
                  "calibration_count": len(calib), "onnxruntime": ort.__version__, "onnx": onnx.__version__}
    with open(os.path.join(MODELS, "build-info.json"), "w") as f:
        json.dump(build_info, f, indent=1, sort_keys=True)
        f.write("\n")
    manifest.write(MODELS, build_info)
    for k in sorted(out):
        print(f"{sha256(out[k])}  {os.path.getsize(out[k]):>9}  {k}")


if __name__ == "__main__":
    main()
