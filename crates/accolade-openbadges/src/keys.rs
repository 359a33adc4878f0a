//! Ed25519 keys as Multikeys (Controlled Identifiers 1.0 / Data Integrity EdDSA §2.1.1): a public
//! key is `z` + base58btc(0xed 0x01 + 32 bytes), a secret key `z` + base58btc(0x80 0x26 + 32
//! bytes). The server stores the 32 secret bytes sealed by its secrets box.

pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

const PUBLIC_HEADER: [u8; 2] = [0xed, 0x01];
const SECRET_HEADER: [u8; 2] = [0x80, 0x26];

/// Why a Multikey could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a base58btc multibase value (it must start with `z`)")]
    NotMultibase,
    #[error("not an Ed25519 {0} Multikey")]
    WrongKind(&'static str),
    #[error("not a valid Ed25519 public key")]
    BadPoint,
}

/// A new key from 32 random bytes (the caller brings the randomness: `rand::random()`).
pub fn signing_key(secret: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&secret)
}

/// The `publicKeyMultibase` of a public key (`z6Mk…`).
pub fn public_multibase(key: &VerifyingKey) -> String {
    multibase(&PUBLIC_HEADER, key.as_bytes())
}

/// The `secretKeyMultibase` of a key (`z3u2…`), as test vectors write it.
pub fn secret_multibase(key: &SigningKey) -> String {
    multibase(&SECRET_HEADER, key.as_bytes())
}

/// Reads a `publicKeyMultibase`.
pub fn parse_public_multibase(value: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = decode(value, &PUBLIC_HEADER, "public")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPoint)
}

/// Reads a `secretKeyMultibase`.
pub fn parse_secret_multibase(value: &str) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&decode(
        value,
        &SECRET_HEADER,
        "secret",
    )?))
}

/// `z` + base58btc of `bytes` (multibase, used for keys and proof values).
pub fn base58btc(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(1 + bytes.len() * 138 / 100 + 1);
    out.push('z');
    out.push_str(&bs58::encode(bytes).into_string());
    out
}

/// The bytes of a `z` multibase value.
pub fn from_base58btc(value: &str) -> Option<Vec<u8>> {
    bs58::decode(value.strip_prefix('z')?).into_vec().ok()
}

fn multibase(header: &[u8; 2], key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(key);
    base58btc(&bytes)
}

fn decode(value: &str, header: &[u8; 2], kind: &'static str) -> Result<[u8; 32], KeyError> {
    let bytes = from_base58btc(value).ok_or(KeyError::NotMultibase)?;
    match bytes.strip_prefix(header.as_slice()) {
        Some(key) if key.len() == 32 => Ok(key.try_into().expect("32 bytes")),
        _ => Err(KeyError::WrongKind(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multikeys_round_trip_and_start_as_the_spec_says() {
        let key = signing_key([7; 32]);
        let public = public_multibase(&key.verifying_key());
        assert!(public.starts_with("z6Mk"), "{public}");
        assert_eq!(
            parse_public_multibase(&public).unwrap(),
            key.verifying_key()
        );
        let secret = secret_multibase(&key);
        assert!(secret.starts_with("z3u2"), "{secret}");
        assert_eq!(parse_secret_multibase(&secret).unwrap().to_bytes(), [7; 32]);
        assert_eq!(
            parse_public_multibase(&secret),
            Err(KeyError::WrongKind("public"))
        );
        assert_eq!(parse_public_multibase("f00"), Err(KeyError::NotMultibase));
    }
}
