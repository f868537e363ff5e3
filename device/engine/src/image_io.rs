//! Decoding photos and converting camera frames to RGB8, with bounded memory.

use super::error::{EngineError, Result};
use image::{ImageDecoder, ImageReader, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// Largest accepted width or height. Bigger inputs are refused before any pixel is decoded,
/// so a forged 20000x20000 header cannot make us allocate gigabytes.
pub const MAX_SIDE: u32 = 8192;
/// Decoder working-memory cap (the output image counts towards it).
const MAX_ALLOC: u64 = 256 * 1024 * 1024;
/// The default size limit of a camera frame: 4K UHD (3840x2160). The engine works on a
/// 320x240 view and face crops, so more pixels buy little; decoding them costs a small board
/// its memory (an 8192x8192 frame took 243 MB).
pub const DEFAULT_MAX_FRAME_PIXELS: u64 = 3840 * 2160;

/// Reads and decodes an image file (JPEG, PNG, PGM/PPM, BMP), honouring EXIF orientation.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    load_frame(path, u64::from(MAX_SIDE) * u64::from(MAX_SIDE))
}

/// [`load_image`] for a frame: refused from its header when it has more than `max_pixels`.
pub fn load_frame(path: &Path, max_pixels: u64) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|error| EngineError::ImageIo { path: path.to_owned(), error })?;
    decode_frame(&bytes, max_pixels)
}

/// Decodes an encoded image held in memory. Grey, alpha and 16-bit inputs become RGB8.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage> {
    decode_frame(bytes, u64::from(MAX_SIDE) * u64::from(MAX_SIDE))
}

/// [`decode_image`], refusing from the header an image of more than `max_pixels`.
pub fn decode_frame(bytes: &[u8], max_pixels: u64) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(EngineError::UnreadableImage("empty file".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| EngineError::UnreadableImage(e.to_string()))?;
    match reader.format() {
        None => return Err(EngineError::UnreadableImage("unknown image format".into())),
        // The JPEG decoder fills a cut-off file with grey instead of failing; a photo with
        // its lower part missing must not be enrolled or judged.
        Some(image::ImageFormat::Jpeg) if !jpeg_reaches_end(bytes) => {
            return Err(EngineError::UnreadableImage("truncated JPEG (the file ends before its end marker)".into()))
        }
        Some(_) => {}
    }
    let mut decoder = reader.into_decoder().map_err(|e| EngineError::UnreadableImage(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(EngineError::ImageTooLarge { width, height, limit: MAX_SIDE });
    }
    if width == 0 || height == 0 {
        return Err(EngineError::UnreadableImage("image has no pixels".into()));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(EngineError::FrameTooLarge { width, height, max_pixels });
    }
    // The decoded buffer itself must fit the cap (an 8192x8192 RGBA or 16-bit image does not).
    if decoder.total_bytes() > MAX_ALLOC {
        return Err(EngineError::ImageTooLarge { width, height, limit: MAX_SIDE });
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    decoder.set_limits(limits).map_err(|e| EngineError::UnreadableImage(e.to_string()))?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    // Some malformed files make the JPEG decoder panic (found by fuzzing: zune-jpeg's upsampler
    // on chroma sampled finer than luma). A bad photo or camera frame must be an error, not a
    // dead capture thread.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| image::DynamicImage::from_decoder(decoder)))
        .map_err(|_| EngineError::UnreadableImage("malformed image data (the decoder gave up)".into()))?
        .map_err(|e| EngineError::UnreadableImage(e.to_string()))?;
    // RGB8 before rotating: the rotated copy is then 3 bytes a pixel, whatever the source depth.
    let mut img = image::DynamicImage::ImageRgb8(decoded.into_rgb8());
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// Whether a JPEG's main image runs to its end-of-image marker. Walks the marker segments
/// (skipping APPn blocks, which may hold a thumbnail with markers of its own) to the first
/// start-of-scan, then looks for EOI (0xFFD9) in the entropy-coded data, where a literal 0xFF
/// is always stuffed as 0xFF00 so EOI cannot appear by accident.
fn jpeg_reaches_end(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        while bytes.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else { return false };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD8 => {}
            0xDA => {
                // The first scan must carry data: a header followed at once by EOI would
                // decode as a blank grey image.
                let Some(len) = bytes.get(i..i + 2) else { return false };
                let data = (i + usize::from(u16::from_be_bytes([len[0], len[1]]))).min(bytes.len());
                return bytes[data..].windows(2).position(|w| w == [0xFF, 0xD9]).is_some_and(|p| p > 0);
            }
            _ => {
                let Some(len) = bytes.get(i..i + 2) else { return false };
                i += usize::from(u16::from_be_bytes([len[0], len[1]]));
            }
        }
    }
}

/// Pixel layouts a camera may hand us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb8,
    /// Packed 4:2:2, Y0 U Y1 V (V4L2 YUYV), BT.601 limited range.
    Yuyv,
    Grey8,
}

