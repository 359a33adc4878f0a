//! Uploaded images (seed 001, "Images"): decoding within a pixel budget and the size codes.
//!
//! Every endpoint that takes an image accepts multipart bytes or a base64 string. [`inspect`]
//! refuses an upload before any pixel is decoded when it is too large in bytes, not an image of
//! an accepted format, or larger than the pixel budget by the dimensions its header declares (a
//! decompression bomb declares huge dimensions in a few bytes, and decoding costs memory and CPU
//! by pixels, not bytes). [`prepare`] then decodes under `image::Limits` from the same budget as a
//! second guard and renders one square PNG per size code of the seed's tables, in stages that
//! can be stopped in between when nobody waits for the result any more.

use std::io::Cursor;

use base64::Engine;
use image::{imageops, DynamicImage, ImageFormat, ImageReader, RgbaImage};

/// What an image is for; it selects the size-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    Badge,
    Avatar,
}

/// Badge image size codes and their square side in pixels (seed 001).
pub const BADGE_SIZES: [(u8, u32); 9] = [
    (1, 36),
    (3, 55),
    (5, 72),
    (7, 90),
    (9, 100),
    (11, 120),
    (13, 180),
    (15, 280),
    (17, 600),
];

/// Member avatar size codes and their square side in pixels (seed 001).
pub const AVATAR_SIZES: [(u8, u32); 10] = [
    (1, 28),
    (3, 40),
    (5, 55),
    (7, 60),
    (9, 70),
    (11, 80),
    (13, 120),
    (15, 138),
    (17, 140),
    (19, 170),
];

impl ImageKind {
    pub fn sizes(self) -> &'static [(u8, u32)] {
        match self {
            ImageKind::Badge => &BADGE_SIZES,
            ImageKind::Avatar => &AVATAR_SIZES,
        }
    }

    /// The side in pixels of a size code, if the code exists for this kind.
    pub fn side(self, code: u8) -> Option<u32> {
        self.sizes()
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, s)| *s)
    }
}

/// The default pixel budget: 2048 x 2048 pixels (4 MiP, 16 MiB once decoded to 8-bit RGBA).
///
/// An upload is only ever shown at its size codes, the largest 600 x 600, so the budget still
/// leaves more than three times that resolution on each side. Decoding cost grows with pixels,
/// not bytes: a 702-byte lossless WebP declaring 4096 x 4096 (16 MiP) took 2.3 s of CPU and about
/// 100 MB to decode and render; a quarter of that is what a badge image may cost.
pub const DEFAULT_MAX_PIXELS: u64 = 2048 * 2048;

/// What the decoder may allocate beyond the pixels, for its own buffers.
const DECODER_SCRATCH_BYTES: u64 = 16 << 20;

/// What reading a header may allocate (metadata such as an ICC profile, never pixels).
const HEADER_ALLOC_BYTES: u64 = 16 << 20;

/// Limits for uploads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest upload in bytes (after base64 decoding).
    pub max_bytes: usize,
    /// Largest width or height in pixels.
    pub max_side: u32,
    /// Largest width x height: the decoding budget, checked against the header.
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 2 * 1024 * 1024,
            max_side: 4096,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// Why an upload was refused; `code()` is the API's stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the image is {size} bytes; at most {max} are accepted")]
    TooLarge { size: usize, max: usize },
    #[error(
        "the image is {width}x{height} pixels; at most {max_pixels} pixels in all and \
         {max_side} on a side are accepted (scale it down before uploading)"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },
    #[error("the upload is not a PNG, JPEG, GIF or WebP image")]
    NotAnImage,
    #[error("the base64 string does not decode: {0}")]
    BadBase64(String),
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

impl ImageError {
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::TooLarge { .. } => "image_too_large",
            ImageError::TooManyPixels { .. } => "image_too_many_pixels",
            ImageError::NotAnImage => "not_an_image",
            ImageError::BadBase64(_) => "invalid_base64",
            ImageError::Corrupt(_) => "corrupt_image",
        }
    }
}

/// Decodes a base64 upload (standard alphabet, padding optional; a `data:image/...;base64,`
/// prefix and line breaks are tolerated because browsers and PHP clients produce them).
pub fn from_base64(text: &str, limits: Limits) -> Result<Vec<u8>, ImageError> {
    let body = match text.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => text,
    };
    // The decoded size is known before decoding: refuse oversized uploads without allocating.
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let decoded_len = compact.len() / 4 * 3;
    if decoded_len > limits.max_bytes + 3 {
        return Err(ImageError::TooLarge {
            size: decoded_len,
            max: limits.max_bytes,
        });
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(compact.as_bytes())
        .map_err(|e| ImageError::BadBase64(e.to_string()))
}

