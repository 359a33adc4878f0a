//! The JSON-LD contexts Accolade reads and writes, compiled into the binary from the files the
//! specifications publish (contexts/PROVENANCE.md says where each came from). Contexts are never
//! fetched: a document naming any other context is refused.

pub const VC_V2: &str = "https://www.w3.org/ns/credentials/v2";
pub const VC_V1: &str = "https://www.w3.org/2018/credentials/v1";
/// The Open Badges 3.0 context Accolade's credentials use.
pub const OB_V3: &str = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json";
pub const DID_V1: &str = "https://www.w3.org/ns/did/v1";
pub const MULTIKEY_V1: &str = "https://w3id.org/security/multikey/v1";
pub const DATA_INTEGRITY_V2: &str = "https://w3id.org/security/data-integrity/v2";

/// Every published Open Badges 3.0 context (received credentials may name any of them); 3.0.0
/// was published as `context.json`.
pub const OB_CONTEXTS: &[&str] = &[
    "https://purl.imsglobal.org/spec/ob/v3p0/context.json",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.1.json",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json",
    OB_V3,
];

/// (URL, document) of every known context.
pub const CONTEXTS: &[(&str, &str)] = &[
    (VC_V2, include_str!("../contexts/credentials-v2.jsonld")),
    (VC_V1, include_str!("../contexts/credentials-v1.jsonld")),
    (
        "https://www.w3.org/ns/credentials/examples/v2",
        include_str!("../contexts/credentials-examples-v2.jsonld"),
    ),
    (
        "https://www.w3.org/ns/credentials/undefined-terms/v2",
        include_str!("../contexts/credentials-undefined-terms-v2.jsonld"),
    ),
    (
        OB_CONTEXTS[0],
        include_str!("../contexts/ob-v3p0-3.0.0.jsonld"),
    ),
    (
        OB_CONTEXTS[1],
        include_str!("../contexts/ob-v3p0-3.0.1.jsonld"),
    ),
    (
        OB_CONTEXTS[2],
        include_str!("../contexts/ob-v3p0-3.0.2.jsonld"),
    ),
    (OB_V3, include_str!("../contexts/ob-v3p0-3.0.3.jsonld")),
    (DID_V1, include_str!("../contexts/did-v1.jsonld")),
    (MULTIKEY_V1, include_str!("../contexts/multikey-v1.jsonld")),
    (
        DATA_INTEGRITY_V2,
        include_str!("../contexts/data-integrity-v2.jsonld"),
    ),
    (
        "https://w3id.org/security/data-integrity/v1",
        include_str!("../contexts/data-integrity-v1.jsonld"),
    ),
    (
        "https://w3id.org/vc/status-list/2021/v1",
        include_str!("../contexts/status-list-2021-v1.jsonld"),
    ),
];

/// The document of a known context URL.
pub fn lookup(url: &str) -> Option<&'static str> {
    CONTEXTS
        .iter()
        .find(|(u, _)| *u == url)
        .map(|(_, body)| *body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_is_json_with_a_context() {
        for (url, body) in CONTEXTS {
            let doc: serde_json::Value = serde_json::from_str(body).expect(url);
            assert!(doc.get("@context").is_some(), "{url}");
        }
        assert!(lookup("https://example.org/ctx").is_none());
    }
}
