//! The public side of the issuer: the DID document, achievements, credentials, status lists,
//! baked images, the learner's badge page, and verification of a received credential. Every
//! read here is unauthenticated, so each is a primary-key read of stored data; the one check
//! that costs CPU (a credential's proof, for its badge page) runs once per credential and
//! process and is remembered.

use std::collections::HashMap;
use std::sync::Arc;

use accolade_domain::template::Origin;
use accolade_openbadges::verify::{self, Outcome, Report, Resolver, Verdict};
use accolade_openbadges::{baking, keys, proof};
use accolade_store::{Entity, ObCredential, StoreError};
use chrono::{DateTime, Datelike, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use super::{documents, image, keyring::Keys, OpenBadges};
use crate::service::blocking::Refused;
use crate::state::AppState;

/// Proof checks remembered at most (then forgotten all at once; a check is milliseconds).
const PROOF_CACHE_MAX: usize = 100_000;

/// Results of proof checks of stored credentials, by credential id.
#[derive(Default)]
pub struct ProofCache(Mutex<HashMap<String, bool>>);

/// Why a public read failed.
#[derive(Debug, thiserror::Error)]
pub enum PublicError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Open Badges issuing is turned off (openbadges.enabled = false)")]
    Disabled,
    #[error("the server is busy verifying other credentials; try again shortly")]
    Busy,
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn enabled(ob: &OpenBadges) -> Result<(), PublicError> {
    if ob.enabled {
        Ok(())
    } else {
        Err(PublicError::Disabled)
    }
}

/// The DID document (every key, retired ones too).
pub async fn did_document(state: &AppState) -> Result<Value, PublicError> {
    enabled(&state.openbadges)?;
    let keys = state.openbadges.keys.get(&*state.store).await?;
    Ok(documents::did_document(&state.openbadges, &keys.all))
}

/// A local template as an `Achievement` document.
pub async fn achievement(state: &AppState, template_id: &str) -> Result<Value, PublicError> {
    enabled(&state.openbadges)?;
    let config = state.store.get_template(template_id).await?;
    if config.template.origin != Origin::Local {
        return Err(StoreError::not_found(Entity::Template).into());
    }
    Ok(
        documents::achievement(&state.openbadges, &config.template, &config.requirements)
            .document(),
    )
}

/// The SVG image of a template without one of its own.
pub async fn achievement_image(state: &AppState, template_id: &str) -> Result<String, PublicError> {
    enabled(&state.openbadges)?;
    let config = state.store.get_template(template_id).await?;
    Ok(image::svg(&config.template.id, &config.template.name))
}

/// The credential ids of those of `award_ids` with a signed credential (none when issuing is
/// off).
pub async fn credential_links(
    state: &AppState,
    award_ids: &[String],
) -> Result<HashMap<String, String>, PublicError> {
    if !state.openbadges.enabled || award_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(state.store.ob_credential_ids(award_ids).await?)
}

/// Signed documents kept in memory at most (about 3 KB each); then forgotten all at once.
const DOCUMENTS_MAX: usize = 10_000;

/// What the public reads of a credential need; never changes once signed.
pub struct Signed {
    pub document: Arc<str>,
    pub template_id: String,
}

/// Signed credentials by id, and badge PNGs by template: both immutable, so a public GET is
/// answered from memory after the first (no database read, no image encoding).
#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, Arc<Signed>>>,
    pngs: Mutex<HashMap<String, Arc<[u8]>>>,
}

/// A signed credential's document, from memory when seen before.
pub async fn signed(state: &AppState, id: &str) -> Result<Arc<Signed>, PublicError> {
    enabled(&state.openbadges)?;
    if !accolade_domain::ids::is_uuid(id) {
        return Err(StoreError::not_found(Entity::Credential).into());
    }
    // One key per credential, whatever form of the UUID was asked for.
    let id = &accolade_domain::ids::normalize_uuid(id);
    let cache = &state.openbadges.documents;
    if let Some(hit) = cache.documents.lock().get(id) {
        return Ok(hit.clone());
    }
    let stored = credential(state, id).await?;
    let signed = Arc::new(Signed {
        document: stored.document.into(),
        template_id: stored.template_id,
    });
    let mut documents = cache.documents.lock();
    if documents.len() >= DOCUMENTS_MAX {
        documents.clear();
    }
    documents.insert(id.to_string(), signed.clone());
    Ok(signed)
}

