//! Uploaded images (seed 001, "Images"): decoding within limits and the size codes.
//!
//! Every endpoint that takes an image accepts multipart bytes or a base64 string; both end up in
//! [`decode`]. The upload is refused before any pixel is decoded when it is too large in bytes,
//! not an image of an accepted format, or larger in pixels than `max_side` (a decompression bomb
//! declares huge dimensions in a few bytes). Decoding then runs under an allocation limit as a
//! second guard. [`render`] produces one square PNG per size code of the seed's tables.

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageFormat, ImageReader};

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

/// Limits for uploads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest upload in bytes (after base64 decoding).
    pub max_bytes: usize,
    /// Largest width or height in pixels.
    pub max_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 2 * 1024 * 1024,
            max_side: 4096,
        }
    }
}

/// Why an upload was refused; `code()` is the API's stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the image is {size} bytes; at most {max} are accepted")]
    TooLarge { size: usize, max: usize },
    #[error("the image is {width}x{height} pixels; at most {max}x{max} are accepted")]
    TooManyPixels { width: u32, height: u32, max: u32 },
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

/// Decodes an uploaded image within `limits`.
pub fn decode(bytes: &[u8], limits: Limits) -> Result<DynamicImage, ImageError> {
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
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".into()));
    }
    if width > limits.max_side || height > limits.max_side {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max: limits.max_side,
        });
    }
    let mut reader = reader();
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(limits.max_side);
    decode_limits.max_image_height = Some(limits.max_side);
    // RGBA at 16 bits per channel for the largest accepted image, plus the decoder's buffers.
    decode_limits.max_alloc = Some(u64::from(limits.max_side).pow(2) * 8 + (16 << 20));
    reader.limits(decode_limits);
    reader
        .decode()
        .map_err(|e| ImageError::Corrupt(e.to_string()))
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
    let mut out = Vec::new();
    // Writing into memory cannot fail for an image that decoded.
    let _ = image
        .to_rgba8()
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png);
    out
}

/// Renders every size code of `kind`: square, the image scaled to cover the square and
/// centred (a non-square upload is cropped rather than distorted).
pub fn render(image: &DynamicImage, kind: ImageKind) -> Vec<Rendered> {
    kind.sizes()
        .iter()
        .map(|&(code, side)| {
            let sized = image.resize_to_fill(side, side, image::imageops::FilterType::CatmullRom);
            Rendered {
                code,
                side,
                png: to_png(&sized),
            }
        })
        .collect()
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
            max_side: 4096,
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
        };
        assert_eq!(
            from_base64(&b64, small).unwrap_err().code(),
            "image_too_large"
        );
    }
}
