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
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0f, y0f) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0f, y - y0f);
    let (x0, y0) = (x0f as i64, y0f as i64);
    let raw = img.as_raw();
    let tap = |xi: i64, yi: i64| -> [f32; 3] {
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
    let (a, b, c, d) = (tap(x0, y0), tap(x0 + 1, y0), tap(x0, y0 + 1), tap(x0 + 1, y0 + 1));
    let mut out = [0.0; 3];
    for k in 0..3 {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bottom = c[k] + (d[k] - c[k]) * fx;
        out[k] = top + (bottom - top) * fy;
    }
    out
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
    let plane = dw * dh;
    for v in 0..dh {
        let sy = half_pixel(v, y0, rh, dh);
        for u in 0..dw {
            let sx = half_pixel(u, x0, rw, dw);
            let px = sample_rgb(img, sx, sy, Border::Clamp);
            for (c, &src_c) in order.iter().enumerate() {
                out[c * plane + v * dw + u] = f(px[src_c]);
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
