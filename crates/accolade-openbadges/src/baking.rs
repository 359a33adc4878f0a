//! Baked badges (Open Badges 3.0 §5.3 "Baking"): the credential carried inside the badge image.
//! PNG: one uncompressed `iTXt` chunk, keyword `openbadgecredential`, before `IEND` (an earlier
//! one is replaced). SVG: an `<openbadges:credential>` element, namespace
//! `https://purl.imsglobal.org/ob/v3p0`, first in the root, holding the JSON in CDATA.

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
pub const PNG_KEYWORD: &str = "openbadgecredential";
pub const SVG_NAMESPACE: &str = "https://purl.imsglobal.org/ob/v3p0";

/// Why an image could not be baked or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BakingError {
    #[error("not a PNG image")]
    NotPng,
    #[error("the PNG image is truncated or a chunk is malformed")]
    BadChunk,
    #[error("not an SVG image")]
    NotSvg,
    #[error("the image carries no Open Badges credential")]
    NoCredential,
    #[error("the credential in the image is not UTF-8")]
    NotUtf8,
}

struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    /// The whole chunk (length, type, data, CRC).
    raw: &'a [u8],
}

fn chunks(png: &[u8]) -> Result<Vec<Chunk<'_>>, BakingError> {
    let mut rest = png
        .strip_prefix(PNG_SIGNATURE.as_slice())
        .ok_or(BakingError::NotPng)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err(BakingError::BadChunk);
        }
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let total = len.checked_add(12).ok_or(BakingError::BadChunk)?;
        if rest.len() < total {
            return Err(BakingError::BadChunk);
        }
        let kind: [u8; 4] = rest[4..8].try_into().expect("4 bytes");
        out.push(Chunk {
            kind,
            data: &rest[8..8 + len],
            raw: &rest[..total],
        });
        rest = &rest[total..];
        if &kind == b"IEND" {
            break;
        }
    }
    if out.last().map(|c| &c.kind) != Some(b"IEND") {
        return Err(BakingError::BadChunk);
    }
    Ok(out)
}

fn is_credential_chunk(chunk: &Chunk<'_>) -> bool {
    &chunk.kind == b"iTXt"
        && chunk.data.starts_with(PNG_KEYWORD.as_bytes())
        && chunk.data.get(PNG_KEYWORD.len()) == Some(&0)
}