/// What an upload's header says, read without decoding a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl Header {
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Checks an upload against `limits` from its bytes and header alone: the size in bytes, the
/// format, and the dimensions the header declares against `max_side` and the pixel budget
/// `max_pixels`. Cheap (no pixel data is inflated), so it runs before an upload waits for a
/// decoding slot; a decompression bomb, which declares huge dimensions in a few bytes, ends here.
pub fn inspect(bytes: &[u8], limits: Limits) -> Result<Header, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| ImageError::NotAnImage)?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
    ) {
        return Err(ImageError::NotAnImage);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // No dimension limit here (the check below reports the real dimensions), but metadata
    // read on the way to them (an ICC profile, EXIF) is bounded.
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(HEADER_ALLOC_BYTES);
    reader.limits(header_limits);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".into()));
    }
    let header = Header {
        format,
        width,
        height,
    };
    if width > limits.max_side || height > limits.max_side || header.pixels() > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(header)
}

/// Decodes an upload that [`inspect`] accepted into 8-bit RGBA. The decoder runs under
/// `image::Limits` derived from the same budget (width, height, and an allocation cap of the
/// budget at 16-bit RGBA plus scratch), a second guard should a decoder disagree with its header.
pub fn decode_inspected(
    bytes: &[u8],
    header: Header,
    limits: Limits,
) -> Result<RgbaImage, ImageError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), header.format);
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(header.width);
    decode_limits.max_image_height = Some(header.height);
    decode_limits.max_alloc =
        Some(limits.max_pixels.min(header.pixels()) * 8 + DECODER_SCRATCH_BYTES);
    reader.limits(decode_limits);
    let decoded = reader
        .decode()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    // Once in 8 bits per channel, the decoder's own buffer (maybe 16-bit) is dropped.
    Ok(decoded.into_rgba8())
}

/// [`inspect`], then [`decode_inspected`].
pub fn decode(bytes: &[u8], limits: Limits) -> Result<DynamicImage, ImageError> {
    let header = inspect(bytes, limits)?;
    decode_inspected(bytes, header, limits).map(DynamicImage::ImageRgba8)
}

/// One rendered size: the code, its side in pixels and the PNG bytes.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub code: u8,
    pub side: u32,
    pub png: Vec<u8>,
}

/// Encodes a PNG of the image as it is (the file served without a size code).
pub fn to_png(image: &DynamicImage) -> Vec<u8> {
    match image {
        DynamicImage::ImageRgba8(rgba) => rgba_png(rgba),
        other => rgba_png(&other.to_rgba8()),
    }
}

fn rgba_png(image: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into memory cannot fail for an image that decoded.
    let _ = image.write_to(&mut Cursor::new(&mut out), ImageFormat::Png);
    out
}

/// The square of `side` covering `image`: its centred square, scaled (a non-square upload is
/// cropped rather than distorted).
///
/// A large image is first shrunk with a cheap box filter until its short side is twice `side`,
/// so the finer filter (Catmull-Rom) resamples a small image: this keeps both the time and the
/// filter's working buffer (32-bit floats, source width x `side`) small whatever the upload.
fn cover(image: &RgbaImage, side: u32) -> RgbaImage {
    let (width, height) = image.dimensions();
    let short = width.min(height);
    let shrunk;
    let image = if short > 2 * side {
        let scale = f64::from(2 * side) / f64::from(short);
        let fit = |n: u32| ((f64::from(n) * scale).round() as u32).max(2 * side);
        shrunk = imageops::thumbnail(image, fit(width), fit(height));
        &shrunk
    } else {
        image
    };
    let (width, height) = image.dimensions();
    let short = width.min(height);
    let cropped;
    let square = if width == height {
        image
    } else {
        let (x, y) = ((width - short) / 2, (height - short) / 2);
        cropped = imageops::crop_imm(image, x, y, short, short).to_image();
        &cropped
    };
    imageops::resize(square, side, side, imageops::FilterType::CatmullRom)
}

/// Renders every size code of `kind`, square and centred. Returns `None` as soon as `stop()`
/// says so (it is asked before each size).
///
/// The largest size is taken from the upload and the smaller ones from it, so a large upload is
/// resampled once, not once per size.
pub fn render_until(
    image: &RgbaImage,
    kind: ImageKind,
    stop: &dyn Fn() -> bool,
) -> Option<Vec<Rendered>> {
    let &(_, largest) = kind.sizes().iter().max_by_key(|(_, side)| *side)?;
    if stop() {
        return None;
    }
    let top = cover(image, largest);
    // An upload no larger than the largest size is scaled from itself at every size.
    let source = if image.width().min(image.height()) > largest {
        &top
    } else {
        image
    };
    let mut rendered = Vec::with_capacity(kind.sizes().len());
    for &(code, side) in kind.sizes() {
        if stop() {
            return None;
        }
        let png = if side == largest {
            rgba_png(&top)
        } else {
            rgba_png(&cover(source, side))
        };
        rendered.push(Rendered { code, side, png });
    }
    Some(rendered)
}

