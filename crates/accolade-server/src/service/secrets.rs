//! Secrets at rest: Credly API keys are sealed with XChaCha20-Poly1305 under a server key before
//! they reach the database, bound to the organization id (as associated data) so a ciphertext
//! copied onto another organization's row does not open.
//!
//! The server key comes from `secrets.key` (base64, e.g. `ACCOLADE_SECRETS__KEY`) or from
//! `secrets.key_file`, which is created with fresh random bytes and mode 0600 on first use.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::config::{decode_key, SecretsConfig};

/// Format version of sealed values (first byte), so the scheme can change later.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    pub fn from_key(key: [u8; 32]) -> SecretBox {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// The configured key, or the key file (created when missing). With no key file
    /// configured, the file sits next to the SQLite database.
    pub fn load(config: &SecretsConfig, database_url: &str) -> anyhow::Result<SecretBox> {
        if !config.key.is_empty() {
            return Ok(SecretBox::from_key(decode_key(&config.key)?));
        }
        let default;
        let path = if config.key_file.as_os_str().is_empty() {
            default = default_key_file(database_url);
            &default
        } else {
            &config.key_file
        };
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading secrets.key_file {}", path.display()))?;
            let key = decode_key(&text).with_context(|| {
                format!("secrets.key_file {} is not a valid key", path.display())
            })?;
            return Ok(SecretBox::from_key(key));
        }
        let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
        write_new_key_file(path, &key)?;
        tracing::info!(path = %path.display(), "created a new secrets key file; back it up with the database");
        Ok(SecretBox::from_key(key))
    }

    /// Seals `plaintext`, bound to `context` (e.g. the organization id).
    pub fn seal(&self, plaintext: &str, context: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        #[allow(clippy::expect_used)] // encryption only fails for absurd lengths (> 256 GiB)
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("encryption of a short secret");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> anyhow::Result<String> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            bail!("stored secret has an unknown format");
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
            .try_into()
            .context("stored secret has a short nonce")?;
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "stored secret does not open with this server's key (was secrets.key changed?)"
                )
            })?;
        String::from_utf8(plain).context("stored secret is not text")
    }
}

fn default_key_file(database_url: &str) -> std::path::PathBuf {
    if database_url.starts_with("sqlite:") {
        let db = accolade_store_sqlite::path_from_url(database_url);
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            return dir.join("secret.key");
        }
        return std::path::PathBuf::from("secret.key");
    }
    std::path::PathBuf::from("accolade-data/secret.key")
}

fn write_new_key_file(path: &Path, key: &[u8; 32]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating secrets.key_file {}", path.display()))?;
    writeln!(
        f,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let b = SecretBox::from_key([7; 32]);
        let sealed = b.seal("api-key-1234", "org-a");
        assert!(
            !sealed.windows(4).any(|w| w == b"1234"),
            "plaintext must not show"
        );
        assert_eq!(b.open(&sealed, "org-a").unwrap(), "api-key-1234");
        assert!(b.open(&sealed, "org-b").is_err());
        assert!(SecretBox::from_key([8; 32]).open(&sealed, "org-a").is_err());
        assert_ne!(
            sealed,
            b.seal("api-key-1234", "org-a"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("accolade-secrets-{}", uuid::Uuid::new_v4()));
        let config = SecretsConfig {
            key: String::new(),
            key_file: dir.join("secret.key"),
        };
        let first = SecretBox::load(&config, "sqlite://unused.db").unwrap();
        let sealed = first.seal("k", "o");
        let again = SecretBox::load(&config, "sqlite://unused.db").unwrap();
        assert_eq!(again.open(&sealed, "o").unwrap(), "k");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&config.key_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn default_key_file_sits_next_to_the_sqlite_database() {
        assert_eq!(
            default_key_file("sqlite:///var/lib/accolade/a.db"),
            std::path::PathBuf::from("/var/lib/accolade/secret.key")
        );
        assert_eq!(
            default_key_file("postgres://h/db"),
            std::path::PathBuf::from("accolade-data/secret.key")
        );
    }
}
