//! Stored images: every upload is decoded within limits, rendered at each size code of its
//! kind and written under `opencredit.media_root` as `<kind>/<name>.png` and
//! `<kind>/<name>_<code>.png`; `GET /v1.1/media/<kind>/<file>` serves them.
//!
//! Names are random and never reused (a new upload gets a new name), so the files can be cached
//! by anyone forever.

use std::path::{Path, PathBuf};

use accolade_opencredit::images::{self, ImageKind, Limits};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::envelope::OcError;
use super::params::Params;
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
pub async fn store(
    root: &Path,
    kind: ImageKind,
    bytes: Vec<u8>,
    limits: Limits,
    field: &str,
) -> Result<String, OcError> {
    let name = format!("{}{}", &folder(kind)[..1], uuid::Uuid::new_v4().simple());
    let dir = root.join(folder(kind));
    let field_name = field.to_string();
    let rendered = tokio::task::spawn_blocking(move || {
        let img = images::decode(&bytes, limits)
            .map_err(|e| OcError::field(&field_name, image_status(&e), e.to_string()))?;
        let mut files = vec![(String::new(), images::to_png(&img))];
        files.extend(
            images::render(&img, kind)
                .into_iter()
                .map(|r| (format!("_{}", r.code), r.png)),
        );
        Ok::<_, OcError>(files)
    })
    .await
    .map_err(OcError::internal)??;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(OcError::internal)?;
    for (suffix, png) in rendered {
        tokio::fs::write(dir.join(format!("{name}{suffix}.png")), png)
            .await
            .map_err(OcError::internal)?;
    }
    Ok(name)
}

/// The public URL of a stored image (without a size code).
pub fn url(base: &str, kind: ImageKind, name: &str) -> String {
    format!("{base}/v1.1/media/{}/{name}.png", folder(kind))
}

/// Whether `file` is a name this module writes: `<letter><32 hex>[_<code>].png`.
fn valid_file(kind: ImageKind, file: &str) -> Option<PathBuf> {
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
    Some(PathBuf::from(folder(kind)).join(file))
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
    match tokio::fs::read(state.config.opencredit.media_root.join(relative)).await {
        Ok(data) => {
            let mut r = Bytes::from(data).into_response();
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
            r.headers_mut().insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            r
        }
        Err(_) => OcError::not_found("image").into_response(),
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
