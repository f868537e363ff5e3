#!/usr/bin/env python3
"""Measure the shipped models (LFW View 2 accuracy, cosine vs fp32, onnxruntime 1-thread latency)
and write models/measured.json, then regenerate manifest.toml.

    nice python models/tools/measure.py [--lfw DIR] [--runs 300]
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(MODELS, "reference"))
import lfw_eval  # noqa: E402
import manifest  # noqa: E402
import pipeline  # noqa: E402

EMBEDS = ["embed-fp32.onnx", "embed-int8w.onnx", "embed-int8qdq.onnx"]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def latency(path, feeds, runs):
    s = pipeline.session(path)
    for f in feeds[:10]:
        s.run(None, f)
    ts = []
    for i in range(runs):
        f = feeds[i % len(feeds)]
        t0 = time.perf_counter()
        s.run(None, f)
        ts.append((time.perf_counter() - t0) * 1000)
    return round(float(np.median(ts)), 3), round(float(np.percentile(ts, 95)), 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", default=pipeline.DEFAULT_LFW)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--cache", default=os.path.join(MODELS, ".work", "cache"))
    a = ap.parse_args()
    pairs = os.path.join(a.lfw, "pairs.txt")
    out = {}
    common = {"ort_version": ort.__version__, "ort_threads": 1, "latency_runs": a.runs}

    fp32_emb, has = None, None
    for fn in EMBEDS:
        path = os.path.join(MODELS, fn)
        m = {"sha256": sha(path)}
        for flip in (False, True):
            r, emb, has = lfw_eval.run(a.lfw, pairs, path, flip, MODELS, a.cache)
            tag = "lfw_flip" if flip else "lfw"
            m[f"{tag}_acc_mean"] = round(r["accuracy_mean"], 5)
            m[f"{tag}_acc_std"] = round(r["accuracy_std"], 5)
            m[f"{tag}_auc"] = round(r["auc"], 5)
            m[f"{tag}_tar_at_far_1e-3"] = round(r["tar_at_far_1e-3"], 5)
            m[f"{tag}_threshold_mean"] = round(r["threshold_mean"], 5)
            if not flip:
                if fn == "embed-fp32.onnx":
                    fp32_emb = emb
                m["lfw_images"] = r["images"]
                m["lfw_images_without_face"] = r["images_without_face"]
                cos = np.sum(emb[has] * fp32_emb[has], axis=1)
                m["cos_vs_fp32_n"] = int(has.sum())
                m["cos_vs_fp32_mean"] = round(float(cos.mean()), 6)
                m["cos_vs_fp32_min"] = round(float(cos.min()), 6)
            print(fn, tag, r["accuracy_mean"], r["accuracy_std"], r["auc"], r["tar_at_far_1e-3"], flush=True)
        out[fn] = m

    # latency on real inputs
    _, crops = lfw_eval.face_cache(sorted({p for x, y, _ in lfw_eval.read_pairs(pairs)[0] for p in (x, y)}),
                                   a.lfw, MODELS, a.cache)
    crops = crops[has][::97][:50]
    emb_feeds = [{"input": pipeline.embed_input(c)} for c in crops]
    for fn in EMBEDS:
        out[fn]["ort_ms_median"], out[fn]["ort_ms_p95"] = latency(os.path.join(MODELS, fn), emb_feeds, a.runs)
    rng = np.random.default_rng(0)
    for fn, shape, lo, hi in (("detect.onnx", (1, 3, 240, 320), -1, 1), ("landmark.onnx", (1, 1, 64, 64), 0, 1),
                              ("liveness.onnx", (1, 3, 128, 128), 0, 255)):
        feeds = [{"input": rng.uniform(lo, hi, shape).astype(np.float32)} for _ in range(20)]
        path = os.path.join(MODELS, fn)
        out[fn] = {"sha256": sha(path)}
        out[fn]["ort_ms_median"], out[fn]["ort_ms_p95"] = latency(path, feeds, a.runs)
    for fn in out:
        out[fn].update(common)
        print(fn, {k: v for k, v in out[fn].items() if k != "sha256"})
    manifest.save_measurements(MODELS, "measured.json", out)


if __name__ == "__main__":
    main()
