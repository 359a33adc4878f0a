//! Form bodies (`application/x-www-form-urlencoded`) as name/value pairs, so a field may repeat
//! (several selected checkboxes), which serde's form decoding does not allow.

/// The decoded pairs, in order.
pub fn fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of a field, or "" when absent.
pub fn one<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_are_kept_and_values_decoded() {
        let f = fields(b"csrf=a%2Bb&org=1&org=2&name=A+B");
        assert_eq!(one(&f, "csrf"), "a+b");
        assert_eq!(one(&f, "name"), "A B");
        assert_eq!(f.iter().filter(|(k, _)| k == "org").count(), 2);
        assert_eq!(one(&f, "missing"), "");
    }
}
