//! Rich text of badge fields (seed 001, "Rich Text Formatting").
//!
//! Only `description`, `criteria` and the evidence prompt accept HTML, and only the tags
//! `b i ul li p br a`, with `href` as the one attribute (on `a`). Input is handled in three steps:
//!
//! 1. [`check`] scans the input and names every illegal tag and attribute, so the API can refuse
//!    it with a 400 that says what to remove (the seed's purifier "will reject illegal tags or
//!    attributes"; it does not silently drop them).
//! 2. [`sanitize`] cuts a field that is longer than its maximum and lets ammonia re-serialise it.
//!    ammonia parses like a browser, so a cut that leaves `<p><b>text` comes back as
//!    `<p><b>text</b></p>`: unclosed tags are closed. Its output is what is stored, so even input
//!    that fooled the scanner can only ever store whitelisted markup.
//! 3. [`strip`] removes every tag for responses that did not ask for HTML (`X-Allow-Html: 1`).
//!
//! Lengths are counted in characters (Unicode scalar values) of the stored HTML.

use std::collections::{BTreeSet, HashMap, HashSet};

/// Tags allowed in rich-text fields.
pub const ALLOWED_TAGS: [&str; 7] = ["b", "i", "ul", "li", "p", "br", "a"];
/// URL schemes allowed in `href` (relative URLs are allowed too).
pub const ALLOWED_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// Markup the whitelist does not allow, by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(tags, attributes))]
pub struct IllegalMarkup {
    /// Illegal tag names, lower-case, sorted (`!--` stands for a comment, `!` for a doctype or
    /// other declaration).
    pub tags: Vec<String>,
    /// Illegal attributes as `tag.attribute` (or `a.href` for a URL with a forbidden scheme).
    pub attributes: Vec<String>,
}

fn describe(tags: &[String], attributes: &[String]) -> String {
    let mut parts = Vec::new();
    if !tags.is_empty() {
        parts.push(format!("illegal tags: {}", tags.join(", ")));
    }
    if !attributes.is_empty() {
        parts.push(format!("illegal attributes: {}", attributes.join(", ")));
    }
    format!(
        "{}; allowed are the tags {} and only href on a",
        parts.join("; "),
        ALLOWED_TAGS.join(" ")
    )
}

/// One tag seen by the scanner.
struct Tag {
    name: String,
    attributes: Vec<(String, Option<String>)>,
}

/// Finds the tags of `input` the way an HTML tokenizer starts them: `<` followed by a letter
/// opens a start tag, `</` followed by a letter an end tag, `<!` and `<?` a declaration or
/// comment. A `<` followed by anything else is text.
fn scan(input: &str) -> Vec<Tag> {
    let b = input.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let next = b.get(i + 1).copied();
        match next {
            Some(c) if c.is_ascii_alphabetic() => {
                let (tag, end) = scan_tag(b, i + 1);
                tags.push(tag);
                i = end;
            }
            Some(b'/') if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) => {
                let (mut tag, end) = scan_tag(b, i + 2);
                // Attributes on end tags are ignored by browsers; only the name matters.
                tag.attributes.clear();
                tags.push(tag);
                i = end;
            }
            Some(b'!') => {
                let comment = b[i..].starts_with(b"<!--");
                tags.push(Tag {
                    name: if comment { "!--" } else { "!" }.to_string(),
                    attributes: Vec::new(),
                });
                i = skip_past(b, i + 2, if comment { b"-->" } else { b">" });
            }
            Some(b'?') => {
                tags.push(Tag {
                    name: "?".to_string(),
                    attributes: Vec::new(),
                });
                i = skip_past(b, i + 2, b">");
            }
            _ => i += 1,
        }
    }
    tags
}

