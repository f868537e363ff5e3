"""LFW View 2 10-fold verification for the reference pipeline, with per-image caches.

Cache (under models/.work/cache, git-ignored): aligned crops per image (computed once with the
detect + landmark models), and embeddings per (embedding model sha256, flip)."""
import hashlib
import json
import os

import numpy as np

import pipeline


def read_pairs(path):
    with open(path) as f:
        lines = f.read().strip().split("\n")
    n_folds, n = (int(v) for v in lines[0].split())
    pairs = []
    for ln in lines[1:]:
        p = ln.split("\t")
        if len(p) == 3:
            pairs.append((f"{p[0]}/{p[0]}_{int(p[1]):04d}.jpg", f"{p[0]}/{p[0]}_{int(p[2]):04d}.jpg", True))
        else:
            pairs.append((f"{p[0]}/{p[0]}_{int(p[1]):04d}.jpg", f"{p[2]}/{p[2]}_{int(p[3]):04d}.jpg", False))
    assert len(pairs) == n_folds * 2 * n
    folds = np.repeat(np.arange(n_folds), 2 * n)
    return pairs, folds


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def face_cache(images, root, models_dir, cache_dir):
    """Aligned crops for every image; keyed by the detect + landmark model hashes."""
    key = (_sha(os.path.join(models_dir, "detect.onnx"))[:12] + "-" +
           _sha(os.path.join(models_dir, "landmark.onnx"))[:12])
    path = os.path.join(cache_dir, f"faces-{key}-{len(images)}.npz")
    if os.path.exists(path):
        z = np.load(path)
        if list(z["images"]) == list(images):
            return z["has_face"], z["crops"]
    p = pipeline.Pipeline(models_dir)
    has = np.zeros(len(images), bool)
    crops = np.zeros((len(images), 112, 112, 3), np.uint8)
    for i, rel in enumerate(images):
        f = p.face(pipeline.decode(os.path.join(root, rel)))
        if f is not None:
            has[i], crops[i] = True, f.crop
    os.makedirs(cache_dir, exist_ok=True)
    np.savez(path, images=np.array(images), has_face=has, crops=crops)
    return has, crops


def embeddings(model, has, crops, flip, cache_dir):
    path = os.path.join(cache_dir, f"emb-{_sha(model)[:16]}-{int(flip)}-{len(crops)}.npy")
    if os.path.exists(path):
        return np.load(path)
    s = pipeline.session(model)
    p = pipeline.Pipeline.__new__(pipeline.Pipeline)
    out = np.zeros((len(crops), 512), np.float64)
    for i in np.nonzero(has)[0]:
        out[i] = p.embed_crop(crops[i], flip, s)
    np.save(path, out)
    return out


def _best_threshold(scores, labels):
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], labels[order]
    # threshold between consecutive sorted scores; predict same if score > thr
    cand = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    accs = [np.mean((scores > t) == labels) for t in cand]
    return float(cand[int(np.argmax(accs))])


def auc(scores, labels):
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    npos, nneg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def tar_at_far(scores, labels, far=1e-3):
    neg = np.sort(scores[~labels])[::-1]
    k = int(np.floor(far * len(neg)))  # at most k negatives may score above the threshold
    thr = neg[k]
    return float(np.mean(scores[labels] > thr)), float(thr)


def evaluate(scores, labels, folds):
    accs, thrs = [], []
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        t = _best_threshold(scores[tr], labels[tr])
        accs.append(float(np.mean((scores[te] > t) == labels[te])))
        thrs.append(t)
    tar, thr = tar_at_far(scores, labels)
    return {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "fold_accuracies": accs, "thresholds": thrs, "threshold_mean": float(np.mean(thrs)),
            "auc": auc(scores, labels), "tar_at_far_1e-3": tar, "threshold_far_1e-3": thr}


def run(root, pairs_path, model, flip, models_dir, cache_dir):
    pairs, folds = read_pairs(pairs_path)
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    idx = {p: i for i, p in enumerate(images)}
    has, crops = face_cache(images, root, models_dir, cache_dir)
    emb = embeddings(model, has, crops, flip, cache_dir)
    ia = np.array([idx[a] for a, _, _ in pairs])
    ib = np.array([idx[b] for _, b, _ in pairs])
    labels = np.array([s for _, _, s in pairs])
    ok = has[ia] & has[ib]
    scores = np.where(ok, np.sum(emb[ia] * emb[ib], axis=1), -1.0)  # no face -> "different"
    res = evaluate(scores, labels, folds)
    res.update({"model": os.path.basename(model), "flip": flip, "images": len(images),
                "images_without_face": int((~has).sum()), "pairs_missing_face": int((~ok).sum()),
                "no_face_images": [images[i] for i in np.nonzero(~has)[0]]})
    return res, emb, has


def cmd_eval(a):
    model = a.model or os.path.join(a.models, "embed-fp32.onnx")
    res, _, _ = run(a.root, a.pairs, model, a.flip, a.models, a.cache)
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        for k in ("model", "flip", "accuracy_mean", "accuracy_std", "auc", "tar_at_far_1e-3", "threshold_mean",
                  "images", "images_without_face", "pairs_missing_face"):
            print(f"{k}: {res[k]}")
