//! Reading the QR code in a photo someone uploads (`POST /rest/v1/scanqr`), within
//! bounds a stranger cannot push this process past: the body's size, the image's
//! dimensions and the decoder's allocation (checked from the header, before any
//! pixel is decoded), and the number of decodes running at once.
//!
//! It must never decode an image whose header it has not checked: a 286 KB PNG
//! can claim 17000x17000 pixels and cost 290 MB and seconds of CPU.

use std::io::Cursor;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use image::{ImageError, ImageReader, Limits};
use tokio::sync::Semaphore;

/// Largest photo body read: a phone camera's JPEG (a few MB at 4000x3000) fits.
pub const PHOTO_MAX_BYTES: usize = 10 * 1024 * 1024;

/// Widest and tallest image decoded.
const MAX_SIDE: u32 = 8192;

/// Most bytes the decoder may allocate: a 4000x3000 colour photo takes 36 MB
/// decoded, leaving room for the decoder's own buffers; 8000x8000 RGBA (256 MB)
/// is refused.
const MAX_DECODE_BYTES: u64 = 96 * 1024 * 1024;

/// Longest side kept for finding the QR code: a phone photo has far more pixels
/// than that needs.
const SCAN_SIDE: u32 = 1600;

/// At most two photos decode at a time in this process (each takes a core and
/// up to `MAX_DECODE_BYTES`); a third waits for its turn at most 3 s.
static DECODERS: LazyLock<Decoders> = LazyLock::new(|| Decoders::new(2, Duration::from_secs(3)));

/// What a client hears when every decoder stayed busy for the whole wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Why a photo was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("send a photo as the request body")]
    Empty,
    #[error("the photo is larger than {} MB", PHOTO_MAX_BYTES / (1024 * 1024))]
    TooManyBytes,
    #[error("the photo is not a PNG, JPEG or WebP image")]
    Unreadable,
    #[error("the photo is too large: send at most {MAX_SIDE} pixels a side and 24 megapixels")]
    TooManyPixels,
    #[error("no QR code found in the photo")]
    NoQrCode,
    #[error("busy reading other photos, retry in {} s", retry_after.as_secs())]
    Busy { retry_after: Duration },
}

impl PhotoError {
    /// The HTTP status to answer with: 400 or 413 for the photo's fault, 503 when
    /// busy.
    pub fn status(&self) -> StatusCode {
        match self {
            PhotoError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PhotoError::TooManyBytes => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Seconds for a `Retry-After` header, when retrying later may succeed.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            PhotoError::Busy { retry_after } => Some(retry_after.as_secs().max(1)),
            _ => None,
        }
    }
}

/// The text of the first QR code found in the photo (PNG, JPEG or WebP), decoded
/// on a blocking thread once one of this process's decoders is free.
pub async fn read_qr_code(photo: Bytes) -> Result<String, PhotoError> {
    if photo.is_empty() {
        return Err(PhotoError::Empty);
    }
    // The header alone refuses what is too large, without taking a decoder's turn.
    check_dimensions(&photo)?;
    DECODERS.run(move || read_qr(&photo)).await?
}

/// A bounded number of decoders: work beyond them waits for a permit, at most
/// `wait`, and is refused after.
pub struct Decoders {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Decoders {
    pub fn new(permits: usize, wait: Duration) -> Self {
        Decoders {
            permits: Arc::new(Semaphore::new(permits)),
            wait,
        }
    }

    /// Runs `decode` on a blocking thread once a permit is free, or answers
    /// [`PhotoError::Busy`] after waiting `wait` for one. The permit goes with
    /// the thread: a caller that stops waiting does not free a decoder still busy.
    pub async fn run<T, F>(&self, decode: F) -> Result<T, PhotoError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) | Err(_) => {
                    return Err(PhotoError::Busy {
                        retry_after: RETRY_AFTER,
                    })
                }
            };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            decode()
        })
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "a photo decoder failed");
            PhotoError::Unreadable
        })
    }
}

/// What the decoder may do: checked against the image's header before it
/// decodes a pixel.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

