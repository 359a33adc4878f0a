//! Stored images: every upload is checked against the pixel budget from its header, decoded
//! and rendered at each size code of its kind on an image worker (a bounded budget on the
//! blocking pool, `service/blocking.rs`) and written as `<kind>/<name>.png` and
//! `<kind>/<name>_<code>.png`, under `opencredit.media_root` or, when `opencredit.s3.bucket` is set, in an S3-compatible bucket
//! ([`MediaStore`]); `GET /v1.1/media/<kind>/<file>` serves them from either.
//!
//! Names are random and never reused (a new upload gets a new name), so the files can be cached
//! by anyone forever.

use std::path::PathBuf;
use std::sync::Arc;

use accolade_opencredit::images::{self, ImageKind, Limits};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use object_store::ObjectStore;

use super::envelope::OcError;
use super::params::Params;
use crate::config::OpenCreditConfig;
use crate::service::blocking::{self, Budget, Refused};
use crate::state::AppState;

/// Where images live.
pub enum MediaStore {
    Local(PathBuf),
    S3 {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

impl MediaStore {
    pub fn new(config: &OpenCreditConfig) -> anyhow::Result<MediaStore> {
        let s3 = &config.s3;
        if s3.bucket.is_empty() {
            return Ok(MediaStore::Local(config.media_root.clone()));
        }
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&s3.bucket)
            .with_region(&s3.region);
        if !s3.endpoint.is_empty() {
            builder = builder
                .with_endpoint(&s3.endpoint)
                .with_allow_http(s3.endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if !s3.access_key_id.is_empty() {
            builder = builder
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(&s3.secret_access_key);
        }
        Ok(MediaStore::S3 {
            store: Arc::new(builder.build()?),
            prefix: s3.prefix.trim_matches('/').to_string(),
        })
    }

    fn key(prefix: &str, relative: &str) -> object_store::path::Path {
        if prefix.is_empty() {
            object_store::path::Path::from(relative)
        } else {
            object_store::path::Path::from(format!("{prefix}/{relative}"))
        }
    }

    /// Writes `<relative>` (e.g. `badges/b…_3.png`).
    pub async fn put(&self, relative: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self {
            MediaStore::Local(root) => {
                let path = root.join(relative);
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                tokio::fs::write(path, bytes).await?;
            }
            MediaStore::S3 { store, prefix } => {
                store
                    .put(&Self::key(prefix, relative), bytes.into())
                    .await?;
            }
        }
        Ok(())
    }

    /// Reads `<relative>`; `None` when it does not exist.
    pub async fn get(&self, relative: &str) -> anyhow::Result<Option<Bytes>> {
        match self {
            MediaStore::Local(root) => match tokio::fs::read(root.join(relative)).await {
                Ok(data) => Ok(Some(Bytes::from(data))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
            MediaStore::S3 { store, prefix } => {
                match store.get(&Self::key(prefix, relative)).await {
                    Ok(found) => Ok(Some(found.bytes().await?)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

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

/// Uploads that may wait for an image worker; beyond them the answer is 503 at once.
pub const IMAGE_QUEUE: usize = 16;

/// The image workers of `opencredit.image_workers` (0 = cores - 1) and their queue.
pub fn image_budget(config: &OpenCreditConfig) -> Budget {
    Budget::new(
        "opencredit_images",
        blocking::workers_for(config.image_workers),
        IMAGE_QUEUE,
    )
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
