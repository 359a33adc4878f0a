//! JSON-LD document -> RDF dataset -> RDFC-1.0 canonical N-Quads, the transformation of
//! `eddsa-rdfc-2022`. Contexts come only from [`crate::contexts`]; a document naming any other
//! context is refused, never fetched. Work is bounded for untrusted input: the document's size
//! is checked by the caller, the number of quads here, and RDFC-1.0's Hash N-Degree Quads calls
//! (the cost of poison graphs) by rdf-canon's call limit.

use oxjsonld::{JsonLdParser, JsonLdRemoteDocument};
use rdf_canon::CanonicalizationOptions;
use sha2::Sha256;

use crate::contexts;

/// Most quads a document may expand to. Accolade's credentials have about 40; a status list 12.
pub const MAX_QUADS: usize = 10_000;

/// Hash N-Degree Quads calls allowed per canonicalization. A credential with a handful of blank
/// nodes needs none or a few; poison graphs need millions.
pub const HNDQ_CALL_LIMIT: usize = 4_000;

/// Why a document has no canonical form here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonError {
    #[error("context {0} is not one this server knows (contexts are never fetched)")]
    UnknownContext(String),
    #[error("not valid JSON-LD: {0}")]
    JsonLd(String),
    #[error("the document expands to more than {MAX_QUADS} statements")]
    TooLarge,
    #[error("canonicalization failed: {0}")]
    Canonicalize(String),
}

/// The parser's only document loader: the compiled-in contexts.
fn load_context(
    url: &str,
    _options: &oxjsonld::JsonLdLoadDocumentOptions,
) -> Result<JsonLdRemoteDocument, Box<dyn std::error::Error + Send + Sync>> {
    match contexts::lookup(url) {
        Some(body) => Ok(JsonLdRemoteDocument {
            document: body.as_bytes().to_vec(),
            document_url: url.to_string(),
        }),
        None => Err(Box::new(UnknownContext(url.to_string()))),
    }
}

#[derive(Debug)]
struct UnknownContext(String);
impl std::fmt::Display for UnknownContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown context {}", self.0)
    }
}
impl std::error::Error for UnknownContext {}

/// The RDF quads (oxrdf 0.3) of a JSON-LD document.
pub fn to_rdf(json: &[u8]) -> Result<Vec<oxrdf::Quad>, CanonError> {
    let mut quads = Vec::new();
    for quad in JsonLdParser::new()
        .for_slice(json)
        .with_load_document_callback(load_context)
    {
        let quad = quad.map_err(|e| {
            let message = e.to_string();
            match unknown_context_in(&message) {
                Some(url) => CanonError::UnknownContext(url),
                None => CanonError::JsonLd(message),
            }
        })?;
        quads.push(quad);
        if quads.len() > MAX_QUADS {
            return Err(CanonError::TooLarge);
        }
    }
    Ok(quads)
}

/// The canonical N-Quads (RDFC-1.0, SHA-256) of a JSON-LD document.
pub fn canonicalize_json(json: &[u8]) -> Result<String, CanonError> {
    canonicalize_quads(&to_rdf(json)?)
}

/// The canonical N-Quads (RDFC-1.0, SHA-256) of a dataset.
pub fn canonicalize_quads(quads: &[oxrdf::Quad]) -> Result<String, CanonError> {
    let quads: Vec<oxrdf02::Quad> = quads.iter().map(carry_quad).collect::<Result<_, _>>()?;
    let dataset = oxrdf02::Dataset::from_iter(quads.iter());
    let options = CanonicalizationOptions {
        hndq_call_limit: Some(HNDQ_CALL_LIMIT),
    };
    rdf_canon::canonicalize_with::<Sha256>(&dataset, &options)
        .map_err(|e| CanonError::Canonicalize(e.to_string()))
}

/// The canonical N-Quads of N-Quads text, for the W3C test vectors (their inputs are N-Quads).
pub fn canonicalize_nquads(
    quads: &[oxrdf02::Quad],
    hash_sha384: bool,
) -> Result<String, CanonError> {
    let dataset = oxrdf02::Dataset::from_iter(quads.iter());
    let options = CanonicalizationOptions {
        hndq_call_limit: Some(HNDQ_CALL_LIMIT),
    };
    let result = if hash_sha384 {
        rdf_canon::canonicalize_with::<sha2::Sha384>(&dataset, &options)
    } else {
        rdf_canon::canonicalize_with::<Sha256>(&dataset, &options)
    };
    result.map_err(|e| CanonError::Canonicalize(e.to_string()))
}

fn unknown_context_in(message: &str) -> Option<String> {
    let start = message.find("unknown context ")? + "unknown context ".len();
    let rest = &message[start..];
    let end = rest.find(|c: char| c.is_whitespace() || c == '"' || c == '\'').unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// oxrdf 0.3 -> 0.2 (the model rdf-canon is written against; the terms are the same RDF 1.1
/// terms in both).
fn carry_quad(q: &oxrdf::Quad) -> Result<oxrdf02::Quad, CanonError> {
    let subject: oxrdf02::Subject = match &q.subject {
        oxrdf::NamedOrBlankNode::NamedNode(n) => named(n)?.into(),
        oxrdf::NamedOrBlankNode::BlankNode(b) => blank(b)?.into(),
    };
    let object: oxrdf02::Term = match &q.object {
        oxrdf::Term::NamedNode(n) => named(n)?.into(),
        oxrdf::Term::BlankNode(b) => blank(b)?.into(),
        oxrdf::Term::Literal(l) => literal(l)?.into(),
    };
    let graph = match &q.graph_name {
        oxrdf::GraphName::NamedNode(n) => oxrdf02::GraphName::NamedNode(named(n)?),
        oxrdf::GraphName::BlankNode(b) => oxrdf02::GraphName::BlankNode(blank(b)?),
        oxrdf::GraphName::DefaultGraph => oxrdf02::GraphName::DefaultGraph,
    };
    Ok(oxrdf02::Quad::new(
        subject,
        named(&q.predicate)?,
        object,
        graph,
    ))
}

fn named(n: &oxrdf::NamedNode) -> Result<oxrdf02::NamedNode, CanonError> {
    Ok(oxrdf02::NamedNode::new_unchecked(n.as_str()))
}

fn blank(b: &oxrdf::BlankNode) -> Result<oxrdf02::BlankNode, CanonError> {
    oxrdf02::BlankNode::new(b.as_str()).map_err(|e| CanonError::Canonicalize(e.to_string()))
}

fn literal(l: &oxrdf::Literal) -> Result<oxrdf02::Literal, CanonError> {
    Ok(match l.language() {
        Some(lang) => {
            oxrdf02::Literal::new_language_tagged_literal_unchecked(l.value(), lang)
        }
        None => oxrdf02::Literal::new_typed_literal(l.value(), named(&l.datatype().into_owned())?),
    })
}
