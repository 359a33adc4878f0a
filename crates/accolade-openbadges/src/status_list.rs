//! Bitstring Status List 1.0: the bits (index 0 is the most significant bit of the first byte,
//! §3.1 Bitstring Generation), their `encodedList` (multibase base64url, `u` prefix, of the
//! GZIP-compressed bits) and the documents: a credential's `BitstringStatusListEntry` and the
//! list's own `BitstringStatusListCredential`.

use std::io::{Read, Write};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// The smallest list the specification allows for group privacy (16 KiB of bits).
pub const MIN_ENTRIES: u32 = 131_072;

/// Largest decoded list read from someone else's credential (a GZIP bomb stops here).
pub const MAX_DECODED_BYTES: u64 = 16 * 1024 * 1024;

/// Why an `encodedList` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusListError {
    #[error("encodedList is not multibase base64url (`u…`)")]
    NotBase64Url,
    #[error("encodedList is not GZIP data")]
    NotGzip,
    #[error("encodedList expands beyond {MAX_DECODED_BYTES} bytes")]
    TooLarge,
}

/// Whether bit `index` is set in `bits`; `None` past the end.
pub fn get(bits: &[u8], index: u64) -> Option<bool> {
    let byte = bits.get(usize::try_from(index / 8).ok()?)?;
    Some(byte & (0x80 >> (index % 8)) != 0)
}

/// Sets bit `index`; returns whether it changed. Panics past the end (callers own the size).
pub fn set(bits: &mut [u8], index: u64) -> bool {
    let mask = 0x80 >> (index % 8);
    let byte = &mut bits[(index / 8) as usize];
    let changed = *byte & mask == 0;
    *byte |= mask;
    changed
}

/// The `encodedList` of `bits`.
pub fn encode(bits: &[u8]) -> String {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(bits).expect("writing to memory");
    let compressed = gzip.finish().expect("writing to memory");
    format!("u{}", URL_SAFE_NO_PAD.encode(compressed))
}

/// The bits of an `encodedList`, at most [`MAX_DECODED_BYTES`].
pub fn decode(encoded: &str) -> Result<Vec<u8>, StatusListError> {
    let compressed = encoded
        .strip_prefix('u')
        .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
        .ok_or(StatusListError::NotBase64Url)?;
    let mut bits = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut bits)
        .map_err(|_| StatusListError::NotGzip)?;
    if bits.len() as u64 > MAX_DECODED_BYTES {
        return Err(StatusListError::TooLarge);
    }
    Ok(bits)
}

/// The `credentialStatus` of a credential at `index` of the list at `list_url`.
pub fn entry(list_url: &str, index: i64) -> Value {
    json!({
        "id": format!("{list_url}#{index}"),
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": index.to_string(),
        "statusListCredential": list_url,
    })
}

/// The unsigned `BitstringStatusListCredential` of a revocation list.
pub fn list_credential(list_url: &str, issuer: &str, valid_from: &str, bits: &[u8]) -> Value {
    json!({
        "@context": [crate::contexts::VC_V2],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": valid_from,
        "credentialSubject": {
            "id": format!("{list_url}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode(bits),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn index_zero_is_the_leftmost_bit() {
        let mut bits = vec![0u8; 2];
        assert!(set(&mut bits, 0));
        assert!(!set(&mut bits, 0));
        set(&mut bits, 9);
        assert_eq!(bits, [0b1000_0000, 0b0100_0000]);
        assert_eq!(get(&bits, 9), Some(true));
        assert_eq!(get(&bits, 10), Some(false));
        assert_eq!(get(&bits, 16), None);
    }

    #[test]
    fn a_bomb_is_refused() {
        let bomb = encode(&vec![0u8; (MAX_DECODED_BYTES + 1) as usize]);
        assert_eq!(decode(&bomb), Err(StatusListError::TooLarge));
        assert_eq!(decode("zabc"), Err(StatusListError::NotBase64Url));
        assert_eq!(decode("uAAAA"), Err(StatusListError::NotGzip));
    }

    proptest! {
        #[test]
        fn encoding_round_trips(set_bits in proptest::collection::vec(0u64..131_072, 0..50)) {
            let mut bits = vec![0u8; 16_384];
            for &i in &set_bits { set(&mut bits, i); }
            let decoded = decode(&encode(&bits)).unwrap();
            prop_assert_eq!(&decoded, &bits);
            for &i in &set_bits { prop_assert_eq!(get(&decoded, i), Some(true)); }
        }
    }
}