/// Converts a raw camera buffer to RGB8, checking its size against the declared geometry.
pub fn frame_to_rgb(data: &[u8], width: u32, height: u32, format: PixelFormat) -> Result<RgbImage> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(EngineError::BadFrame(format!("unsupported frame size {width}x{height}")));
    }
    let pixels = width as usize * height as usize;
    let expected = match format {
        PixelFormat::Rgb8 => pixels * 3,
        PixelFormat::Yuyv => {
            if !width.is_multiple_of(2) {
                return Err(EngineError::BadFrame("YUYV frame width must be even".into()));
            }
            pixels * 2
        }
        PixelFormat::Grey8 => pixels,
    };
    if data.len() != expected {
        return Err(EngineError::BadFrame(format!(
            "{format:?} {width}x{height} needs {expected} bytes, got {}",
            data.len()
        )));
    }
    let rgb = match format {
        PixelFormat::Rgb8 => data.to_vec(),
        PixelFormat::Grey8 => data.iter().flat_map(|&g| [g, g, g]).collect(),
        PixelFormat::Yuyv => {
            let mut out = Vec::with_capacity(pixels * 3);
            for quad in data.chunks_exact(4) {
                let (u, v) = (quad[1], quad[3]);
                out.extend_from_slice(&yuv_to_rgb(quad[0], u, v));
                out.extend_from_slice(&yuv_to_rgb(quad[2], u, v));
            }
            out
        }
    };
    RgbImage::from_raw(width, height, rgb).ok_or_else(|| EngineError::BadFrame("frame buffer size mismatch".into()))
}

