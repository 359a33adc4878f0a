//! The `eddsa-rdfc-2022` cryptosuite (Data Integrity EdDSA Cryptosuites 1.0 §3.2): a
//! `DataIntegrityProof` whose `proofValue` is the Ed25519 signature of
//! SHA-256(canonical proof options) ‖ SHA-256(canonical document), both canonicalized with
//! RDFC-1.0 ([`crate::canon`]) and the document's own `@context`.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canon::{self, CanonError};
use crate::keys::{self, Signature, SigningKey, VerifyingKey};

pub const PROOF_TYPE: &str = "DataIntegrityProof";
pub const CRYPTOSUITE: &str = "eddsa-rdfc-2022";
pub const ASSERTION_METHOD: &str = "assertionMethod";

/// The proof's options: who signed, when, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofOptions {
    /// The verification method's URL (`did:web:…#key-1`).
    pub verification_method: String,
    /// `created`, an XML Schema dateTime (`2026-12-07T09:00:00Z`).
    pub created: String,
}

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the document is not a JSON object")]
    NotAnObject,
    #[error("the document has no proof")]
    NoProof,
    #[error("the proof is not a single {PROOF_TYPE} with cryptosuite {CRYPTOSUITE}")]
    UnsupportedProof,
    #[error("the proof lacks `{0}`")]
    MissingField(&'static str),
    #[error("the proof's purpose is `{0}`, not assertionMethod")]
    WrongPurpose(String),
    #[error("the proof value is not a base58btc Ed25519 signature")]
    BadProofValue,
    #[error("the signature does not match the document and the key")]
    BadSignature,
    #[error(transparent)]
    Canon(#[from] CanonError),
}

/// The hash data of a document and its proof options (§3.2.4 Hashing, eddsa-rdfc-2022):
/// SHA-256(canonical proof config) followed by SHA-256(canonical document).
pub struct HashData {
    pub canonical_proof_config: String,
    pub canonical_document: String,
    pub bytes: [u8; 64],
}

/// Signs `unsigned` (a JSON object without `proof`), returning it with the proof added. For
/// documents Accolade built ([`canon::to_rdf_by_shape`]); the result is the same as [`sign`]'s.
pub fn sign_own(
    unsigned: &Value,
    key: &SigningKey,
    options: &ProofOptions,
) -> Result<Value, ProofError> {
    sign_with(unsigned, key, options, true)
}

/// Signs `unsigned` (a JSON object without `proof`), returning it with the proof added.
pub fn sign(
    unsigned: &Value,
    key: &SigningKey,
    options: &ProofOptions,
) -> Result<Value, ProofError> {
    sign_with(unsigned, key, options, false)
}

fn sign_with(
    unsigned: &Value,
    key: &SigningKey,
    options: &ProofOptions,
    own: bool,
) -> Result<Value, ProofError> {
    let object = unsigned.as_object().ok_or(ProofError::NotAnObject)?;
    let config = proof_config(object, options);
    let hash = if own {
        hash_own(unsigned, &config)?
    } else {
        hash_data(object, &config)?
    };
    let signature = ed25519_dalek::Signer::sign(key, &hash.bytes);
    let mut proof = config;
    proof.remove("@context");
    proof.insert(
        "proofValue".into(),
        Value::String(keys::base58btc(&signature.to_bytes())),
    );
    let mut signed = object.clone();
    signed.insert("proof".into(), Value::Object(proof));
    Ok(Value::Object(signed))
}

/// The proof configuration: the proof's options with the document's `@context` (§3.2.5).
pub fn proof_config(document: &Map<String, Value>, options: &ProofOptions) -> Map<String, Value> {
    let mut config = Map::new();
    if let Some(context) = document.get("@context") {
        config.insert("@context".into(), context.clone());
    }
    config.insert("type".into(), PROOF_TYPE.into());
    config.insert("cryptosuite".into(), CRYPTOSUITE.into());
    config.insert("created".into(), options.created.clone().into());
    config.insert(
        "verificationMethod".into(),
        options.verification_method.clone().into(),
    );
    config.insert("proofPurpose".into(), ASSERTION_METHOD.into());
    config
}

/// Canonicalizes both and hashes them (§3.2.3 Transformation, §3.2.4 Hashing).
pub fn hash_data(
    document: &Map<String, Value>,
    config: &Map<String, Value>,
) -> Result<HashData, ProofError> {
    let canonical_document = canon::canonicalize_json(&json_bytes(document))?;
    let canonical_proof_config = canon::canonicalize_json(&json_bytes(config))?;
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&Sha256::digest(canonical_proof_config.as_bytes()));
    bytes[32..].copy_from_slice(&Sha256::digest(canonical_document.as_bytes()));
    Ok(HashData {
        canonical_proof_config,
        canonical_document,
        bytes,
    })
}

