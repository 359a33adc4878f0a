//! JSON-LD document -> RDF dataset -> RDFC-1.0 canonical N-Quads, the transformation of
//! `eddsa-rdfc-2022`. Contexts come only from [`crate::contexts`]; a document naming any other
//! context is refused, never fetched. Work is bounded for untrusted input: the document's size
//! is checked by the caller, the number of quads here, and RDFC-1.0's Hash N-Degree Quads calls
//! (the cost of poison graphs) by rdf-canon's call limit.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use oxjsonld::{JsonLdParser, JsonLdRemoteDocument};
use rdf_canon::CanonicalizationOptions;
use serde_json::Value;
use sha2::Sha256;

use crate::{contexts, first_degree};

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

/// The canonical N-Quads (RDFC-1.0, SHA-256) of a document Accolade built itself, through
/// [`to_rdf_by_shape`].
pub fn canonicalize_own(doc: &Value) -> Result<String, CanonError> {
    canonicalize_quads(&to_rdf_by_shape(doc)?)
}

/// The canonical N-Quads (RDFC-1.0, SHA-256) of a JSON-LD document.
pub fn canonicalize_json(json: &[u8]) -> Result<String, CanonError> {
    canonicalize_quads(&to_rdf(json)?)
}

/// The canonical N-Quads (RDFC-1.0, SHA-256) of a dataset.
pub fn canonicalize_quads(quads: &[oxrdf::Quad]) -> Result<String, CanonError> {
    let quads: Vec<oxrdf02::Quad> = quads.iter().map(carry_quad).collect::<Result<_, _>>()?;
    canonicalize_nquads(&quads, false)
}

/// The canonical N-Quads of a dataset in oxrdf 0.2 terms (the W3C test vectors' inputs are
/// N-Quads read into them), with SHA-384 instead of SHA-256 when asked (some of those tests).
///
/// When every blank node has a first-degree hash of its own ([`crate::first_degree`]: all of
/// Accolade's documents) the labels follow from those hashes alone; otherwise `rdf-canon` runs
/// the whole algorithm, within [`HNDQ_CALL_LIMIT`].
pub fn canonicalize_nquads(
    quads: &[oxrdf02::Quad],
    hash_sha384: bool,
) -> Result<String, CanonError> {
    if let Some(canonical) = canonicalize_first_degree(quads, hash_sha384) {
        return Ok(canonical);
    }
    canonicalize_full(quads, hash_sha384)
}

/// The quick path alone: `None` when the dataset needs the whole algorithm (for the tests that
/// hold the two paths equal).
pub fn canonicalize_first_degree(quads: &[oxrdf02::Quad], hash_sha384: bool) -> Option<String> {
    if hash_sha384 {
        first_degree::canonicalize::<sha2::Sha384>(quads)
    } else {
        first_degree::canonicalize::<Sha256>(quads)
    }
}