fn reader(photo: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, PhotoError> {
    let mut reader = ImageReader::new(Cursor::new(photo))
        .with_guessed_format()
        .map_err(|_| PhotoError::Unreadable)?;
    reader.limits(limits());
    Ok(reader)
}

fn decode_error(err: ImageError) -> PhotoError {
    match err {
        ImageError::Limits(_) => PhotoError::TooManyPixels,
        _ => PhotoError::Unreadable,
    }
}

/// Reads the image's header only: refuses an unknown format or a side over
/// `MAX_SIDE`.
fn check_dimensions(photo: &[u8]) -> Result<(), PhotoError> {
    let (width, height) = reader(photo)?.into_dimensions().map_err(decode_error)?;
    if width.max(height) > MAX_SIDE {
        return Err(PhotoError::TooManyPixels);
    }
    Ok(())
}

/// The text of the first QR code found in the photo.
fn read_qr(photo: &[u8]) -> Result<String, PhotoError> {
    let image = reader(photo)?.decode().map_err(decode_error)?;
    let image = if image.width().max(image.height()) > SCAN_SIDE {
        image.thumbnail(SCAN_SIDE, SCAN_SIDE)
    } else {
        image
    };
    let grey = image.to_luma8();
    drop(image);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        grey.width() as usize,
        grey.height() as usize,
        |x, y| grey.get_pixel(x as u32, y as u32).0[0],
    );
    prepared
        .detect_grids()
        .iter()
        .find_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .ok_or(PhotoError::NoQrCode)
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    /// Counts the bytes allocated by each thread, to see what a decode costs.
    struct CountingAllocator;

    thread_local! {
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static PEAK: Cell<usize> = const { Cell::new(0) };
    }

    // SAFETY: forwards every call to the system allocator unchanged.
    unsafe impl GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = LIVE.try_with(|live| {
                live.set(live.get() + layout.size());
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
            });
            System.alloc(layout)
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(layout.size())));
            System.dealloc(ptr, layout)
        }
    }

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;

    /// The most bytes this thread held at once while running `work`, beyond what
    /// it held before.
    fn peak_allocation<T>(work: impl FnOnce() -> T) -> (T, usize) {
        let before = LIVE.with(Cell::get);
        PEAK.with(|peak| peak.set(before));
        let value = work();
        (value, PEAK.with(Cell::get) - before)
    }

    /// A white PNG of `side` x `side` pixels, compressed as far as it goes: 17000
    /// a side in grey makes the 286 KB file that once cost 290 MB to read.
    fn white_png(side: u32, color: png::ColorType) -> Vec<u8> {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, side, side);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::High);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![255u8; side as usize * color.samples()];
        for _ in 0..side {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
        writer.finish().unwrap();
        png
    }

    #[test]
    fn a_png_claiming_17000_pixels_a_side_is_refused_from_its_header() {
        let png = white_png(17_000, png::ColorType::Grayscale);
        assert!(png.len() < 1024 * 1024, "{} bytes", png.len());

        let started = Instant::now();
        let (checked, header_bytes) = peak_allocation(|| check_dimensions(&png));
        assert_eq!(checked, Err(PhotoError::TooManyPixels));
        // Even past the header check, the decoder refuses it before allocating.
        let (read, decode_bytes) = peak_allocation(|| read_qr(&png));
        assert_eq!(read, Err(PhotoError::TooManyPixels));
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert!(
            header_bytes < 2 * 1024 * 1024,
            "header check held {header_bytes} bytes"
        );
        assert!(
            decode_bytes < 2 * 1024 * 1024,
            "decode held {decode_bytes} bytes"
        );
    }

    #[test]
    fn allocation_is_bounded_and_a_phone_photo_fits() {
        // Under the side limit but past the allocation limit (256 MB decoded):
        // refused before allocating.
        let rgba = white_png(8000, png::ColorType::Rgba);
        assert_eq!(check_dimensions(&rgba), Ok(()));
        let (read, bytes) = peak_allocation(|| read_qr(&rgba));
        assert_eq!(read, Err(PhotoError::TooManyPixels));
        assert!(bytes < 2 * 1024 * 1024, "{bytes} bytes");
        // A blank 4000x3000 photo decodes (and has no QR code).
        let blank = image::RgbImage::from_pixel(4000, 3000, image::Rgb([200, 200, 200]));
        let mut jpeg = Vec::new();
        blank
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(check_dimensions(&jpeg), Ok(()));
        assert_eq!(read_qr(&jpeg), Err(PhotoError::NoQrCode));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_than_two_decodes_run_at_once() {
        let decoders = Arc::new(Decoders::new(2, Duration::from_secs(30)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut requests = Vec::new();
        for _ in 0..6 {
            let (decoders, running, most) = (decoders.clone(), running.clone(), most.clone());
            requests.push(tokio::spawn(async move {
                decoders
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(150));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        for request in requests {
            assert_eq!(request.await.unwrap(), Ok(()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_third_decode_waits_its_bound_then_answers_503_with_retry_after() {
        let decoders = Arc::new(Decoders::new(2, Duration::from_millis(200)));
        let mut busy = Vec::new();
        for _ in 0..2 {
            let decoders = decoders.clone();
            busy.push(tokio::spawn(async move {
                decoders
                    .run(|| std::thread::sleep(Duration::from_millis(1500)))
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;

        let started = Instant::now();
        let refused = decoders.run(|| ()).await.unwrap_err();
        let waited = started.elapsed();
        assert!(matches!(refused, PhotoError::Busy { .. }), "{refused:?}");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.retry_after(), Some(2));
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_millis(1000),
            "{waited:?}"
        );

        for done in busy {
            assert_eq!(done.await.unwrap(), Ok(()));
        }
        assert_eq!(decoders.run(|| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_caller_that_stops_waiting_does_not_free_a_decoder_still_busy() {
        let decoders = Decoders::new(1, Duration::from_secs(5));
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            decoders.run(|| std::thread::sleep(Duration::from_millis(400))),
        )
        .await;
        assert!(abandoned.is_err(), "the caller gave up");

        let started = Instant::now();
        assert_eq!(decoders.run(|| 7).await, Ok(7));
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "the next decode waited for the abandoned one: {:?}",
            started.elapsed()
        );
    }
}