fn skip_past(b: &[u8], from: usize, needle: &[u8]) -> usize {
    b[from.min(b.len())..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map_or(b.len(), |p| from + p + needle.len())
}

/// Reads a tag name and its attributes starting at `start` (the first letter of the name).
/// Returns the tag and the index after its `>` (or the end of input).
fn scan_tag(b: &[u8], start: usize) -> (Tag, usize) {
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut i = start;
    while i < b.len() && !is_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    let name = String::from_utf8_lossy(&b[start..i]).to_ascii_lowercase();
    let mut attributes = Vec::new();
    loop {
        while i < b.len() && (is_space(b[i]) || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (Tag { name, attributes }, i);
        }
        if b[i] == b'>' {
            return (Tag { name, attributes }, i + 1);
        }
        let name_start = i;
        // The first character of an attribute name may be `=` (the tokenizer treats it as
        // part of the name), so always take at least one.
        i += 1;
        while i < b.len() && !is_space(b[i]) && !matches!(b[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let attr = String::from_utf8_lossy(&b[name_start..i]).to_ascii_lowercase();
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let quote = b[i];
                let v_start = i + 1;
                i = v_start;
                while i < b.len() && b[i] != quote {
                    i += 1;
                }
                value = Some(String::from_utf8_lossy(&b[v_start..i.min(b.len())]).into_owned());
                i = (i + 1).min(b.len());
            } else {
                let v_start = i;
                while i < b.len() && !is_space(b[i]) && b[i] != b'>' {
                    i += 1;
                }
                value = Some(String::from_utf8_lossy(&b[v_start..i]).into_owned());
            }
        }
        attributes.push((attr, value));
    }
}

/// Whether `href` uses an allowed scheme (or none: a relative URL).
fn href_allowed(href: &str) -> bool {
    // Browsers ignore ASCII whitespace and control characters inside a scheme
    // (`java\tscript:`), so they are removed before looking at it.
    let cleaned: String = href
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .collect();
    let cleaned = decode_entities(&cleaned);
    // An entity this decoder does not know may be one a browser decodes (HTML5 has `&colon;`,
    // `&sol;`, …): such an href is refused rather than guessed at.
    if has_unknown_entity(&cleaned) {
        return false;
    }
    // `//host` and `\\host` (browsers read `\` as `/`) leave the site: not relative links.
    let mut lead = cleaned.chars().take(2);
    if lead.next().is_some_and(|c| c == '/' || c == '\\')
        && lead.next().is_some_and(|c| c == '/' || c == '\\')
    {
        return false;
    }
    match cleaned.find(':') {
        None => true,
        Some(colon) => {
            let scheme = &cleaned[..colon];
            // A colon after a path, query or fragment character is not a scheme.
            if scheme.contains(['/', '?', '#']) {
                return true;
            }
            ALLOWED_SCHEMES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
        }
    }
}

/// Whether `s` still holds something shaped like a character reference (`&name;`, `&#…;`).
fn has_unknown_entity(s: &str) -> bool {
    s.match_indices('&').any(|(at, _)| {
        let rest = &s[at + 1..];
        let name_len = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '#')
            .count();
        name_len > 0 && rest[name_len..].starts_with(';')
    })
}

/// Names the illegal markup of a rich-text field; `Ok` when it only uses the whitelist.
pub fn check(input: &str) -> Result<(), IllegalMarkup> {
    let mut tags = BTreeSet::new();
    let mut attributes = BTreeSet::new();
    for tag in scan(input) {
        if !ALLOWED_TAGS.contains(&tag.name.as_str()) {
            tags.insert(tag.name);
            continue;
        }
        for (attr, value) in &tag.attributes {
            let allowed =
                tag.name == "a" && attr == "href" && value.as_deref().is_none_or(href_allowed);
            if !allowed {
                attributes.insert(format!("{}.{attr}", tag.name));
            }
        }
    }
    if tags.is_empty() && attributes.is_empty() {
        Ok(())
    } else {
        Err(IllegalMarkup {
            tags: tags.into_iter().collect(),
            attributes: attributes.into_iter().collect(),
        })
    }
}

/// Whether a plain-text field contains markup (fields other than the rich-text ones accept none).
pub fn contains_markup(input: &str) -> bool {
    !scan(input).is_empty()
}

fn cleaner() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::empty();
    b.tags(ALLOWED_TAGS.into_iter().collect::<HashSet<_>>())
        .tag_attributes(HashMap::from([("a", HashSet::from(["href"]))]))
        .url_schemes(ALLOWED_SCHEMES.into_iter().collect::<HashSet<_>>())
        .link_rel(None)
        .strip_comments(true);
    b
}

/// Checks a rich-text field and returns what is stored: the whitelisted HTML, re-serialised with
/// every tag closed, cut to at most `max_chars` characters when it is longer.
pub fn sanitize(input: &str, max_chars: usize) -> Result<String, IllegalMarkup> {
    check(input)?;
    // A byte-order mark is invisible and the HTML parser drops it only at the very start, which
    // would make stored text change when it is saved again; it is removed everywhere.
    let without_bom;
    let input = if input.contains('\u{feff}') {
        without_bom = input.replace('\u{feff}', "");
        without_bom.as_str()
    } else {
        input
    };
    let clean = cleaner();
    let mut out = clean.clean(input).to_string();
    if out.chars().count() <= max_chars {
        return Ok(out);
    }
    // Cut the input, re-serialise (which closes what the cut left open), and cut further while
    // the closing tags push the result over the maximum.
    let mut keep = max_chars.min(input.chars().count());
    loop {
        let cut: String = input.chars().take(keep).collect();
        out = clean.clean(&cut).to_string();
        let len = out.chars().count();
        if len <= max_chars || keep == 0 {
            return Ok(out);
        }
        keep = keep.saturating_sub((len - max_chars).max(1));
    }
}

