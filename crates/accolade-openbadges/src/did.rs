//! did:web (W3C CCG did:web method, §3.2 Create/Read): the issuer's DID from the one public base
//! URL, where its DID document is served, and the document (a controller document listing every
//! key, old ones too, as `Multikey` verification methods usable for `assertionMethod`).

use serde_json::{json, Value};

/// The DID of an issuer at `base_url` (`https://badges.example.org/tenant` ->
/// `did:web:badges.example.org:tenant`; a port's colon is percent-encoded).
pub fn did_web(base_url: &str) -> Result<String, &'static str> {
    let rest = base_url
        .strip_prefix("https://")
        .or_else(|| base_url.strip_prefix("http://"))
        .ok_or("the base URL must start with http:// or https://")?;
    let rest = rest.trim_end_matches('/');
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() || authority.contains('@') {
        return Err("the base URL has no host");
    }
    let mut did = format!(
        "did:web:{}",
        authority.to_ascii_lowercase().replace(':', "%3A")
    );
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        did.push(':');
        did.push_str(segment);
    }
    Ok(did)
}

/// The path, under the base URL's host, where a did:web resolver looks for the document:
/// `/.well-known/did.json` without a path, else `<path>/did.json`.
pub fn document_path(base_url: &str) -> String {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let path = rest
        .split_once('/')
        .map_or("", |(_, p)| p)
        .trim_end_matches('/');
    if path.is_empty() {
        "/.well-known/did.json".into()
    } else {
        format!("/{path}/did.json")
    }
}

/// A verification method of the document.
pub struct Method<'a> {
    /// Fragment, e.g. `key-1`.
    pub id: &'a str,
    pub public_multibase: &'a str,
}

/// The DID document listing `methods` (oldest first).
pub fn document(did: &str, methods: &[Method<'_>]) -> Value {
    let ids: Vec<String> = methods.iter().map(|m| format!("{did}#{}", m.id)).collect();
    let verification: Vec<Value> = methods
        .iter()
        .zip(&ids)
        .map(|(m, id)| {
            json!({
                "id": id,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": m.public_multibase,
            })
        })
        .collect();
    json!({
        "@context": [crate::contexts::DID_V1, crate::contexts::MULTIKEY_V1],
        "id": did,
        "verificationMethod": verification,
        "assertionMethod": ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_web_follows_the_method_spec() {
        assert_eq!(
            did_web("https://w3c-ccg.github.io").unwrap(),
            "did:web:w3c-ccg.github.io"
        );
        assert_eq!(
            did_web("https://w3c-ccg.github.io/user/alice/").unwrap(),
            "did:web:w3c-ccg.github.io:user:alice"
        );
        assert_eq!(
            did_web("http://127.0.0.1:8080").unwrap(),
            "did:web:127.0.0.1%3A8080"
        );
        assert!(did_web("ftp://x").is_err());
        assert_eq!(document_path("https://a.example"), "/.well-known/did.json");
        assert_eq!(document_path("https://a.example/t/x/"), "/t/x/did.json");
    }
}