/// `png` with `credential` baked in.
pub fn bake_png(png: &[u8], credential: &str) -> Result<Vec<u8>, BakingError> {
    let chunks = chunks(png)?;
    let mut data = Vec::with_capacity(PNG_KEYWORD.len() + 5 + credential.len());
    data.extend_from_slice(PNG_KEYWORD.as_bytes());
    // keyword NUL, compression flag 0 (uncompressed), method 0, empty language and
    // translated keyword (each NUL-terminated), then the UTF-8 text.
    data.extend_from_slice(&[0, 0, 0, 0, 0]);
    data.extend_from_slice(credential.as_bytes());
    let mut out = Vec::with_capacity(png.len() + data.len() + 12);
    out.extend_from_slice(&PNG_SIGNATURE);
    for chunk in &chunks {
        if is_credential_chunk(chunk) {
            continue;
        }
        if &chunk.kind == b"IEND" {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(b"iTXt");
            out.extend_from_slice(&data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        out.extend_from_slice(chunk.raw);
    }
    Ok(out)
}

/// The credential baked into `png`.
pub fn unbake_png(png: &[u8]) -> Result<String, BakingError> {
    let chunk = chunks(png)?
        .into_iter()
        .find(is_credential_chunk)
        .ok_or(BakingError::NoCredential)?;
    let rest = &chunk.data[PNG_KEYWORD.len() + 1..];
    let (&flag, rest) = rest.split_first().ok_or(BakingError::BadChunk)?;
    if flag != 0 {
        // The specification requires the uncompressed form.
        return Err(BakingError::BadChunk);
    }
    let rest = rest.get(1..).ok_or(BakingError::BadChunk)?;
    let language_end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(BakingError::BadChunk)?;
    let rest = &rest[language_end + 1..];
    let translated_end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(BakingError::BadChunk)?;
    String::from_utf8(rest[translated_end + 1..].to_vec()).map_err(|_| BakingError::NotUtf8)
}

/// `svg` with `credential` baked in.
pub fn bake_svg(svg: &str, credential: &str) -> Result<String, BakingError> {
    let root = svg.find("<svg").ok_or(BakingError::NotSvg)?;
    let open_end = root + svg[root..].find('>').ok_or(BakingError::NotSvg)?;
    let self_closing = svg[..open_end].ends_with('/');
    let attrs_end = if self_closing { open_end - 1 } else { open_end };
    let mut out = String::with_capacity(svg.len() + credential.len() + 128);
    out.push_str(&svg[..attrs_end]);
    if !svg[root..attrs_end].contains("xmlns:openbadges") {
        out.push_str(&format!(" xmlns:openbadges=\"{SVG_NAMESPACE}\""));
    }
    out.push('>');
    out.push_str("<openbadges:credential><![CDATA[");
    // `]]>` cannot occur in CDATA; JSON can hold it only inside a string, where `]]\u003e`
    // means the same.
    out.push_str(&credential.replace("]]>", "]]\\u003e"));
    out.push_str("]]></openbadges:credential>");
    if self_closing {
        out.push_str("</svg>");
        out.push_str(&svg[open_end + 1..]);
    } else {
        out.push_str(&svg[open_end + 1..]);
    }
    Ok(out)
}

/// The credential baked into `svg` (CDATA or plain text content).
pub fn unbake_svg(svg: &str) -> Result<String, BakingError> {
    if !svg.contains("<svg") {
        return Err(BakingError::NotSvg);
    }
    let start = svg
        .find("<openbadges:credential")
        .ok_or(BakingError::NoCredential)?;
    let open_end = start + svg[start..].find('>').ok_or(BakingError::NoCredential)?;
    if svg[..open_end].ends_with('/') {
        return Err(BakingError::NoCredential);
    }
    let body_end = open_end
        + svg[open_end..]
            .find("</openbadges:credential>")
            .ok_or(BakingError::NoCredential)?;
    let body = svg[open_end + 1..body_end].trim();
    let text = match body.strip_prefix("<![CDATA[") {
        Some(rest) => rest
            .strip_suffix("]]>")
            .ok_or(BakingError::NoCredential)?
            .to_string(),
        None => body
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    };
    Ok(text)
}

fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1x1 PNG (signature, IHDR, IDAT, IEND).
    fn tiny_png() -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut png = PNG_SIGNATURE.to_vec();
        chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        chunk(
            &mut png,
            b"IDAT",
            &[0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
        );
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn crc32_matches_the_png_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn png_bakes_once_and_reads_back() {
        let credential = r#"{"id":"urn:uuid:1","name":"Ü ]]> x"}"#;
        let baked = bake_png(&tiny_png(), credential).unwrap();
        assert_eq!(unbake_png(&baked).unwrap(), credential);
        let again = bake_png(&baked, "{}").unwrap();
        assert_eq!(unbake_png(&again).unwrap(), "{}");
        assert_eq!(
            chunks(&again)
                .unwrap()
                .iter()
                .filter(|c| is_credential_chunk(c))
                .count(),
            1
        );
        assert_eq!(&chunks(&again).unwrap().last().unwrap().kind, b"IEND");
        assert_eq!(unbake_png(&tiny_png()), Err(BakingError::NoCredential));
        assert_eq!(unbake_png(b"GIF89a"), Err(BakingError::NotPng));
        assert_eq!(
            unbake_png(&baked[..baked.len() - 3]),
            Err(BakingError::BadChunk)
        );
    }

    #[test]
    fn svg_bakes_and_reads_back() {
        let svg = r#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10"><circle r="4"/></svg>"#;
        let credential = r#"{"name":"a ]]> b"}"#;
        let baked = bake_svg(svg, credential).unwrap();
        assert!(baked.contains(r#"xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0""#));
        let read: serde_json::Value = serde_json::from_str(&unbake_svg(&baked).unwrap()).unwrap();
        assert_eq!(read["name"], "a ]]> b");
        let closed = bake_svg(r#"<svg xmlns="http://www.w3.org/2000/svg"/>"#, "{}").unwrap();
        assert!(
            closed.ends_with("</openbadges:credential></svg>"),
            "{closed}"
        );
        assert_eq!(unbake_svg(svg), Err(BakingError::NoCredential));
    }
}
