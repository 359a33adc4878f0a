//! Open Badges 3.0 for Accolade, without I/O: the JSON-LD contexts compiled in
//! ([`contexts`]), JSON-LD to RDF and RDFC-1.0 canonical N-Quads ([`canon`], with a quick path for
//! blank nodes told apart by their first-degree hashes), Ed25519 Multikeys
//! ([`keys`]), `eddsa-rdfc-2022` Data Integrity proofs ([`proof`]), the documents Accolade issues
//! ([`credential`], [`did`], [`status_list`]), baked images ([`baking`]) and the checks of a
//! received credential ([`verify`]).
//!
//! Specifications: 1EdTech Open Badges 3.0, W3C Verifiable Credentials Data Model 2.0, Verifiable
//! Credential Data Integrity 1.0, Data Integrity EdDSA Cryptosuites 1.0, RDF Dataset
//! Canonicalization (RDFC-1.0), Bitstring Status List 1.0, did:web. docs/openbadges.md cites the
//! sections each part follows.

pub mod baking;
pub mod canon;
pub mod contexts;
pub mod credential;
pub mod did;
mod first_degree;
pub mod keys;
pub mod proof;
pub mod status_list;
pub mod verify;
