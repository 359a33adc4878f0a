//! HTTP Basic authentication the way Credly clients send it: the token is the
//! username; `base64("token:")`, `base64("token")` and `base64("token|")` are
//! all accepted.

use axum::http::{header, HeaderMap};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine as _};

/// Standard alphabet, padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

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
    }
}
