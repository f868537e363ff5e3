"""How the landmark crop (SPEC.md d) was chosen: a sweep over its size and vertical shift on a
development pair list of LFW images outside View 2, so View 2 stays a test set.

    python reference/crop_sweep.py dev-pairs --out .work/dev_pairs.txt
    python reference/crop_sweep.py sweep --pairs .work/dev_pairs.txt 1.0,0.0 0.9,0.1 ...

`dev-pairs`: 10 folds x (300 same + 300 different) pairs, folds split by identity, seed 7,
from the 5,532 LFW images that View 2 does not use. `sweep`: for each `side,shift` (in box
heights) prints the 10-fold accuracy, TAR at FAR 1e-3, AUC and d' of genuine/impostor cosines
(fp32 embedding). Boxes are cached per list in .work/ (never beside the data).
"""
import argparse
import os
import random
import sys
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgproc  # noqa: E402
import lfw_eval  # noqa: E402
import pipeline  # noqa: E402

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(MODELS, ".work")


def dev_pairs(a):
    pairs, _ = lfw_eval.read_pairs(os.path.join(a.root, "pairs.txt"))
    used = {p for x, y, _ in pairs for p in (x, y)}
    ids = {}
    for name in sorted(os.listdir(a.root)):
        d = os.path.join(a.root, name)
        if os.path.isdir(d):
            free = [f"{name}/{f}" for f in sorted(os.listdir(d)) if f.endswith(".jpg") and f"{name}/{f}" not in used]
            if free:
                ids[name] = free
    rng = random.Random(7)
    names = sorted(ids)
    rng.shuffle(names)
    multi = [n for n in names if len(ids[n]) >= 2]
    lines = []
    for k in range(10):
        same, diff = set(), set()
        while len(same) < 300:
            x, y = rng.sample(ids[rng.choice(multi[k::10])], 2)
            same.add((min(x, y), max(x, y)))
        while len(diff) < 300:
            n1, n2 = rng.sample(names[k::10], 2)
            diff.add((rng.choice(ids[n1]), rng.choice(ids[n2])))
        lines += [f"{k}\t{x}\t{y}\t1" for x, y in sorted(same)] + [f"{k}\t{x}\t{y}\t0" for x, y in sorted(diff)]
    with open(a.out, "w") as f:
        f.write("# development pairs from LFW images outside View 2 (crop_sweep.py dev-pairs)\n")
        f.write("\n".join(lines) + "\n")
    print(f"{a.out}: {len(lines)} pairs")


P = None
ROOT = None


def _init(root):
    global P, ROOT
    P, ROOT = pipeline.Pipeline(MODELS), root


def _box(rel):
    rgb = pipeline.decode(os.path.join(ROOT, rel))
    box, _ = P.subject(P.detect(rgb), rgb.shape[1], rgb.shape[0])
    return np.asarray(box)


def _embed(job):
    rel, box, side, shift = job
    rgb = pipeline.decode(os.path.join(ROOT, rel))
    l68 = P.landmarks(rgb, box, side=side, shift_down=shift)
    return P.embed_crop(P.align(rgb, imgproc.five_points(l68)))


def sweep(a):
    rows = [ln.rstrip("\n").split("\t") for ln in open(a.pairs) if ln.strip() and not ln.startswith("#")]
    folds = np.array([int(r[0]) for r in rows])
    labels = np.array([r[3] == "1" for r in rows])
    images = sorted({p for r in rows for p in r[1:3]})
    idx = {p: i for i, p in enumerate(images)}
    ia, ib = np.array([idx[r[1]] for r in rows]), np.array([idx[r[2]] for r in rows])
    cache = os.path.join(WORK, "boxes-" + os.path.basename(a.pairs) + ".npy")
    with Pool(a.jobs, initializer=_init, initargs=(a.root,)) as pool:
        boxes = np.load(cache) if os.path.exists(cache) else np.array(pool.map(_box, images, chunksize=64))
        os.makedirs(WORK, exist_ok=True)
        np.save(cache, boxes)
        for cfg in a.configs:
            side, shift = (float(v) for v in cfg.split(","))
            emb = np.array(pool.map(_embed, [(p, boxes[i], side, shift) for i, p in enumerate(images)], chunksize=64))
            s = np.sum(emb[ia] * emb[ib], axis=1)
            r = lfw_eval.evaluate(s, labels, folds)
            g, im = s[labels], s[~labels]
            d = (g.mean() - im.mean()) / np.sqrt((g.var() + im.var()) / 2)
            print(f"side {side:.2f} shift {shift:+.2f}: accuracy {r['accuracy_mean']:.4f} "
                  f"TAR@1e-3 {lfw_eval.tar_at_far(s, labels)[0]:.4f} AUC {r['auc']:.5f} d' {d:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=pipeline.DEFAULT_LFW)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dev-pairs")
    d.add_argument("--out", required=True)
    d.set_defaults(fn=dev_pairs)
    s = sub.add_parser("sweep")
    s.add_argument("--pairs", required=True)
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("configs", nargs="+", metavar="SIDE,SHIFT")
    s.set_defaults(fn=sweep)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
