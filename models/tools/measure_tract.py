#!/usr/bin/env python3
"""Measure the embedding variants as the Rust engine runs them (tract + the engine's own operators)
and write models/measured-tract.json, then regenerate manifest.toml.

    nice models/.work/venv/bin/python models/tools/measure_tract.py [--lfw DIR] [--runs 300]

Latency (median/p95, one core) comes from `facegate bench --json` (which also runs the onnxruntime
reference in the same invocation, so the ratio is from one run); LFW View 2 accuracy from
`facegate eval pairs --json` for every variant. Needs cargo (builds the `facegate` binary).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
ROOT = os.path.dirname(MODELS)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(MODELS, "reference"))
import manifest  # noqa: E402
from pipeline import DEFAULT_LFW  # noqa: E402


def facegate(*args):
    cmd = ["cargo", "run", "--quiet", "-p", "facegate-host", "--bin", "facegate", "--", "--models", MODELS, *args]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", default=DEFAULT_LFW)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--keep-latency", action="store_true",
                    help="refresh only the LFW figures; keep the latencies of measured-tract.json")
    a = ap.parse_args()
    entries = [e for e in manifest.load(os.path.join(MODELS, "manifest.toml")) if e["role"] == "embed"]
    keys = ("tract_embed_ms_median", "tract_embed_ms_p95", "tract_alone_embed_ms_median",
            "ort_embed_ms_median_same_run", "latency_runs")
    if a.keep_latency:
        with open(os.path.join(MODELS, "measured-tract.json")) as f:
            old = json.load(f)
        latency = {e["variant"]: {k: old[e["name"]][k] for k in keys} for e in entries}
    else:
        bench = facegate("bench", "--data", os.path.dirname(a.lfw), "--runs", str(a.runs), "--json")
        os.makedirs(os.path.join(MODELS, ".work"), exist_ok=True)
        with open(os.path.join(MODELS, ".work", "bench.json"), "w") as f:
            json.dump(bench, f, indent=1)
        latency = {e["variant"]: dict(zip(keys, (
            round(bench["embed_ms"][e["variant"]], 3),
            round(bench["embed_p95_ms"][e["variant"]], 3),
            round(bench["tract_only"]["embed_ms"][e["variant"]], 3),
            bench.get("ort", {}).get("embed_variants", {}).get(e["variant"]),
            bench["runs"]))) for e in entries}
    out = {}
    for e in entries:
        v = e["variant"]
        lfw = facegate("--model", v, "eval", "pairs", "--root", a.lfw, "--pairs", os.path.join(a.lfw, "pairs.txt"),
                       "--json")
        out[e["name"]] = {
            "sha256": sha(os.path.join(MODELS, e["file"])),
            "compute": e.get("compute", "float"),
            **latency[v],
            "rust_lfw_second_look_pairs": lfw["second_look_pairs"],
            "rust_lfw_acc_mean": round(lfw["accuracy"], 5),
            "rust_lfw_acc_std": round(lfw["accuracy_std"], 5),
            "rust_lfw_tar_at_far_1e-3": round(lfw["tar_at_far_1e-3"], 5),
            "rust_lfw_images_without_face": lfw["no_face"],
        }
        print(e["name"], out[e["name"]])
    manifest.save_measurements(MODELS, "measured-tract.json", out)


if __name__ == "__main__":
    main()