fn png_of(state: &AppState, template_id: &str) -> Arc<[u8]> {
    let cache = &state.openbadges.documents;
    if let Some(png) = cache.pngs.lock().get(template_id) {
        return png.clone();
    }
    let png: Arc<[u8]> = image::png(template_id).into();
    let mut pngs = cache.pngs.lock();
    if pngs.len() >= 1_000 {
        pngs.clear();
    }
    pngs.insert(template_id.to_string(), png.clone());
    png
}

/// A stored credential.
pub async fn credential(state: &AppState, id: &str) -> Result<ObCredential, PublicError> {
    enabled(&state.openbadges)?;
    if !accolade_domain::ids::is_uuid(id) {
        return Err(StoreError::not_found(Entity::Credential).into());
    }
    Ok(state
        .store
        .ob_credential(&accolade_domain::ids::normalize_uuid(id))
        .await?)
}

/// A status list's signed credential.
pub async fn status_list(state: &AppState, id: &str) -> Result<String, PublicError> {
    enabled(&state.openbadges)?;
    let id: i64 = id
        .parse()
        .map_err(|_| StoreError::not_found(Entity::StatusList))?;
    let list = state.store.ob_status_list(id).await?;
    list.document
        .ok_or_else(|| StoreError::not_found(Entity::StatusList).into())
}

/// The credential baked into its badge's PNG.
pub async fn baked_png(state: &AppState, id: &str) -> Result<Vec<u8>, PublicError> {
    let credential = signed(state, id).await?;
    baking::bake_png(
        &png_of(state, &credential.template_id),
        &credential.document,
    )
    .map_err(|e| PublicError::Internal(anyhow::anyhow!("baking: {e}")))
}

/// The credential baked into its badge's SVG.
pub async fn baked_svg(state: &AppState, id: &str) -> Result<String, PublicError> {
    let credential = signed(state, id).await?;
    let doc: Value = serde_json::from_str(&credential.document).map_err(anyhow::Error::from)?;
    let name = doc["credentialSubject"]["achievement"]["name"]
        .as_str()
        .unwrap_or("Badge");
    baking::bake_svg(
        &image::svg(&credential.template_id, name),
        &credential.document,
    )
    .map_err(|e| PublicError::Internal(anyhow::anyhow!("baking: {e}")))
}

/// Where a credential stands, as the badge page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Valid,
    Revoked,
    Expired,
    /// The proof does not verify (the stored document was altered).
    Invalid,
}

/// What the learner's badge page shows.
#[derive(Debug, Clone, Serialize)]
pub struct BadgePage {
    pub credential_id: String,
    pub name: String,
    pub description: String,
    pub criteria: String,
    pub image_url: String,
    pub issuer_name: String,
    pub issuer_url: Option<String>,
    pub issuer_id: String,
    /// The name the learner earned it under (none when names are off).
    pub learner_name: Option<String>,
    pub earned_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub standing: Standing,
    pub proof_ok: bool,
    pub json_url: String,
    pub png_url: String,
    pub svg_url: String,
    pub linkedin_url: String,
}

