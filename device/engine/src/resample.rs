//! Bilinear sampling shared by the detector resize, the landmark crop and the alignment warp.
//!
//! Pixel centres sit at integer coordinates. Two border policies exist because the reference
//! pipeline uses both: resizes clamp to the edge (like `cv2.resize`), the alignment warp
//! treats outside taps as black (like `cv2.warpAffine` with a constant border).

use image::RgbImage;

/// How taps outside the image are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    Clamp,
    Zero,
}

/// Samples the RGB image at continuous `(x, y)`.
#[inline]
pub fn sample_rgb(img: &RgbImage, x: f32, y: f32, border: Border) -> [f32; 3] {
    let (w, h) = (img.width() as isize, img.height() as isize);
    let (x0f, y0f) = (floor(x), floor(y));
    let (fx, fy) = (x - x0f, y - y0f);
    // `as` saturates (and maps NaN to 0), so far-away coordinates stay far away.
    let (x0, y0) = (x0f as isize, y0f as isize);
    let raw = img.as_raw();
    if x0 >= 0 && y0 >= 0 && x0 < w - 1 && y0 < h - 1 {
        // All four taps inside: the common case, no border logic.
        let i = ((y0 * w + x0) * 3) as usize;
        let j = i + (w * 3) as usize;
        return lerp2(&raw[i..i + 6], &raw[j..j + 6], fx, fy);
    }
    let tap = |xi: isize, yi: isize| -> [f32; 3] {
        let (xi, yi) = match border {
            Border::Clamp => (xi.clamp(0, w - 1), yi.clamp(0, h - 1)),
            Border::Zero => {
                if xi < 0 || yi < 0 || xi >= w || yi >= h {
                    return [0.0; 3];
                }
                (xi, yi)
            }
        };
        let i = ((yi * w + xi) * 3) as usize;
        [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
    };
    let (a, b) = (tap(x0, y0), tap(x0.saturating_add(1), y0));
    let (c, d) = (tap(x0, y0.saturating_add(1)), tap(x0.saturating_add(1), y0.saturating_add(1)));
    let mut out = [0.0; 3];
    for k in 0..3 {
        out[k] = lerp(a[k], b[k], c[k], d[k], fx, fy);
    }
    out
}

/// `x.floor()`, inlined: x86-64's baseline (SSE2) has no rounding instruction, so `floor` is
/// a libm call, which made the per-pixel loops several times slower. Exact for |x| < 2^23
/// (every float there with a fraction); larger values and NaN go to `floor`.
#[inline(always)]
pub fn floor(x: f32) -> f32 {
    if x.abs() < 8_388_608.0 {
        let t = x as i32 as f32;
        if t > x {
            t - 1.0
        } else {
            t
        }
    } else {
        x.floor()
    }
}

/// Bilinear blend of the four taps (`a` top-left, `b` top-right, `c`, `d` below them).
#[inline(always)]
fn lerp(a: f32, b: f32, c: f32, d: f32, fx: f32, fy: f32) -> f32 {
    let top = a + (b - a) * fx;
    let bottom = c + (d - c) * fx;
    top + (bottom - top) * fy
}

/// [`lerp`] on two horizontally adjacent RGB pixels of two rows (`top`, `bottom`: 6 bytes each).
#[inline(always)]
fn lerp2(top: &[u8], bottom: &[u8], fx: f32, fy: f32) -> [f32; 3] {
    let f = |v: &[u8], k: usize| v[k] as f32;
    [0, 1, 2].map(|k| lerp(f(top, k), f(top, k + 3), f(bottom, k), f(bottom, k + 3), fx, fy))
}

/// Source coordinate of destination pixel `i` when `src_len` pixels map onto `dst_len`
/// (half-pixel centres, as `cv2.resize` with `INTER_LINEAR`).
#[inline]
pub fn half_pixel(i: usize, src_origin: f32, src_len: f32, dst_len: usize) -> f32 {
    src_origin + (i as f32 + 0.5) * src_len / dst_len as f32 - 0.5
}

/// Resizes the region `[x0, x0 + rw) x [y0, y0 + rh)` of `img` to `dw x dh`, writing planar
/// float RGB (`out[c][y][x]`), edge-clamped. `f` maps each raw value (0..255) to the network input.
#[allow(clippy::too_many_arguments)]
pub fn resize_region_planar(
    img: &RgbImage,
    (x0, y0, rw, rh): (f32, f32, f32, f32),
    dw: usize,
    dh: usize,
    order: [usize; 3],
    f: impl Fn(f32) -> f32,
    out: &mut [f32],
) {
    debug_assert_eq!(out.len(), 3 * dw * dh);
    let (w, h) = (img.width() as isize, img.height() as isize);
    if w == 0 || h == 0 {
        return;
    }
    // Per destination column and row: the two clamped source indices and the blend weight,
    // computed once instead of per pixel (same arithmetic as `sample_rgb` with `Clamp`).
    let taps = |n: usize, origin: f32, len: f32, limit: isize| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|i| {
                let s = half_pixel(i, origin, len, n);
                let f = floor(s);
                let i0 = f as isize;
                let clamp = |v: isize| v.clamp(0, limit - 1) as usize;
                (clamp(i0), clamp(i0.saturating_add(1)), s - f)
            })
            .collect()
    };
    let cols = taps(dw, x0, rw, w);
    let rows = taps(dh, y0, rh, h);
    let raw = img.as_raw();
    let stride = w as usize * 3;
    let plane = dw * dh;
    for (v, &(ya, yb, fy)) in rows.iter().enumerate() {
        let (top, bottom) = (&raw[ya * stride..][..stride], &raw[yb * stride..][..stride]);
        for (u, &(xa, xb, fx)) in cols.iter().enumerate() {
            for (c, &k) in order.iter().enumerate() {
                let px = lerp(
                    top[xa * 3 + k] as f32,
                    top[xb * 3 + k] as f32,
                    bottom[xa * 3 + k] as f32,
                    bottom[xb * 3 + k] as f32,
                    fx,
                    fy,
                );
                out[c * plane + v * dw + u] = f(px);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 10) as u8, (y * 10) as u8, 7]))
    }

    #[test]
    fn fast_floor_matches_floor() {
        let cases = [0.0f32, -0.0, 0.5, -0.5, 1.0, -1.0, 1e-7, -1e-7, 2.999_999, -2.000_001, 8_388_607.5, -8_388_607.5];
        for x in cases.into_iter().chain((-2000..2000).map(|i| i as f32 * 0.137)) {
            assert_eq!(floor(x), x.floor(), "{x}");
        }
        for x in [1e9f32, -1e9, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(floor(x), x.floor());
        }
        assert!(floor(f32::NAN).is_nan());
    }

    #[test]
    fn integer_positions_return_the_pixel() {
        let img = ramp(5, 4);
        assert_eq!(sample_rgb(&img, 3.0, 2.0, Border::Zero), [30.0, 20.0, 7.0]);
    }

    #[test]
    fn midpoints_interpolate_linearly() {
        let img = ramp(5, 4);
        let p = sample_rgb(&img, 1.5, 2.25, Border::Clamp);
        assert!((p[0] - 15.0).abs() < 1e-4 && (p[1] - 22.5).abs() < 1e-4);
    }

    #[test]
    fn borders_clamp_or_fade_to_black() {
        let img = RgbImage::from_pixel(3, 3, image::Rgb([100, 100, 100]));
        assert_eq!(sample_rgb(&img, -0.5, 1.0, Border::Clamp)[0], 100.0);
        assert!((sample_rgb(&img, -0.5, 1.0, Border::Zero)[0] - 50.0).abs() < 1e-4);
        assert_eq!(sample_rgb(&img, -5.0, -5.0, Border::Zero), [0.0; 3]);
    }

    #[test]
    fn halving_resize_averages_pixel_pairs() {
        let img = ramp(8, 2);
        let mut out = vec![0.0; 3 * 4];
        resize_region_planar(&img, (0.0, 0.0, 8.0, 2.0), 4, 1, [0, 1, 2], |x| x, &mut out);
        // Destination pixel 0 samples x = 0.5: between 0 and 10.
        assert_eq!(&out[..4], &[5.0, 25.0, 45.0, 65.0]);
        // Blue plane is constant.
        assert!(out[8..].iter().all(|&b| b == 7.0));
    }
}
