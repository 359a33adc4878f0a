//! Stored images: every upload is checked against the pixel budget from its header, decoded
//! and rendered at each size code of its kind on an image worker (a bounded budget on the
//! blocking pool, `service/blocking.rs`) and written as `<kind>/<name>.png` and
//! `<kind>/<name>_<code>.png`, under `opencredit.media_root` or, when `opencredit.s3.bucket` is set, in an S3-compatible bucket
//! ([`MediaStore`]); `GET /v1.1/media/<kind>/<file>` serves them from either.
//!
//! Names are random and never reused (a new upload gets a new name), so the files can be cached
//! by anyone forever.

use accolade_opencredit::images::{self, ImageKind, Limits};
use axum::extract::{Path as UrlPath, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::envelope::OcError;
use super::media_store::MediaStore;
use super::params::Params;
use crate::service::blocking::{Budget, Refused};
use crate::state::AppState;

fn folder(kind: ImageKind) -> &'static str {
    match kind {
        ImageKind::Badge => "badges",
        ImageKind::Avatar => "avatars",
    }
}

/// The upload in `field`: a multipart file part, or a base64 string (with or without a
/// `data:` prefix). `None` when the field is absent or empty.
pub fn upload(params: &Params, field: &str, limits: Limits) -> Result<Option<Vec<u8>>, OcError> {
    if let Some(file) = params.file(field) {
        return Ok(Some(file.to_vec()));
    }
    match params.non_empty(field) {
        None => Ok(None),
        Some(text) => images::from_base64(text, limits)
            .map(Some)
            .map_err(|e| OcError::field(field, image_status(&e), e.to_string())),
    }
}

fn image_status(e: &images::ImageError) -> &'static str {
    match e {
        images::ImageError::TooLarge { .. } | images::ImageError::TooManyPixels { .. } => {
            "IMAGE_TOO_LARGE"
        }
        images::ImageError::NotAnImage => "NOT_AN_IMAGE",
        images::ImageError::BadBase64(_) => "INVALID_BASE64",
        images::ImageError::Corrupt(_) => "CORRUPT_IMAGE",
    }
}

/// Decodes, renders and stores an upload; returns the stored name.
///
/// The header is checked first, here on the runtime (cheap: no pixel is decoded), so an upload
/// over the pixel budget is refused without waiting for a worker. Decoding and rendering run on
/// an image worker ([`Budget`]): a full queue is answered 503 `IMAGE_QUEUE_FULL` at once, and
/// when the request ends early (client gone, 408) the work stops at its next stage.
pub async fn store(
    images_budget: &Budget,
    media: &MediaStore,
    kind: ImageKind,
    bytes: Vec<u8>,
    limits: Limits,
    field: &str,
) -> Result<String, OcError> {
    let refused = |e: images::ImageError| OcError::field(field, image_status(&e), e.to_string());
    let header = images::inspect(&bytes, limits).map_err(refused)?;
    let prepared = images_budget
        .run(move |cancel| images::prepare(&bytes, header, limits, kind, &|| cancel.is_cancelled()))
        .await
        .map_err(|e| match e {
            Refused::Busy => busy(),
            Refused::Failed => OcError::internal("decoding an image failed"),
        })?
        .map_err(refused)?
        // Stopped only once the request is gone; nobody reads this answer.
        .ok_or_else(|| OcError::internal("image processing stopped"))?;
    let name = format!("{}{}", &folder(kind)[..1], uuid::Uuid::new_v4().simple());
    let files = std::iter::once((String::new(), prepared.original)).chain(
        prepared
            .sizes
            .into_iter()
            .map(|r| (format!("_{}", r.code), r.png)),
    );
    for (suffix, png) in files {
        media
            .put(&format!("{}/{name}{suffix}.png", folder(kind)), png)
            .await
            .map_err(OcError::internal)?;
    }
    Ok(name)
}

/// Every image worker is busy and the queue is full.
fn busy() -> OcError {
    let mut e = OcError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "IMAGE_QUEUE_FULL",
        "too many images are being processed; try again shortly",
    );
    e.retry_after = Some(1);
    e
}

/// The public URL of a stored image (without a size code).
pub fn url(base: &str, kind: ImageKind, name: &str) -> String {
    format!("{base}/v1.1/media/{}/{name}.png", folder(kind))
}

/// Whether `file` is a name this module writes: `<letter><32 hex>[_<code>].png`.
fn valid_file(kind: ImageKind, file: &str) -> Option<String> {
    let stem = file.strip_suffix(".png")?;
    let (name, code) = match stem.split_once('_') {
        Some((n, c)) => (n, Some(c.parse::<u8>().ok()?)),
        None => (stem, None),
    };
    let ok_name = name.len() == 33
        && name.starts_with(&folder(kind)[..1])
        && name[1..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !ok_name || code.is_some_and(|c| kind.side(c).is_none()) {
        return None;
    }
    Some(format!("{}/{file}", folder(kind)))
}

pub async fn serve(
    State(state): State<AppState>,
    UrlPath((kind, file)): UrlPath<(String, String)>,
) -> Response {
    let kind = match kind.as_str() {
        "badges" => ImageKind::Badge,
        "avatars" => ImageKind::Avatar,
        _ => return OcError::not_found("image").into_response(),
    };
    let Some(relative) = valid_file(kind, &file) else {
        return OcError::not_found("image").into_response();
    };
    match state.opencredit.media.get(&relative).await {
        Ok(Some(data)) => {
            let mut r = data.into_response();
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
            r.headers_mut().insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            r
        }
        Ok(None) => OcError::not_found("image").into_response(),
        Err(e) => OcError::internal(format!("reading image {relative}: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_generated_names_are_served() {
        let name = format!("b{}", "0123456789abcdef0123456789abcdef");
        assert!(valid_file(ImageKind::Badge, &format!("{name}.png")).is_some());
        assert!(valid_file(ImageKind::Badge, &format!("{name}_17.png")).is_some());
        assert!(
            valid_file(ImageKind::Badge, &format!("{name}_19.png")).is_none(),
            "no badge _19"
        );
        assert!(valid_file(ImageKind::Badge, &format!("{name}_2.png")).is_none());
        assert!(
            valid_file(ImageKind::Avatar, &format!("{name}.png")).is_none(),
            "wrong kind letter"
        );
        assert!(valid_file(ImageKind::Badge, "../../etc/passwd").is_none());
        assert!(valid_file(ImageKind::Badge, &format!("{}.png", &name[..20])).is_none());
        assert!(valid_file(ImageKind::Badge, &format!("{}.png", name.to_uppercase())).is_none());
    }
}
