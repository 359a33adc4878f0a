//! Where Open Credit images live (`opencredit.media_root` or an S3-compatible bucket) and the
//! image workers' budget: the parts of the media feature that the shared state holds, apart from
//! the handlers in `media.rs` (which need the state), so that the state does not depend on them.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use object_store::ObjectStore;

use crate::config::OpenCreditConfig;
use crate::service::blocking::{self, Budget};

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