/// `rdf-canon`'s whole RDFC-1.0, whatever the dataset (the property test's reference).
pub fn canonicalize_full(quads: &[oxrdf02::Quad], hash_sha384: bool) -> Result<String, CanonError> {
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

/// Keys whose string values decide what the document means rather than carry a value (types
/// and `@vocab`-typed terms are expanded against the context): they stay in the shape.
const SHAPE_KEYS: &[&str] = &["@context", "type", "@type", "proofPurpose"];

/// Placeholder IRIs standing for a document's values in its shape.
const SLOT: &str = "urn:accolade:slot:";

/// Shapes remembered (Accolade issues a handful: credentials with or without optional fields,
/// status lists, proof configurations).
const MAX_SHAPES: usize = 256;

static SHAPES: LazyLock<Mutex<HashMap<String, Arc<Vec<oxrdf::Quad>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// JSON-LD to RDF of a document Accolade built, memoized by shape.
///
/// Processing the Open Badges and VC contexts costs milliseconds per document, and oxjsonld
/// keeps no processed context between documents. Accolade's documents differ only in their
/// values, so each *shape* (the document with every value string replaced by a numbered
/// placeholder IRI, types kept) is expanded once by the full processor, and a document's quads
/// are its shape's quads with the placeholders replaced by its values. This is exact for
/// documents whose values are literals or absolute IRIs and whose contexts are the compiled-in
/// ones, which is what Accolade writes; anything else (a value that would be read as a compact
/// IRI, a relative IRI) goes through the full processor. Never use it for documents from
/// elsewhere: an inline context could give a value a meaning the placeholder does not have.
/// The property test `by_shape_equals_the_full_processor` holds the two paths equal.
pub fn to_rdf_by_shape(doc: &Value) -> Result<Vec<oxrdf::Quad>, CanonError> {
    let mut slots = Vec::new();
    let skeleton = shape_of(doc, None, &mut slots);
    let key = serde_json::to_string(&skeleton).expect("JSON serializes");
    let cached = SHAPES.lock().expect("not poisoned").get(&key).cloned();
    let quads = match cached {
        Some(quads) => quads,
        None => {
            let quads = Arc::new(to_rdf(key.as_bytes())?);
            let mut shapes = SHAPES.lock().expect("not poisoned");
            if shapes.len() >= MAX_SHAPES {
                shapes.clear();
            }
            shapes.insert(key, Arc::clone(&quads));
            quads
        }
    };
    match fill(&quads, &slots) {
        Some(filled) => Ok(filled),
        None => to_rdf(&serde_json::to_vec(doc).expect("JSON serializes")),
    }
}

fn shape_of(value: &Value, key: Option<&str>, slots: &mut Vec<String>) -> Value {
    match value {
        Value::String(_) | Value::Array(_) if key.is_some_and(|k| SHAPE_KEYS.contains(&k)) => {
            value.clone()
        }
        Value::String(s) => {
            slots.push(s.clone());
            Value::String(format!("{SLOT}{}", slots.len() - 1))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| shape_of(v, key, slots)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape_of(v, Some(k), slots)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The shape's quads with its slots filled; `None` when a value cannot stand where its
/// placeholder stood.
fn fill(quads: &[oxrdf::Quad], slots: &[String]) -> Option<Vec<oxrdf::Quad>> {
    let slot = |s: &str| -> Option<Option<&String>> {
        match s.strip_prefix(SLOT) {
            Some(n) => Some(Some(slots.get(n.parse::<usize>().ok()?)?)),
            None => Some(None),
        }
    };
    let iri = |n: &oxrdf::NamedNode| -> Option<oxrdf::NamedNode> {
        match slot(n.as_str())? {
            None => Some(n.clone()),
            Some(value) => {
                let absolute = ["https://", "http://", "urn:", "did:"]
                    .iter()
                    .any(|p| value.starts_with(p));
                if !absolute {
                    return None;
                }
                oxrdf::NamedNode::new(value.as_str()).ok()
            }
        }
    };
    let mut out = Vec::with_capacity(quads.len());
    for q in quads {
        let subject = match &q.subject {
            oxrdf::NamedOrBlankNode::NamedNode(n) => iri(n)?.into(),
            other => other.clone(),
        };
        let object: oxrdf::Term = match &q.object {
            oxrdf::Term::NamedNode(n) => iri(n)?.into(),
            oxrdf::Term::Literal(l) => match slot(l.value())? {
                None => l.clone().into(),
                Some(value) => match l.language() {
                    Some(lang) => {
                        oxrdf::Literal::new_language_tagged_literal_unchecked(value.as_str(), lang)
                            .into()
                    }
                    None => oxrdf::Literal::new_typed_literal(value.as_str(), l.datatype()).into(),
                },
            },
            other => other.clone(),
        };
        let graph_name = match &q.graph_name {
            oxrdf::GraphName::NamedNode(n) => oxrdf::GraphName::NamedNode(iri(n)?),
            other => other.clone(),
        };
        if slot(q.predicate.as_str())?.is_some() {
            return None;
        }
        out.push(oxrdf::Quad::new(
            subject,
            q.predicate.clone(),
            object,
            graph_name,
        ));
    }
    Some(out)
}

fn unknown_context_in(message: &str) -> Option<String> {
    let start = message.find("unknown context ")? + "unknown context ".len();
    let rest = &message[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .unwrap_or(rest.len());
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
        Some(lang) => oxrdf02::Literal::new_language_tagged_literal_unchecked(l.value(), lang),
        None => oxrdf02::Literal::new_typed_literal(l.value(), named(&l.datatype().into_owned())?),
    })
}