/// The text of a rich-text field without any tag (the answer unless `X-Allow-Html: 1`).
/// `<br>`, `</p>` and `</li>` become line breaks so words of adjacent blocks do not run together.
pub fn strip(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut i = 0;
    let mut text_start = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let next = b.get(i + 1).copied();
        let tag_end = match next {
            Some(c) if c.is_ascii_alphabetic() => Some(scan_tag(b, i + 1)),
            Some(b'/') if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) => {
                Some(scan_tag(b, i + 2))
            }
            Some(b'!') => {
                let comment = b[i..].starts_with(b"<!--");
                let end = skip_past(b, i + 2, if comment { b"-->" } else { b">" });
                Some((
                    Tag {
                        name: String::new(),
                        attributes: Vec::new(),
                    },
                    end,
                ))
            }
            _ => None,
        };
        match tag_end {
            Some((tag, end)) => {
                out.push_str(&decode_entities(&html[text_start..i]));
                let closing = next == Some(b'/');
                if tag.name == "br" || (closing && (tag.name == "p" || tag.name == "li")) {
                    out.push('\n');
                }
                i = end;
                text_start = end;
            }
            None => i += 1,
        }
    }
    out.push_str(&decode_entities(&html[text_start.min(html.len())..]));
    let text = out.trim().to_string();
    // Decoding `&lt;img …&gt;` gives markup back; plain text must never contain a tag, so
    // then every `<` stays escaped.
    if contains_markup(&text) {
        text.replace('<', "&lt;")
    } else {
        text
    }
}

