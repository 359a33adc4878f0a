//! The documents Accolade issues (Open Badges 3.0 §B "Data Model"): the issuer's `Profile`, a
//! template's `Achievement`, and an award's `OpenBadgeCredential` with an `AchievementSubject`
//! identified by a salted SHA-256 hash of the learner's email (`IdentityObject`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::contexts::{OB_V3, VC_V2};

/// An XML Schema dateTime in UTC with seconds (`2026-12-07T09:00:00Z`).
pub fn datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The issuer (`Profile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The did:web DID.
    pub id: String,
    pub name: String,
    pub url: Option<String>,
    pub email: Option<String>,
}

impl Issuer {
    /// The `Profile` object embedded in credentials.
    pub fn profile(&self) -> Value {
        let mut profile = Map::new();
        profile.insert("id".into(), self.id.clone().into());
        profile.insert("type".into(), json!(["Profile"]));
        profile.insert("name".into(), self.name.clone().into());
        if let Some(url) = &self.url {
            profile.insert("url".into(), url.clone().into());
        }
        if let Some(email) = &self.email {
            profile.insert("email".into(), email.clone().into());
        }
        Value::Object(profile)
    }
}

/// A template as an `Achievement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Achievement {
    /// Its URL (`…/ob/v3/achievements/{template_id}`).
    pub id: String,
    pub name: String,
    pub description: String,
    /// `criteria.narrative` (Markdown).
    pub criteria: String,
    /// The badge image's URL.
    pub image: Option<String>,
    /// `achievementType`, e.g. `Badge`.
    pub achievement_type: String,
    pub creator: Option<Issuer>,
}

impl Achievement {
    /// The `Achievement` object.
    pub fn object(&self) -> Value {
        let mut achievement = Map::new();
        achievement.insert("id".into(), self.id.clone().into());
        achievement.insert("type".into(), json!(["Achievement"]));
        achievement.insert(
            "achievementType".into(),
            self.achievement_type.clone().into(),
        );
        achievement.insert("name".into(), self.name.clone().into());
        achievement.insert("description".into(), self.description.clone().into());
        achievement.insert("criteria".into(), json!({ "narrative": self.criteria }));
        if let Some(image) = &self.image {
            achievement.insert("image".into(), json!({ "id": image, "type": "Image" }));
        }
        if let Some(creator) = &self.creator {
            achievement.insert("creator".into(), creator.profile());
        }
        Value::Object(achievement)
    }

    /// The `Achievement` as a document of its own (with `@context`), as served at its URL.
    pub fn document(&self) -> Value {
        let mut object = self.object();
        let map = object.as_object_mut().expect("an object");
        let mut doc = Map::new();
        doc.insert("@context".into(), json!([VC_V2, OB_V3]));
        doc.extend(std::mem::take(map));
        Value::Object(doc)
    }
}

/// The salted hash of an identity: `sha256$` + hex(SHA-256(identity ‖ salt)) (OB 3.0
/// `IdentityObject.identityHash`). Emails are compared lower-cased.
pub fn identity_hash(email: &str, salt: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(email.trim().to_lowercase().as_bytes());
    hasher.update(salt.as_bytes());
    format!("sha256${}", hex::encode(hasher.finalize()))
}

/// What an award's credential says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    /// `urn:uuid:…`.
    pub id: String,
    pub issuer: Issuer,
    pub achievement: Achievement,
    /// The learner's email, hashed with `salt` into the subject's identifier.
    pub email: Option<String>,
    pub salt: String,
    /// The learner's name as earned (shown unhashed), unless the operator turned names off.
    pub name: Option<String>,
    /// When the learner earned it: `validFrom` and `awardedDate`.
    pub earned_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    /// The `credentialStatus` entry ([`crate::status_list::entry`]).
    pub status: Value,
}

impl Award {
    /// The unsigned `OpenBadgeCredential`.
    pub fn unsigned(&self) -> Value {
        let mut identifiers = Vec::new();
        if let Some(email) = &self.email {
            identifiers.push(json!({
                "type": "IdentityObject",
                "identityHash": identity_hash(email, &self.salt),
                "identityType": "emailAddress",
                "hashed": true,
                "salt": self.salt,
            }));
        }
        if let Some(name) = &self.name {
            identifiers.push(json!({
                "type": "IdentityObject",
                "identityHash": name,
                "identityType": "name",
                "hashed": false,
            }));
        }
        let mut subject = Map::new();
        subject.insert("type".into(), json!(["AchievementSubject"]));
        if !identifiers.is_empty() {
            subject.insert("identifier".into(), Value::Array(identifiers));
        }
        subject.insert("achievement".into(), self.achievement.object());
        let mut credential = Map::new();
        credential.insert("@context".into(), json!([VC_V2, OB_V3]));
        credential.insert("id".into(), self.id.clone().into());
        credential.insert(
            "type".into(),
            json!(["VerifiableCredential", "OpenBadgeCredential"]),
        );
        credential.insert("name".into(), self.achievement.name.clone().into());
        credential.insert("issuer".into(), self.issuer.profile());
        credential.insert("validFrom".into(), datetime(self.earned_at).into());
        if let Some(until) = self.valid_until {
            credential.insert("validUntil".into(), datetime(until).into());
        }
        credential.insert("awardedDate".into(), datetime(self.earned_at).into());
        credential.insert("credentialSubject".into(), Value::Object(subject));
        credential.insert("credentialStatus".into(), self.status.clone());
        Value::Object(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_hash_is_salted_sha256_of_the_lowercased_email() {
        let hash = identity_hash(" Ada@Example.org ", "s4lt");
        let expected = hex::encode(Sha256::digest(b"ada@example.orgs4lt"));
        assert_eq!(hash, format!("sha256${expected}"));
    }
}
