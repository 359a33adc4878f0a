//! Stored images: every upload is decoded within limits, rendered at each size code of its
//! kind and written as `<kind>/<name>.png` and `<kind>/<name>_<code>.png`, under
//! `opencredit.media_root` or, when `opencredit.s3.bucket` is set, in an S3-compatible bucket
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
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use object_store::ObjectStore;

use super::envelope::OcError;
use super::params::Params;
use crate::config::OpenCreditConfig;
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

/// Decodes, renders and stores an upload; returns the stored name.
pub async fn store(
    media: &MediaStore,
    kind: ImageKind,
    bytes: Vec<u8>,
    limits: Limits,
    field: &str,
) -> Result<String, OcError> {
    let name = format!("{}{}", &folder(kind)[..1], uuid::Uuid::new_v4().simple());
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
    for (suffix, png) in rendered {
        media
            .put(&format!("{}/{name}{suffix}.png", folder(kind)), png)
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
