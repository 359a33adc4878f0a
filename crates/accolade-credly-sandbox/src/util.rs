//! Small helpers shared by the other modules: Credly timestamp formatting,
//! slugs, deterministic UUID-shaped ids and percent encoding/decoding.

use chrono::{DateTime, Utc};
use std::fmt::{self, Write as _};

/// Formats a timestamp the way Credly does: ISO-8601, UTC, milliseconds, `Z`.
pub fn fmt_ts(ts: &DateTime<Utc>) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Serde helper: serializes a timestamp in Credly's format.
pub fn ser_ts<S: serde::Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

/// Serde helper: serializes an optional timestamp in Credly's format (or `null`).
pub fn ser_opt_ts<S: serde::Serializer>(
    ts: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => ser_ts(ts, s),
        None => s.serialize_none(),
    }
}

/// Serde helper: serializes the date part of an optional timestamp (or `null`).
pub fn ser_opt_date<S: serde::Serializer>(
    ts: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => s.collect_str(&ts.format("%Y-%m-%d")),
        None => s.serialize_none(),
    }
}

/// Lower-case, ASCII-only slug (`"Rust Fundamentals"` → `"rust-fundamentals"`).
pub fn slugify(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            dash = true;
        }
    }
    if out.is_empty() {
        out.push_str("item");
    }
    out
}

/// SplitMix64 step: a tiny, stable mixing function used for deterministic ids.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a hash of a string (stable across runs and platforms).
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A UUID-v4-shaped id derived deterministically from `name` and `n`.
pub fn det_uuid(name: &str, n: u64) -> String {
    let a = splitmix64(fnv1a(name) ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let b = splitmix64(a ^ n);
    let hi = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    let mut s = String::with_capacity(36);
    let _ = write!(
        s,
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    );
    s
}

/// A fresh random UUID v4 string.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Percent-decodes one `application/x-www-form-urlencoded` component (`+` is a space).
pub fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a query string or form body into ordered `(key, value)` pairs.
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(p), String::new()),
        })
        .collect()
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved characters).
pub struct QueryEncoded<'a>(pub &'a str);

impl fmt::Display for QueryEncoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                f.write_char(b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Rust Fundamentals"), "rust-fundamentals");
        assert_eq!(slugify("  C++ & Rust!  "), "c-rust");
        assert_eq!(slugify("!!"), "item");
    }

    #[test]
    fn det_uuid_is_stable_and_v4_shaped() {
        let a = det_uuid("org", 1);
        assert_eq!(a, det_uuid("org", 1));
        assert_ne!(a, det_uuid("org", 2));
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 4);
    }

    #[test]
    fn decode_and_encode() {
        assert_eq!(
            form_decode("state%3A%3Aactive%7Cname%3A%3Ax"),
            "state::active|name::x"
        );
        assert_eq!(form_decode("a+b%2"), "a b%2");
        assert_eq!(form_decode("100%"), "100%");
        let pairs = parse_pairs("a=1&b=&c&d=x%20y");
        assert_eq!(pairs[3], ("d".into(), "x y".into()));
        assert_eq!(pairs[2], ("c".into(), String::new()));
        assert_eq!(
            QueryEncoded("state::active,draft|x y").to_string(),
            "state%3A%3Aactive%2Cdraft%7Cx%20y"
        );
    }
}
