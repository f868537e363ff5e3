"""Image geometry helpers of the Facegate reference pipeline (numpy only).

Every function here is specified to the letter in models/reference/SPEC.md;
the Rust engine implements the same arithmetic and the conformance test
compares the two.
"""
import numpy as np

# ArcFace 112x112 five-point template (left eye, right eye, nose, mouth left, mouth right).
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


def _axis_taps(dst_size, src_size, scale, offset):
    """Clamped source coordinate taps for one axis: src = offset + (d + 0.5) * scale - 0.5."""
    s = offset + (np.arange(dst_size, dtype=np.float64) + 0.5) * scale - 0.5
    s = np.clip(s, 0.0, src_size - 1)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, src_size - 1)
    return i0, i1, s - i0


def resize_bilinear(img, out_w, out_h):
    """cv2.INTER_LINEAR-style resize (half-pixel centres, edge clamp, no antialias).

    img: HxW or HxWxC array (any dtype). Returns float64 out_h x out_w (x C), unrounded.
    """
    h, w = img.shape[:2]
    x0, x1, fx = _axis_taps(out_w, w, w / out_w, 0.0)
    y0, y1, fy = _axis_taps(out_h, h, h / out_h, 0.0)
    return _sample_sep(img.astype(np.float64), x0, x1, fx, y0, y1, fy)


def _sample_sep(img, x0, x1, fx, y0, y1, fy):
    if img.ndim == 3:
        fx = fx[None, :, None]
        fy = fy[:, None, None]
    else:
        fx = fx[None, :]
        fy = fy[:, None]
    top = img[y0][:, x0] * (1.0 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1.0 - fx) + img[y1][:, x1] * fx
    return top * (1.0 - fy) + bot * fy


def grey(rgb):
    """0.299 R + 0.587 G + 0.114 B as float64, not rounded."""
    f = rgb.astype(np.float64)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


LANDMARK_CROP_SIDE = 0.9
LANDMARK_CROP_SHIFT_DOWN = 0.1


def landmark_crop_geometry(box, side=LANDMARK_CROP_SIDE, shift_down=LANDMARK_CROP_SHIFT_DOWN):
    """Square landmark crop from a pixel box (x1, y1, x2, y2) -> (x0, y0, n), continuous.

    Side = 0.9 box heights, centred 0.1 box heights below the box centre (SPEC.md d; other
    values only for crop_sweep.py). Not rounded: rounding makes the landmarks jump when the box
    moves by a fraction of a pixel.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    h = max(y2 - y1, 1.0)
    n = side * h
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0 + shift_down * h
    return cx - n / 2.0, cy - n / 2.0, n


def landmark_input(grey_img, x0, y0, n, size=64):
    """Sample the size x size landmark input from the full grey image, edge clamp, /256."""
    h, w = grey_img.shape
    xa, xb, fx = _axis_taps(size, w, n / size, float(x0))
    ya, yb, fy = _axis_taps(size, h, n / size, float(y0))
    return _sample_sep(grey_img, xa, xb, fx, ya, yb, fy) / 256.0


def five_points(pts68):
    """68 (x, y) landmarks -> 5 points in ArcFace order."""
    p = np.asarray(pts68, dtype=np.float64).reshape(68, 2)
    return np.stack([
        p[36:42].mean(axis=0),
        p[42:48].mean(axis=0),
        p[30],
        p[48],
        p[54],
    ])


def umeyama(src, dst):
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst.

    Umeyama 1991 with reflection guard. Returns the 2x3 forward matrix M, dst ~ M @ [x, y, 1].
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    sd, dd = src - mu_s, dst - mu_d
    cov = dd.T @ sd / n
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    u, sv, vt = np.linalg.svd(cov)
    r = u @ np.diag(d) @ vt
    var_s = (sd ** 2).sum() / n
    scale = (sv * d).sum() / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - scale * (r @ mu_s)
    return m


def invert_affine(m):
    a = m[:, :2]
    ai = np.linalg.inv(a)
    out = np.zeros((2, 3))
    out[:, :2] = ai
    out[:, 2] = -ai @ m[:, 2]
    return out


def warp_affine(rgb, m, out_w=112, out_h=112):
    """Warp with forward matrix m (src -> dst), bilinear, BORDER_CONSTANT 0, uint8 output."""
    h, w = rgb.shape[:2]
    inv = invert_affine(m)
    u, v = np.meshgrid(np.arange(out_w, dtype=np.float64), np.arange(out_h, dtype=np.float64))
    sx = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    sy = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx = (sx - x0)[..., None]
    fy = (sy - y0)[..., None]
    img = rgb.astype(np.float64)

    def tap(yy, xx):
        ok = (xx >= 0) & (xx <= w - 1) & (yy >= 0) & (yy <= h - 1)
        v = img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
        return v * ok[..., None]

    top = tap(y0, x0) * (1.0 - fx) + tap(y0, x0 + 1) * fx
    bot = tap(y0 + 1, x0) * (1.0 - fx) + tap(y0 + 1, x0 + 1) * fx
    val = top * (1.0 - fy) + bot * fy
    return np.clip(np.floor(val + 0.5), 0, 255).astype(np.uint8)


def nms(boxes, scores, score_thr=0.7, iou_thr=0.3):
    """NMS with box blending on normalised or pixel boxes.

    The best remaining box claims every remaining box overlapping it by IoU > iou_thr; the
    cluster reports its score-weighted mean box and the best score. Returns [(box, score)],
    highest score first. Blending keeps the box continuous in the network output, so a near
    tie between two anchors cannot move it by pixels.
    """
    idx = np.nonzero(scores >= score_thr)[0]
    order = list(idx[np.argsort(-scores[idx], kind="stable")])
    taken = set()
    out = []
    for a, i in enumerate(order):
        if i in taken:
            continue
        bi = boxes[i]
        acc, wsum = np.zeros(4), 0.0
        for j in order[a:]:
            if j in taken:
                continue
            bj = boxes[j]
            iw = max(0.0, min(bi[2], bj[2]) - max(bi[0], bj[0]))
            ih = max(0.0, min(bi[3], bj[3]) - max(bi[1], bj[1]))
            inter = iw * ih
            union = (bi[2] - bi[0]) * (bi[3] - bi[1]) + (bj[2] - bj[0]) * (bj[3] - bj[1]) - inter
            if j == i or (union > 0 and inter / union > iou_thr):
                taken.add(j)
                acc += scores[j] * bj
                wsum += scores[j]
        out.append((acc / wsum, float(scores[i])))
    return out
