#!/usr/bin/env python3
"""Facegate Python + onnxruntime reference pipeline (see SPEC.md in this folder).

Library:  Pipeline(models_dir).process(path) -> Face | None ; Pipeline.embed_crop(crop)
CLI:      embed | eval-lfw | bench | crops   (python pipeline.py -h)
"""
import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgproc  # noqa: E402

MODELS_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# The face data sets, as everywhere else: $FACEGATE_DATA, else ../shared/faces beside the checkout.
DATA_DIR = os.environ.get("FACEGATE_DATA") or os.path.join(MODELS_DIR, "..", "..", "shared", "faces")
DEFAULT_LFW = os.path.join(DATA_DIR, "lfw")
DET_W, DET_H = 320, 240
SCORE_THR, IOU_THR = 0.7, 0.3


def session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def decode(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def embed_input(crop_rgb):
    """Aligned 112x112 RGB uint8 crop -> [1,3,112,112] float32, BGR, (x - 127.5) / 128."""
    bgr = crop_rgb[:, :, ::-1].astype(np.float32)
    return ((bgr - 127.5) / 128.0).transpose(2, 0, 1)[None].copy()


def l2n(v):
    v = np.asarray(v, dtype=np.float64)
    return v / max(np.linalg.norm(v), 1e-12)


@dataclass
class Face:
    box: list          # pixel x1, y1, x2, y2
    score: float
    landmarks68: np.ndarray
    points5: np.ndarray
    crop: np.ndarray   # 112x112x3 RGB uint8


class Pipeline:
    def __init__(self, models_dir=MODELS_DIR, embed_model=None, threads=1):
        self.det = session(os.path.join(models_dir, "detect.onnx"), threads)
        self.lmk = session(os.path.join(models_dir, "landmark.onnx"), threads)
        self.emb = session(embed_model or os.path.join(models_dir, "embed-fp32.onnx"), threads)

    # b + c
    def detect(self, rgb):
        h, w = rgb.shape[:2]
        small = imgproc.resize_bilinear(rgb, DET_W, DET_H)
        x = ((small - 127.0) / 128.0).astype(np.float32).transpose(2, 0, 1)[None].copy()
        scores, boxes = self.det.run(["scores", "boxes"], {"input": x})
        sc = scores[0, :, 1].astype(np.float64)
        bx = boxes[0].astype(np.float64)
        scale = np.array([w, h, w, h], dtype=np.float64)
        return [(b * scale, s) for b, s in imgproc.nms(bx, sc, SCORE_THR, IOU_THR)]

    @staticmethod
    def subject(faces, w, h):
        """Nearest the frame centre among faces with at least 1/4 of the largest area;
        ties go to the larger face."""
        if not faces:
            return None
        area = lambda b: max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
        largest = max(area(b) for b, _ in faces)
        dist = lambda b: np.hypot((b[0] + b[2]) / 2 - w / 2.0, (b[1] + b[3]) / 2 - h / 2.0)
        return min((f for f in faces if area(f[0]) >= 0.25 * largest), key=lambda f: (dist(f[0]), -area(f[0])))

    # d
    def landmarks(self, rgb, box, **crop):
        g = imgproc.grey(rgb)
        x0, y0, n = imgproc.landmark_crop_geometry(box, **crop)
        inp = imgproc.landmark_input(g, x0, y0, n).astype(np.float32)[None, None]
        out = self.lmk.run(["output"], {"input": inp})[0].reshape(68, 2).astype(np.float64)
        return np.stack([x0 + out[:, 0] * n, y0 + out[:, 1] * n], axis=1)

    # e + f
    @staticmethod
    def align(rgb, pts5):
        m = imgproc.umeyama(pts5, imgproc.ARCFACE_112)
        return imgproc.warp_affine(rgb, m, 112, 112)

    # g
    def embed_crop(self, crop, flip=False, sess=None):
        s = sess or self.emb
        v = s.run(["output"], {"input": embed_input(crop)})[0][0].astype(np.float64)
        if flip:
            v = v + s.run(["output"], {"input": embed_input(crop[:, ::-1])})[0][0]
        return l2n(v)

    def face(self, rgb):
        h, w = rgb.shape[:2]
        faces = self.detect(rgb)
        if not faces:
            return None
        box, score = self.subject(faces, w, h)
        l68 = self.landmarks(rgb, box)
        p5 = imgproc.five_points(l68)
        return Face([float(v) for v in box], score, l68, p5, self.align(rgb, p5))


# ---------------------------------------------------------------- CLI

def read_list(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def cmd_embed(a):
    embeds = dict(kv.split("=", 1) for kv in (a.embed or []))
    p = Pipeline(a.models, a.model)
    extra = {k: session(v) for k, v in embeds.items()}
    out = {"spec": "facegate-reference-v2", "flip": a.flip, "model": os.path.basename(a.model or "embed-fp32.onnx"),
           "images": []}
    for rel in read_list(a.list):
        rgb = decode(os.path.join(a.root, rel))
        f = p.face(rgb)
        rec = {"path": rel, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "face": f is not None}
        if f is not None:
            rec["box"] = [round(v, 4) for v in f.box]
            rec["score"] = round(f.score, 6)
            rec["points5"] = [[round(float(x), 4), round(float(y), 4)] for x, y in f.points5]
            rec["embedding"] = [round(float(v), 6) for v in p.embed_crop(f.crop, a.flip)]
            for k, s in extra.items():
                rec["embedding_" + k] = [round(float(v), 6) for v in p.embed_crop(f.crop, a.flip, s)]
        out["images"].append(rec)
    write_embed_json(out, a.out)
    print(f"wrote {a.out}: {sum(r['face'] for r in out['images'])}/{len(out['images'])} faces")


def write_embed_json(out, path):
    """Compact JSON: header keys, then one image record per line."""
    head = {k: v for k, v in out.items() if k != "images"}
    lines = [json.dumps(r, separators=(",", ":")) for r in out["images"]]
    with open(path, "w") as fh:
        fh.write(json.dumps(head)[:-1] + ', "images": [\n' + ",\n".join(lines) + "\n]}\n")


def cmd_crops(a):
    p = Pipeline(a.models)
    os.makedirs(a.out, exist_ok=True)
    n = 0
    for rel in read_list(a.list):
        f = p.face(decode(os.path.join(a.root, rel)))
        if f is None:
            continue
        name = rel.replace("/", "__").rsplit(".", 1)[0] + ".png"
        Image.fromarray(f.crop).save(os.path.join(a.out, name))
        n += 1
    print(f"wrote {n} crops to {a.out}")


def _stats(ts):
    ts = np.asarray(ts) * 1000.0
    return float(np.median(ts)), float(np.percentile(ts, 95))


def cmd_bench(a):
    paths = [os.path.join(a.root, r) for r in read_list(a.images)]
    p = Pipeline(a.models, a.model, threads=a.threads)
    embeds = {k: session(v, a.threads) for k, v in (kv.split("=", 1) for kv in (a.embed or []))}
    reps = max(1, -(-a.runs // len(paths)))
    warm = p.face(decode(paths[0]))
    for _ in range(5):
        p.face(decode(paths[0]))
    t = {k: [] for k in ("decode", "detect", "landmark", "align", "embed", "pipeline")}
    crops = []
    for _ in range(reps):
        for path in paths:
            c0 = time.perf_counter()
            rgb = decode(path)
            c1 = time.perf_counter()
            faces = p.detect(rgb)
            c2 = time.perf_counter()
            if not faces:
                continue
            box, _ = p.subject(faces, rgb.shape[1], rgb.shape[0])
            l68 = p.landmarks(rgb, box)
            c3 = time.perf_counter()
            crop = p.align(rgb, imgproc.five_points(l68))
            c4 = time.perf_counter()
            p.embed_crop(crop)
            c5 = time.perf_counter()
            crops.append(crop)
            for k, d in (("decode", c1 - c0), ("detect", c2 - c1), ("landmark", c3 - c2),
                         ("align", c4 - c3), ("embed", c5 - c4), ("pipeline", c5 - c1)):
                t[k].append(d)
    res = {"runs": len(t["pipeline"]), "threads": a.threads, "ort_version": ort.__version__}
    for k, v in t.items():
        res[k + "_ms"], res[k + "_p95_ms"] = _stats(v)
    res["embed_variants"] = {}
    for name, s in embeds.items():
        for c in crops[:5]:
            p.embed_crop(c, sess=s)
        ts = []
        for c in crops:
            c0 = time.perf_counter()
            p.embed_crop(c, sess=s)
            ts.append(time.perf_counter() - c0)
        res["embed_variants"][name] = _stats(ts)[0]
        res["embed_variants_p95"] = res.get("embed_variants_p95", {})
        res["embed_variants_p95"][name] = _stats(ts)[1]
    del warm
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        for k, v in res.items():
            print(f"{k}: {v}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=MODELS_DIR, help="folder with detect/landmark/embed-fp32.onnx")
    sub = ap.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser("embed", help="embeddings + 5 points + box per image -> JSON")
    e.add_argument("--list", required=True)
    e.add_argument("--root", default=DEFAULT_LFW)
    e.add_argument("--out", required=True)
    e.add_argument("--model", help="embedding model (default embed-fp32.onnx)")
    e.add_argument("--embed", action="append", metavar="NAME=PATH", help="extra embedding models")
    e.add_argument("--flip", action="store_true")
    e.set_defaults(fn=cmd_embed)

    v = sub.add_parser("eval-lfw", help="LFW View 2 10-fold verification")
    v.add_argument("--root", default=DEFAULT_LFW)
    v.add_argument("--pairs", default=os.path.join(DEFAULT_LFW, "pairs.txt"))
    v.add_argument("--model", help="embedding model (default embed-fp32.onnx)")
    v.add_argument("--flip", action="store_true")
    v.add_argument("--cache", default=os.path.join(MODELS_DIR, ".work", "cache"),
                   help="per-image cache folder (aligned crops, embeddings); never commit")
    v.add_argument("--json", action="store_true")

    def run_eval(a):
        import lfw_eval
        lfw_eval.cmd_eval(a)
    v.set_defaults(fn=run_eval)

    b = sub.add_parser("bench", help="per-stage latency, onnxruntime single thread")
    b.add_argument("--images", required=True, help="list of image paths relative to --root")
    b.add_argument("--root", default=DEFAULT_LFW)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--runs", type=int, default=200)
    b.add_argument("--model", help="embedding model for the pipeline (default embed-fp32.onnx)")
    b.add_argument("--embed", action="append", metavar="NAME=PATH")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_bench)

    c = sub.add_parser("crops", help="write aligned 112x112 crops as PNG")
    c.add_argument("--list", required=True)
    c.add_argument("--root", default=DEFAULT_LFW)
    c.add_argument("--out", required=True)
    c.set_defaults(fn=cmd_crops)

    a = ap.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