/// BT.601 limited-range YCbCr to RGB, as V4L2 webcams deliver it.
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (y as f32 - 16.0) * 1.164;
    let d = u as f32 - 128.0;
    let e = v as f32 - 128.0;
    let clamp = |x: f32| x.round().clamp(0.0, 255.0) as u8;
    [clamp(c + 1.596 * e), clamp(c - 0.392 * d - 0.813 * e), clamp(c + 2.017 * d)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(img: &image::DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).expect("encode png");
        out
    }

    #[test]
    fn grey_alpha_and_16_bit_become_rgb8() {
        let grey = image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(4, 3, image::Luma([77])));
        let rgb = decode_image(&png_bytes(&grey)).expect("decode");
        assert_eq!(rgb.dimensions(), (4, 3));
        assert_eq!(rgb.get_pixel(1, 1).0, [77, 77, 77]);

        let rgba = image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(2, 2, image::Rgba([10, 20, 30, 0])));
        assert_eq!(decode_image(&png_bytes(&rgba)).expect("decode").get_pixel(0, 0).0, [10, 20, 30]);

        let deep =
            image::DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(2, 2, image::Rgb([65535u16, 0, 32896])));
        assert_eq!(decode_image(&png_bytes(&deep)).expect("decode").get_pixel(0, 0).0, [255, 0, 128]);
    }

    #[test]
    fn empty_truncated_and_unknown_inputs_are_clear_errors() {
        assert!(matches!(decode_image(&[]), Err(EngineError::UnreadableImage(_))));
        assert!(matches!(decode_image(b"hello, not an image"), Err(EngineError::UnreadableImage(_))));
        let img = image::DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])));
        let png = png_bytes(&img);
        for cut in [8, 20, png.len() / 2, png.len() - 5] {
            assert!(decode_image(&png[..cut]).is_err(), "truncated at {cut} must fail");
        }
    }

    #[test]
    fn truncated_jpeg_is_refused_complete_jpeg_decodes() {
        let img = image::DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 9])));
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).expect("encode jpeg");
        assert_eq!(decode_image(&jpeg).expect("complete jpeg").dimensions(), (64, 48));
        // Trailing bytes after the end marker (some cameras append data) are fine.
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"appended by a phone");
        assert!(decode_image(&trailing).is_ok());
        for cut in [jpeg.len() / 3, jpeg.len() - 2] {
            let err = decode_image(&jpeg[..cut]).expect_err("truncated");
            assert!(err.to_string().contains("truncated JPEG"), "{err}");
        }
        // Headers and an empty first scan, then the end marker: nothing to show.
        let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS marker");
        let sos_len = usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
        let mut empty = jpeg[..sos + 2 + sos_len].to_vec();
        empty.extend_from_slice(&[0xFF, 0xD9]);
        assert!(decode_image(&empty).is_err(), "a JPEG without scan data must not decode as grey");
    }

    #[test]
    fn a_jpeg_that_panics_the_decoder_is_an_error() {
        // Found by fuzzing (device/engine/fuzz): progressive, 3 components, chroma 2x2 over luma 1x1.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00];
        jpeg.extend_from_slice(&[1u8; 64]);
        jpeg.extend_from_slice(&[
            0xFF, 0xC2, 0x00, 0x11, 0x08, 0x00, 0x08, 0x00, 0x08, 0x03, 0x01, 0x11, 0x00, 0x02, 0x22, 0x00, 0x03, 0x11,
            0x00, 0xFF, 0xDA, 0x00, 0x0C, 0x03, 0x01, 0x00, 0x02, 0x10, 0x03, 0x10, 0x03, 0x3F, 0x10, 0xFF, 0xD9,
        ]);
        assert_eq!(jpeg.len(), 106);
        assert!(matches!(decode_image(&jpeg), Err(EngineError::UnreadableImage(_))));
    }

    #[test]
    fn a_decoded_buffer_beyond_the_cap_is_refused() {
        // 8192x8192 16-bit RGB would take 402 MB before conversion: refused from the header.
        let mut ppm = b"P6\n8192 8192\n65535\n".to_vec();
        ppm.extend_from_slice(&[0u8; 64]);
        assert!(matches!(decode_image(&ppm), Err(EngineError::ImageTooLarge { .. })));
    }

    #[test]
    fn huge_header_is_refused_before_allocation() {
        // A 20000x20000 binary PPM header with almost no pixel data.
        let mut ppm = b"P6\n20000 20000\n255\n".to_vec();
        ppm.extend_from_slice(&[0u8; 16]);
        assert!(matches!(decode_image(&ppm), Err(EngineError::ImageTooLarge { width: 20000, .. })));
    }

    #[test]
    fn yuyv_and_grey_frames_convert() {
        // Mid-grey in limited range: Y=126, U=V=128 -> about 128.
        let rgb = frame_to_rgb(&[126, 128, 126, 128], 2, 1, PixelFormat::Yuyv).expect("yuyv");
        for p in rgb.pixels() {
            for c in p.0 {
                assert!((c as i32 - 128).abs() <= 1, "{c}");
            }
        }
        let grey = frame_to_rgb(&[0, 255], 2, 1, PixelFormat::Grey8).expect("grey");
        assert_eq!(grey.get_pixel(1, 0).0, [255, 255, 255]);
        assert!(frame_to_rgb(&[0; 5], 2, 1, PixelFormat::Yuyv).is_err());
        assert!(frame_to_rgb(&[0; 6], 3, 1, PixelFormat::Yuyv).is_err());
        assert!(frame_to_rgb(&[], 0, 0, PixelFormat::Rgb8).is_err());
    }

    #[test]
    fn a_frame_over_the_pixel_limit_is_refused_from_its_header() {
        let mut png = Vec::new();
        RgbImage::new(400, 300).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("encode");
        let err = decode_frame(&png, 100_000).expect_err("120,000 pixels over a 100,000 limit");
        assert!(matches!(err, EngineError::FrameTooLarge { width: 400, height: 300, max_pixels: 100_000 }));
        assert_eq!(
            err.to_string(),
            "frame too large: 400x300 is 0.1 megapixels, more than the 0.1 allowed (max_frame_pixels)"
        );
        assert_eq!(decode_frame(&png, 120_000).expect("at the limit").dimensions(), (400, 300));
    }
}