fn hash_own(document: &Value, config: &Map<String, Value>) -> Result<HashData, ProofError> {
    let canonical_document = canon::canonicalize_own(document)?;
    let canonical_proof_config = canon::canonicalize_own(&Value::Object(config.clone()))?;
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&Sha256::digest(canonical_proof_config.as_bytes()));
    bytes[32..].copy_from_slice(&Sha256::digest(canonical_document.as_bytes()));
    Ok(HashData {
        canonical_proof_config,
        canonical_document,
        bytes,
    })
}

/// A proof read from a document, before its key is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofOf {
    pub verification_method: String,
    pub created: Option<String>,
}

/// The proof's verification method and creation time, if the proof is one this suite reads.
pub fn read_proof(document: &Value) -> Result<ProofOf, ProofError> {
    let proof = single_proof(document)?;
    Ok(ProofOf {
        verification_method: str_field(proof, "verificationMethod")?.to_string(),
        created: proof
            .get("created")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Verifies the document's proof with `key` (§3.2.2 Verify Proof).
pub fn verify(document: &Value, key: &VerifyingKey) -> Result<(), ProofError> {
    let object = document.as_object().ok_or(ProofError::NotAnObject)?;
    let proof = single_proof(document)?;
    let purpose = str_field(proof, "proofPurpose")?;
    if purpose != ASSERTION_METHOD {
        return Err(ProofError::WrongPurpose(purpose.to_string()));
    }
    let value = str_field(proof, "proofValue")?;
    let signature = keys::from_base58btc(value)
        .and_then(|bytes| <[u8; 64]>::try_from(bytes.as_slice()).ok())
        .map(|bytes| Signature::from_bytes(&bytes))
        .ok_or(ProofError::BadProofValue)?;
    let mut unsecured = object.clone();
    unsecured.remove("proof");
    let mut config = proof.clone();
    config.remove("proofValue");
    if let Some(context) = object.get("@context") {
        config.insert("@context".into(), context.clone());
    }
    let hash = hash_data(&unsecured, &config)?;
    key.verify_strict(&hash.bytes, &signature)
        .map_err(|_| ProofError::BadSignature)
}

fn single_proof(document: &Value) -> Result<&Map<String, Value>, ProofError> {
    let proof = document.get("proof").ok_or(ProofError::NoProof)?;
    let proof = match proof {
        Value::Array(items) if items.len() == 1 => &items[0],
        Value::Array(_) => return Err(ProofError::UnsupportedProof),
        other => other,
    };
    let proof = proof.as_object().ok_or(ProofError::UnsupportedProof)?;
    if proof.get("type").and_then(Value::as_str) != Some(PROOF_TYPE)
        || proof.get("cryptosuite").and_then(Value::as_str) != Some(CRYPTOSUITE)
    {
        return Err(ProofError::UnsupportedProof);
    }
    Ok(proof)
}

fn str_field<'a>(map: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, ProofError> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or(ProofError::MissingField(name))
}

fn json_bytes(map: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(map).expect("a JSON map serializes")
}