/// The badge page of a credential.
pub async fn badge_page(state: &AppState, id: &str) -> Result<BadgePage, PublicError> {
    let ob = &state.openbadges;
    let stored = credential(state, id).await?;
    let doc: Value = serde_json::from_str(&stored.document).map_err(anyhow::Error::from)?;
    let proof_ok = proof_ok(state, &stored, &doc).await?;
    let now = Utc::now();
    let standing = if !proof_ok {
        Standing::Invalid
    } else if stored.revoked_at.is_some() {
        Standing::Revoked
    } else if stored.valid_until.is_some_and(|u| u <= now) {
        Standing::Expired
    } else {
        Standing::Valid
    };
    let achievement = &doc["credentialSubject"]["achievement"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let learner_name = if ob.show_names {
        doc["credentialSubject"]["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["identityType"] == "name" && i["hashed"] == false)
            .and_then(|i| i["identityHash"].as_str())
            .map(str::to_string)
    } else {
        None
    };
    let earned_at = doc["validFrom"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(stored.signed_at, |t| t.with_timezone(&Utc));
    let json_url = ob.credential_url(&stored.credential_id);
    let name = text(&achievement["name"]);
    Ok(BadgePage {
        linkedin_url: linkedin_url(
            &name,
            &ob.issuer.name,
            earned_at,
            stored.valid_until,
            &ob.badge_page_url(&stored.credential_id),
            &stored.credential_id,
        ),
        credential_id: stored.credential_id.clone(),
        description: text(&achievement["description"]),
        criteria: text(&achievement["criteria"]["narrative"]),
        image_url: text(&achievement["image"]["id"]),
        issuer_name: text(&doc["issuer"]["name"]),
        issuer_url: doc["issuer"]["url"].as_str().map(str::to_string),
        issuer_id: text(&doc["issuer"]["id"]),
        name,
        learner_name,
        earned_at,
        valid_until: stored.valid_until,
        standing,
        proof_ok,
        png_url: format!("{json_url}/baked.png"),
        svg_url: format!("{json_url}/baked.svg"),
        json_url,
    })
}

/// LinkedIn's "Add to profile" link for a certification.
pub fn linkedin_url(
    name: &str,
    organization: &str,
    issued: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
    cert_url: &str,
    cert_id: &str,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("startTask", "CERTIFICATION_NAME")
        .append_pair("name", name)
        .append_pair("organizationName", organization)
        .append_pair("issueYear", &issued.year().to_string())
        .append_pair("issueMonth", &issued.month().to_string());
    if let Some(expires) = expires {
        query
            .append_pair("expirationYear", &expires.year().to_string())
            .append_pair("expirationMonth", &expires.month().to_string());
    }
    query
        .append_pair("certUrl", cert_url)
        .append_pair("certId", cert_id);
    format!("https://www.linkedin.com/profile/add?{}", query.finish())
}

/// Whether a stored credential's proof verifies (checked once per process).
async fn proof_ok(
    state: &AppState,
    stored: &ObCredential,
    doc: &Value,
) -> Result<bool, PublicError> {
    let ob = &state.openbadges;
    if let Some(ok) = ob.proof_checked.0.lock().get(&stored.credential_id) {
        return Ok(*ok);
    }
    let keys = ob.keys.get(&*state.store).await?;
    let Some(key) = keys.public(&stored.key_id) else {
        return Ok(false);
    };
    let doc = doc.clone();
    let ok = ob
        .verify_budget
        .run(move |_| proof::verify(&doc, &key).is_ok())
        .await
        .map_err(|refused| match refused {
            Refused::Busy => PublicError::Busy,
            Refused::Failed => PublicError::Internal(anyhow::anyhow!("proof check failed")),
        })?;
    let mut cache = ob.proof_checked.0.lock();
    if cache.len() >= PROOF_CACHE_MAX {
        cache.clear();
    }
    cache.insert(stored.credential_id.clone(), ok);
    Ok(ok)
}

/// A credential as received for verification.
pub enum Received {
    Json(Vec<u8>),
    Png(Vec<u8>),
    Svg(Vec<u8>),
}

/// Largest credential verified (JSON text, also when baked).
pub const MAX_CREDENTIAL_BYTES: usize = 256 * 1024;

/// Checks a received credential: its shape, proof, validity and status. Keys and status lists of
/// this issuer are read from the store; did:key keys from the DID itself; anything else would
/// need a network fetch, which this server does not make, and is reported as unknown.
pub async fn verify_received(state: &AppState, received: Received) -> Result<Report, PublicError> {
    let text = match received {
        Received::Json(bytes) => String::from_utf8(bytes)
            .map_err(|_| PublicError::Unreadable("the credential is not UTF-8 text".into()))?,
        Received::Png(bytes) => {
            baking::unbake_png(&bytes).map_err(|e| PublicError::Unreadable(format!("PNG: {e}")))?
        }
        Received::Svg(bytes) => {
            let svg = String::from_utf8(bytes)
                .map_err(|_| PublicError::Unreadable("the SVG is not UTF-8 text".into()))?;
            baking::unbake_svg(&svg).map_err(|e| PublicError::Unreadable(format!("SVG: {e}")))?
        }
    };
    if text.len() > MAX_CREDENTIAL_BYTES {
        return Err(PublicError::Unreadable(format!(
            "the credential is larger than {MAX_CREDENTIAL_BYTES} bytes"
        )));
    }
    let credential: Value = serde_json::from_str(&text)
        .map_err(|e| PublicError::Unreadable(format!("the credential is not JSON: {e}")))?;
    if !credential.is_object() {
        return Err(PublicError::Unreadable(
            "the credential is not a JSON object".into(),
        ));
    }
    let ob = &state.openbadges;
    let keys = if ob.enabled {
        Some(ob.keys.get(&*state.store).await?)
    } else {
        None
    };
    let mut lists = HashMap::new();
    if let Some(entry) = own_list(ob, &credential) {
        if let Ok(list) = state.store.ob_status_list(entry).await {
            lists.insert(ob.status_list_url(entry), list.bits);
        }
    }
    let resolver = ServerResolver {
        did: ob.did.clone(),
        keys,
        lists,
    };
    ob.verify_budget
        .run(move |_| verify::verify(&credential, Utc::now(), &resolver))
        .await
        .map_err(|refused| match refused {
            Refused::Busy => PublicError::Busy,
            Refused::Failed => PublicError::Internal(anyhow::anyhow!("verification failed")),
        })
}

/// The id of this issuer's status list a credential names, if any.
fn own_list(ob: &OpenBadges, credential: &Value) -> Option<i64> {
    let url = credential["credentialStatus"]["statusListCredential"].as_str()?;
    let prefix = format!("{}/ob/v3/status/", ob.base);
    url.strip_prefix(&prefix)?.parse().ok()
}

struct ServerResolver {
    did: String,
    keys: Option<std::sync::Arc<Keys>>,
    lists: HashMap<String, Vec<u8>>,
}

impl Resolver for ServerResolver {
    fn key(&self, method: &str) -> Result<keys::VerifyingKey, String> {
        let (did, fragment) = method
            .split_once('#')
            .ok_or_else(|| "the verification method has no fragment".to_string())?;
        if did == self.did {
            return self
                .keys
                .as_ref()
                .and_then(|k| k.public(fragment))
                .ok_or_else(|| format!("this issuer has no key {fragment}"));
        }
        if let Some(multibase) = did.strip_prefix("did:key:") {
            return keys::parse_public_multibase(multibase).map_err(|e| e.to_string());
        }
        Err("resolving it needs a network fetch, which this server does not make".into())
    }

    fn status_bits(&self, url: &str) -> Result<Vec<u8>, String> {
        self.lists.get(url).cloned().ok_or_else(|| {
            "not one of this issuer's lists; fetching it needs a network call, which this \
             server does not make"
                .to_string()
        })
    }
}

/// Whether a report's checks include a failed or unknown one (for logs).
pub fn summary(report: &Report) -> &'static str {
    match report.verdict {
        Verdict::Valid => "valid",
        Verdict::Invalid => "invalid",
        Verdict::Unknown => {
            if report.checks.iter().any(|c| c.outcome == Outcome::Unknown) {
                "unknown"
            } else {
                "valid"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn linkedin_link_carries_the_certification() {
        let url = linkedin_url(
            "Data & AI",
            "Example U",
            Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap(),
            Some(Utc.with_ymd_and_hms(2027, 3, 9, 0, 0, 0).unwrap()),
            "https://b.example/badges/1",
            "1",
        );
        assert_eq!(
            url,
            "https://www.linkedin.com/profile/add?startTask=CERTIFICATION_NAME&name=Data+%26+AI\
             &organizationName=Example+U&issueYear=2026&issueMonth=3&expirationYear=2027\
             &expirationMonth=3&certUrl=https%3A%2F%2Fb.example%2Fbadges%2F1&certId=1"
        );
    }

    #[test]
    fn status_bits_of_own_lists_only() {
        let r = ServerResolver {
            did: "did:web:a".into(),
            keys: None,
            lists: HashMap::from([("https://a/ob/v3/status/1".to_string(), vec![0x80])]),
        };
        assert_eq!(r.status_bits("https://a/ob/v3/status/1"), Ok(vec![0x80]));
        assert!(r.status_bits("https://b/ob/v3/status/1").is_err());
        assert!(r.key("did:web:b#k").is_err());
        let k = keys::signing_key([1; 32]);
        let mb = keys::public_multibase(&k.verifying_key());
        assert_eq!(r.key(&format!("did:key:{mb}#{mb}")), Ok(k.verifying_key()));
    }
}
