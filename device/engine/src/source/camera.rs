//! V4L2 camera through nokhwa (feature `camera`). MJPEG and YUYV frames are decoded by the
//! engine's own decoders, so the camera path shares the image code the tests exercise.
//!
//! nokhwa's camera handle is not `Send` on every backend, so it lives on its own thread and
//! frames come through a one-slot channel (the newest frame wins).

use super::{CapturedFrame, FrameSource, SourceError};
use crate::image_io::{decode_image, frame_to_rgb, PixelFormat};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
use nokhwa::Camera;
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

pub struct CameraSource {
    frames: Receiver<Result<CapturedFrame, SourceError>>,
}

impl CameraSource {
    /// Opens camera `index` at its highest frame rate.
    pub fn open(index: u32) -> Result<CameraSource, SourceError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("camera-{index}"))
            .spawn(move || {
                let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
                let mut camera = match Camera::new(CameraIndex::Index(index), format)
                    .and_then(|mut c| c.open_stream().map(|()| c))
                {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(SourceError::Camera(format!("camera {index}: {e}"))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let started = Instant::now();
                for n in 0u64.. {
                    let item = camera.frame().map_err(|e| SourceError::Camera(e.to_string())).and_then(|buf| {
                        let res = buf.resolution();
                        let image = match buf.source_frame_format() {
                            FrameFormat::MJPEG => decode_image(buf.buffer()),
                            FrameFormat::YUYV => {
                                frame_to_rgb(buf.buffer(), res.width(), res.height(), PixelFormat::Yuyv)
                            }
                            FrameFormat::GRAY => {
                                frame_to_rgb(buf.buffer(), res.width(), res.height(), PixelFormat::Grey8)
                            }
                            FrameFormat::RAWRGB => {
                                frame_to_rgb(buf.buffer(), res.width(), res.height(), PixelFormat::Rgb8)
                            }
                            other => return Err(SourceError::Camera(format!("unsupported camera format {other:?}"))),
                        }
                        .map_err(|e| SourceError::Camera(e.to_string()))?;
                        Ok(CapturedFrame {
                            index: n,
                            at: started.elapsed(),
                            captured: Instant::now(),
                            image,
                            label: format!("camera {index}"),
                        })
                    });
                    match tx.try_send(item) {
                        Ok(()) | Err(mpsc::TrySendError::Full(_)) => {}
                        Err(mpsc::TrySendError::Disconnected(_)) => return,
                    }
                }
            })
            .map_err(|e| SourceError::Camera(format!("cannot start camera thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(CameraSource { frames: rx }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SourceError::Camera(format!("camera {index} thread died"))),
        }
    }
}

impl FrameSource for CameraSource {
    fn next_frame(&mut self) -> Result<Option<CapturedFrame>, SourceError> {
        match self.frames.recv() {
            Ok(item) => item.map(Some),
            Err(_) => Ok(None),
        }
    }

    fn is_live(&self) -> bool {
        true
    }
}
