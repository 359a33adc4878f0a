//! The Open Badges 3.0 issuer (docs/openbadges.md): who issues (did:web of the public base URL),
//! with which keys ([`keyring`]), what each award's credential and each template's achievement
//! say ([`documents`]), the worker that signs awards and status lists ([`issuer`]), and the
//! public reads (credentials, status lists, the badge page, verification: [`public`]).

pub mod documents;
pub mod image;
pub mod issuer;
pub mod keyring;
pub mod public;
pub mod signer;

use accolade_openbadges::credential::Issuer;
use accolade_openbadges::did;

use crate::config::Config;
use crate::service::secrets::SecretBox;

/// What the issuer needs, built once from the configuration (held by `AppState`).
pub struct OpenBadges {
    pub enabled: bool,
    /// `http.public_base_url`, without a trailing slash.
    pub base: String,
    /// did:web of `base`.
    pub did: String,
    pub issuer: Issuer,
    pub show_names: bool,
    pub list_size: u32,
    pub batch_size: u32,
    /// The low-priority threads that sign.
    pub signer: signer::Signer,
    pub poll: std::time::Duration,
    pub keys: keyring::KeyRing,
    /// Proof checks of served credentials, remembered (a credential never changes).
    pub proof_checked: public::ProofCache,
    /// Signed documents and badge PNGs served from memory.
    pub documents: public::DocumentCache,
    /// Proof checks (badge pages, verification) on the blocking pool, bounded.
    pub verify_budget: crate::service::blocking::Budget,
}

impl OpenBadges {
    pub fn new(config: &Config, secrets: SecretBox) -> anyhow::Result<OpenBadges> {
        let base = config.public_base_url();
        let did = did::did_web(&base).map_err(|e| anyhow::anyhow!("http.public_base_url: {e}"))?;
        let ob = &config.openbadges;
        let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        Ok(OpenBadges {
            enabled: ob.enabled,
            issuer: Issuer {
                id: did.clone(),
                name: non_empty(&ob.issuer_name).unwrap_or_else(|| "Accolade".into()),
                url: non_empty(&ob.issuer_url),
                email: non_empty(&ob.issuer_email),
            },
            base,
            did,
            show_names: ob.show_names,
            list_size: ob.status_list_size,
            batch_size: ob.batch_size,
            signer: signer::Signer::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            poll: std::time::Duration::from_millis(ob.poll_interval_ms),
            keys: keyring::KeyRing::new(secrets),
            proof_checked: public::ProofCache::default(),
            documents: public::DocumentCache::default(),
            verify_budget: crate::service::blocking::Budget::new(
                "openbadges-verify",
                crate::service::blocking::workers_for(0),
                32,
            ),
        })
    }

    pub fn credential_url(&self, credential_id: &str) -> String {
        format!("{}/ob/v3/credentials/{credential_id}", self.base)
    }

    pub fn badge_page_url(&self, credential_id: &str) -> String {
        format!("{}/badges/{credential_id}", self.base)
    }

    pub fn achievement_url(&self, template_id: &str) -> String {
        format!("{}/ob/v3/achievements/{template_id}", self.base)
    }

    pub fn status_list_url(&self, list: i64) -> String {
        format!("{}/ob/v3/status/{list}", self.base)
    }

    /// The badge image of a template: its own image URL, else the one Accolade draws.
    pub fn image_url(&self, template_id: &str, own: Option<&str>) -> String {
        match own.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
            Some(url) => url.to_string(),
            None => format!("{}/ob/v3/achievements/{template_id}/image.svg", self.base),
        }
    }

    /// The verification method URL of key `id`.
    pub fn method(&self, key_id: &str) -> String {
        format!("{}#{key_id}", self.did)
    }

    /// The path did:web resolvers fetch the DID document from.
    pub fn did_document_path(&self) -> String {
        did::document_path(&self.base)
    }
}
