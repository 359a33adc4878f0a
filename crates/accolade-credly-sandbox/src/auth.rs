//! The credentials a request presents: HTTP Basic the way Credly clients send an
//! authorization token (the token is the username; `base64("token:")`,
//! `base64("token")` and `base64("token|")` are all accepted), or an OAuth access
//! token as `Bearer`; and an OAuth client's id and secret sent as HTTP Basic to the
//! token endpoint.

use axum::http::{header, HeaderMap};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine as _};

/// Standard alphabet, padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a request authenticates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented {
    /// An authorization token (HTTP Basic).
    Token(String),
    /// An OAuth access token (`Bearer`).
    Bearer(String),
}

/// The credential of an `Authorization: Basic …` or `Authorization: Bearer …` header, if any.
pub(crate) fn presented(headers: &HeaderMap) -> Option<Presented> {
    if let Some(t) = token_from_headers(headers) {
        return Some(Presented::Token(t));
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .then(|| Presented::Bearer(token.to_owned()))
}

/// An OAuth client's `(client_id, client_secret)` from `Authorization: Basic
/// base64("id:secret")` (RFC 6749 §2.3.1, as Open edX's draft client sends them).
pub(crate) fn client_from_headers(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(LENIENT.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = crate::util::form_decode(id);
    let secret = crate::util::form_decode(secret);
    (!id.is_empty()).then_some((id, secret))
}

/// Extracts the token from an `Authorization: Basic …` header, if any.
pub fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    token_from_basic(rest.trim())
}

/// Decodes the Basic credentials: the part before the first `:` (or everything),
/// without one trailing `|`.
pub fn token_from_basic(encoded: &str) -> Option<String> {
    let bytes = LENIENT.decode(encoded).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let user = match text.split_once(':') {
        Some((u, _)) => u,
        None => text.as_str(),
    };
    let user = user.strip_suffix('|').unwrap_or(user).trim();
    (!user.is_empty()).then(|| user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(token_from_basic(&enc("tok:")).as_deref(), Some("tok"));
        assert_eq!(token_from_basic(&enc("tok")).as_deref(), Some("tok"));
        assert_eq!(token_from_basic(&enc("tok|")).as_deref(), Some("tok"));
        assert_eq!(token_from_basic(&enc("tok:secret")).as_deref(), Some("tok"));
        assert_eq!(
            token_from_basic("dGVzdF9hcGlfa2V5").as_deref(),
            Some("test_api_key")
        );
        assert_eq!(token_from_basic(&enc(":")), None);
        assert_eq!(token_from_basic("***"), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("basic {}", enc("x:")).parse().unwrap(),
        );
        assert_eq!(token_from_headers(&h).as_deref(), Some("x"));
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(token_from_headers(&h), None);
        assert_eq!(presented(&h), Some(Presented::Bearer("x".into())));
        h.insert(header::AUTHORIZATION, "Bearer  ".parse().unwrap());
        assert_eq!(presented(&h), None);
    }

    #[test]
    fn client_credentials_in_basic() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {}", enc("my%20id:s3cret")).parse().unwrap(),
        );
        assert_eq!(
            client_from_headers(&h),
            Some(("my id".into(), "s3cret".into()))
        );
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {}", enc("no-colon")).parse().unwrap(),
        );
        assert_eq!(client_from_headers(&h), None);
    }
}