/// Decodes the character references an HTML serialiser writes (`&amp; &lt; &gt; &quot; &#39;
/// &nbsp;` and numeric ones); anything else is left as it is.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        // Entity names are short; look for the `;` among the next few characters only.
        let semi = rest
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .map(|(at, _)| at);
        let decoded = semi.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_allowed_tag_is_accepted_and_kept() {
        for (input, stored) in [
            ("<b>bold</b>", "<b>bold</b>"),
            ("<i>it</i>", "<i>it</i>"),
            (
                "<ul><li>one</li><li>two</li></ul>",
                "<ul><li>one</li><li>two</li></ul>",
            ),
            ("<p>para</p>", "<p>para</p>"),
            ("a<br>b", "a<br>b"),
            ("a<br/>b", "a<br>b"),
            (
                r#"<a href="https://example.org/x?a=1&amp;b=2">link</a>"#,
                r#"<a href="https://example.org/x?a=1&amp;b=2">link</a>"#,
            ),
            (
                r#"<a href="/relative">r</a>"#,
                r#"<a href="/relative">r</a>"#,
            ),
            (
                r#"<a href="mailto:x@example.org">m</a>"#,
                r#"<a href="mailto:x@example.org">m</a>"#,
            ),
            ("<B>upper</B>", "<b>upper</b>"),
        ] {
            assert_eq!(sanitize(input, 500).as_deref(), Ok(stored), "{input}");
        }
    }

    #[test]
    fn forbidden_tags_are_named() {
        for (input, tag) in [
            ("<script>alert(1)</script>", "script"),
            ("<img src=x onerror=alert(1)>", "img"),
            ("<div>x</div>", "div"),
            ("<span>x</span>", "span"),
            ("<iframe src='//evil'></iframe>", "iframe"),
            ("<style>p{}</style>", "style"),
            ("<h1>t</h1>", "h1"),
            ("<svg onload=alert(1)>", "svg"),
            ("<em>x</em>", "em"),
            ("<!-- c -->", "!--"),
            ("<!DOCTYPE html>", "!"),
            ("<?xml version='1.0'?>", "?"),
            ("x</script>", "script"),
        ] {
            let err = sanitize(input, 500).unwrap_err();
            assert_eq!(err.tags, vec![tag.to_string()], "{input}");
            assert!(err.to_string().contains(tag), "{err}");
        }
    }

    #[test]
    fn forbidden_attributes_are_named() {
        for (input, attr) in [
            (r#"<a href="https://x" onclick="evil()">x</a>"#, "a.onclick"),
            (r#"<b style="color:red">x</b>"#, "b.style"),
            (r#"<p class=big>x</p>"#, "p.class"),
            (r#"<a title="t" href="/">x</a>"#, "a.title"),
            (r#"<a href="javascript:alert(1)">x</a>"#, "a.href"),
            (r#"<a href="JaVa&#115;cript:alert(1)">x</a>"#, "a.href"),
            ("<a href=\"java\tscript:alert(1)\">x</a>", "a.href"),
            (r#"<a href="data:text/html,<b>x">x</a>"#, "a.href"),
            (r#"<p href="/">x</p>"#, "p.href"),
            // Issue 16 row 15: an HTML5 entity for the colon, and links leaving the site.
            (r#"<a href="javascript&colon;alert(1)">x</a>"#, "a.href"),
            (r#"<a href="javascript&#x3a;alert(1)">x</a>"#, "a.href"),
            (r#"<a href="//evil.example">x</a>"#, "a.href"),
            (r#"<a href="\\evil.example">x</a>"#, "a.href"),
            (r#"<a href="/\evil.example">x</a>"#, "a.href"),
        ] {
            let err = sanitize(input, 500).unwrap_err();
            assert_eq!(err.attributes, vec![attr.to_string()], "{input}");
            assert!(err.tags.is_empty(), "{input}");
        }
    }

    #[test]
    fn several_problems_are_all_reported() {
        let err =
            check(r#"<div onclick="x"><b style="s">a</b><script></script></div>"#).unwrap_err();
        assert_eq!(err.tags, vec!["div", "script"]);
        assert_eq!(err.attributes, vec!["b.style"]);
        assert_eq!(
            err.to_string(),
            "illegal tags: div, script; illegal attributes: b.style; allowed are the tags b i ul li p br a and only href on a"
        );
    }

    #[test]
    fn a_less_than_sign_in_text_is_not_a_tag() {
        assert_eq!(
            sanitize("1 < 2 and 3 <= 4", 100).as_deref(),
            Ok("1 &lt; 2 and 3 &lt;= 4")
        );
        assert_eq!(strip("1 &lt; 2 and 3 &lt;= 4"), "1 < 2 and 3 <= 4");
    }

    #[test]
    fn cutting_closes_unclosed_tags_within_the_maximum() {
        let input = "<p><b>Complete every module of the course</b> and pass the final exam</p>";
        let out = sanitize(input, 30).unwrap();
        assert!(out.chars().count() <= 30, "{out}");
        assert!(out.starts_with("<p><b>Complete"), "{out}");
        assert!(out.ends_with("</b></p>"), "{out}");
        // What was stored re-checks clean and is stable.
        check(&out).unwrap();
        assert_eq!(sanitize(&out, 30).unwrap(), out);
    }

    #[test]
    fn cutting_inside_a_tag_drops_the_partial_tag() {
        let input = r#"<p>Read <a href="https://example.org/a/long/path">the guide</a></p>"#;
        let out = sanitize(input, 20).unwrap();
        assert!(out.chars().count() <= 20, "{out}");
        assert!(!out.contains("<a "), "{out}");
        check(&out).unwrap();
    }

    #[test]
    fn short_input_is_not_cut() {
        assert_eq!(sanitize("<p>short</p>", 12).as_deref(), Ok("<p>short</p>"));
    }

    #[test]
    fn unclosed_tags_are_closed_even_without_a_cut() {
        assert_eq!(
            sanitize("<ul><li>a<li>b", 100).as_deref(),
            Ok("<ul><li>a</li><li>b</li></ul>")
        );
    }

    #[test]
    fn strip_removes_every_tag() {
        assert_eq!(
            strip(
                r#"<p>Pass <b>all</b> <a href="/x">modules</a></p><ul><li>one</li><li>two</li></ul>"#
            ),
            "Pass all modules\none\ntwo"
        );
        assert_eq!(strip("a<br>b &amp; c"), "a\nb & c");
        assert_eq!(strip("no markup"), "no markup");
    }

    #[test]
    fn escaped_markup_does_not_come_back_as_a_tag() {
        let stored = sanitize("&lt;img src=x onerror=alert(1)&gt;", 500).unwrap();
        let text = strip(&stored);
        assert!(!contains_markup(&text), "{text}");
        assert_eq!(text, "&lt;img src=x onerror=alert(1)>");
        assert_eq!(strip("a &lt;/b&gt; c"), "a &lt;/b> c");
    }

    #[test]
    fn plain_fields_detect_markup() {
        assert!(contains_markup("Hello <b>x</b>"));
        assert!(contains_markup("<!-- c -->"));
        assert!(!contains_markup("1 < 2 > 0"));
        assert!(!contains_markup("AT&T"));
    }

    #[test]
    fn entities_decode() {
        assert_eq!(
            decode_entities("&amp;&lt;&gt;&quot;&#39;&#x41;&bogus;&"),
            "&<>\"'A&bogus;&"
        );
        // Found by the fuzz test: multi-byte characters right after an `&`.
        assert_eq!(
            decode_entities("& A\u{1B132}\u{a1}\u{115B8}"),
            "& A\u{1B132}\u{a1}\u{115B8}"
        );
    }
}