/// Renders every size code of `kind` (see [`render_until`]).
pub fn render(image: &DynamicImage, kind: ImageKind) -> Vec<Rendered> {
    let never = || false;
    match image {
        DynamicImage::ImageRgba8(rgba) => render_until(rgba, kind, &never),
        other => render_until(&other.to_rgba8(), kind, &never),
    }
    .unwrap_or_default()
}

/// The files stored for one upload.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The upload as decoded, re-encoded as PNG (the file without a size code).
    pub original: Vec<u8>,
    /// Every size code of the kind.
    pub sizes: Vec<Rendered>,
}

/// Decodes an upload [`inspect`] accepted and renders what is stored for it, in stages (decode,
/// the full-size PNG, each size code), asking `stop()` before each: `Ok(None)` when it said stop
/// (the request is gone, so nobody waits for the result). A stage itself is not interrupted; the
/// pixel budget bounds how long one takes.
pub fn prepare(
    bytes: &[u8],
    header: Header,
    limits: Limits,
    kind: ImageKind,
    stop: &dyn Fn() -> bool,
) -> Result<Option<Prepared>, ImageError> {
    if stop() {
        return Ok(None);
    }
    let image = decode_inspected(bytes, header, limits)?;
    if stop() {
        return Ok(None);
    }
    let original = rgba_png(&image);
    Ok(render_until(&image, kind, stop).map(|sizes| Prepared { original, sizes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
        }));
        to_png(&img)
    }

    #[test]
    fn every_size_code_has_its_pixel_size() {
        let img = decode(&png(640, 480), Limits::default()).unwrap();
        for kind in [ImageKind::Badge, ImageKind::Avatar] {
            let rendered = render(&img, kind);
            assert_eq!(rendered.len(), kind.sizes().len());
            for r in rendered {
                let back = image::load_from_memory_with_format(&r.png, ImageFormat::Png).unwrap();
                assert_eq!(
                    (back.width(), back.height()),
                    (r.side, r.side),
                    "{kind:?} _{}",
                    r.code
                );
                assert_eq!(kind.side(r.code), Some(r.side));
            }
        }
        assert_eq!(ImageKind::Badge.side(17), Some(600));
        assert_eq!(ImageKind::Badge.side(1), Some(36));
        assert_eq!(ImageKind::Avatar.side(19), Some(170));
        assert_eq!(ImageKind::Avatar.side(1), Some(28));
        assert_eq!(ImageKind::Badge.side(19), None);
        assert_eq!(ImageKind::Avatar.side(2), None);
    }

    #[test]
    fn non_images_are_refused() {
        assert_eq!(
            decode(b"GIF? no, plain text", Limits::default()).unwrap_err(),
            ImageError::NotAnImage
        );
        assert_eq!(
            decode(
                b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                Limits::default()
            )
            .unwrap_err(),
            ImageError::NotAnImage
        );
    }

    #[test]
    fn oversized_uploads_are_refused_before_decoding() {
        let limits = Limits {
            max_bytes: 1000,
            ..Limits::default()
        };
        let err = decode(&png(300, 300), limits).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // A valid PNG header declaring 100,000 x 100,000 pixels (40 GB of RGBA) in a few bytes.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode(&bomb, Limits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooManyPixels { .. } | ImageError::Corrupt(_)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_truncated_image_is_corrupt() {
        let data = png(64, 64);
        let err = decode(&data[..data.len() / 2], Limits::default()).unwrap_err();
        assert_eq!(err.code(), "corrupt_image");
    }

    #[test]
    fn base64_with_or_without_data_prefix() {
        let data = png(10, 10);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        assert_eq!(from_base64(&b64, Limits::default()).unwrap(), data);
        let prefixed = format!("data:image/png;base64,{b64}");
        assert_eq!(from_base64(&prefixed, Limits::default()).unwrap(), data);
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap().to_string() + "\n")
            .collect();
        assert_eq!(from_base64(&wrapped, Limits::default()).unwrap(), data);
        assert_eq!(
            from_base64("***", Limits::default()).unwrap_err().code(),
            "invalid_base64"
        );
        let small = Limits {
            max_bytes: 10,
            max_side: 10,
            max_pixels: 100,
        };
        assert_eq!(
            from_base64(&b64, small).unwrap_err().code(),
            "image_too_large"
        );
    }
    /// A lossless WebP (VP8L) header declaring `width` x `height`, followed by a few bytes that
    /// are no valid image data: anything that tried to decode it would fail as corrupt.
    fn webp_header_only(width: u32, height: u32) -> Vec<u8> {
        let bits = (width - 1) | (height - 1) << 14 | 1 << 28;
        let mut chunk = vec![0x2f];
        chunk.extend_from_slice(&bits.to_le_bytes());
        chunk.extend_from_slice(&[0xff; 16]);
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(4 + 8 + chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WEBPVP8L");
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(&chunk);
        out
    }

    #[test]
    fn an_image_over_the_pixel_budget_is_refused_from_its_header_without_decoding() {
        // 4096 x 4096 is within `max_side` but four times the default budget. The bytes after
        // the header are garbage, so the answer can only come from the header.
        let bomb = webp_header_only(4096, 4096);
        assert!(bomb.len() < 64);
        let err = inspect(&bomb, Limits::default()).unwrap_err();
        assert_eq!(
            err,
            ImageError::TooManyPixels {
                width: 4096,
                height: 4096,
                max_side: 4096,
                max_pixels: DEFAULT_MAX_PIXELS,
            }
        );
        assert_eq!(err.code(), "image_too_many_pixels");
        assert_eq!(decode(&bomb, Limits::default()).unwrap_err(), err);
        let stopped_before = prepare(
            &bomb,
            Header {
                format: ImageFormat::WebP,
                width: 4096,
                height: 4096,
            },
            Limits::default(),
            ImageKind::Badge,
            &|| true,
        );
        assert!(matches!(stopped_before, Ok(None)), "nothing decoded");
        // A PNG header declaring one pixel more than the budget, with its pixel data cut off.
        let mut truncated = png(2049, 2048);
        truncated.truncate(64);
        assert_eq!(
            inspect(&truncated, Limits::default()).unwrap_err().code(),
            "image_too_many_pixels"
        );
        // The same header within the budget passes inspection; decoding then finds it corrupt.
        let within = webp_header_only(2048, 2048);
        let header = inspect(&within, Limits::default()).unwrap();
        assert_eq!(
            (header.width, header.height, header.pixels()),
            (2048, 2048, DEFAULT_MAX_PIXELS)
        );
        assert_eq!(
            decode(&within, Limits::default()).unwrap_err().code(),
            "corrupt_image"
        );
    }

    #[test]
    fn an_image_within_the_pixel_budget_is_decoded_and_rendered() {
        let limits = Limits {
            max_pixels: 300 * 200,
            ..Limits::default()
        };
        let data = png(300, 200);
        let header = inspect(&data, limits).unwrap();
        assert_eq!(header.format, ImageFormat::Png);
        let prepared = prepare(&data, header, limits, ImageKind::Badge, &|| false)
            .unwrap()
            .expect("not stopped");
        let original = image::load_from_memory(&prepared.original).unwrap();
        assert_eq!((original.width(), original.height()), (300, 200));
        assert_eq!(prepared.sizes.len(), BADGE_SIZES.len());
        // One pixel more, in either direction, is over this budget.
        for (w, h) in [(301, 200), (300, 201)] {
            assert_eq!(
                decode(&png(w, h), limits).unwrap_err().code(),
                "image_too_many_pixels",
                "{w}x{h}"
            );
        }
        // The default budget takes a non-square image of 4 MiP whose long side is 4096.
        let wide = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            4096,
            1024,
            image::Rgba([10, 20, 30, 255]),
        ));
        let img = decode(&to_png(&wide), Limits::default()).unwrap();
        assert_eq!((img.width(), img.height()), (4096, 1024));
    }

    #[test]
    fn preparing_stops_between_stages_when_asked() {
        let data = png(700, 700);
        let header = inspect(&data, Limits::default()).unwrap();
        for allowed in 0..4 {
            let asked = std::cell::Cell::new(0);
            let stop = || {
                asked.set(asked.get() + 1);
                asked.get() > allowed
            };
            let got = prepare(&data, header, Limits::default(), ImageKind::Avatar, &stop).unwrap();
            assert!(got.is_none(), "stopped after {allowed} stages");
            assert_eq!(asked.get(), allowed + 1);
        }
        let all = prepare(&data, header, Limits::default(), ImageKind::Avatar, &|| {
            false
        })
        .unwrap()
        .unwrap();
        for r in &all.sizes {
            let back = image::load_from_memory(&r.png).unwrap();
            assert_eq!((back.width(), back.height()), (r.side, r.side));
        }
    }
}
