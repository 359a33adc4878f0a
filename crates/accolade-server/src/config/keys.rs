//! The settings that exist, and the two ways an operator names them besides the defaults: keys in
//! `accolade.toml` and `ACCOLADE_<SECTION>__<KEY>` environment variables.
//!
//! The list of settings is read from the embedded `config.default.toml`, so a key added there
//! is settable everywhere at once. Nothing is dropped silently: an unknown key in the file or an
//! unknown `ACCOLADE_` variable stops start-up with a message naming it and the closest valid
//! key, because a misspelt setting that is ignored looks exactly like one that works.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};

use super::{DEFAULT_CONFIG, NOT_SETTINGS};

/// Every setting (dotted key, e.g. `opencredit.s3.bucket`) with its default value.
pub fn defaults() -> BTreeMap<String, toml::Value> {
    #[allow(clippy::expect_used)] // the embedded defaults are checked by a unit test
    let table: toml::Table = DEFAULT_CONFIG.parse().expect("embedded defaults parse");
    let mut out = BTreeMap::new();
    flatten("", &table, &mut out);
    out
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            leaf => {
                out.insert(key, leaf.clone());
            }
        }
    }
}

/// The environment variable that sets `key`.
pub fn env_name(key: &str) -> String {
    format!("ACCOLADE_{}", key.replace('.', "__").to_ascii_uppercase())
}

/// The known key closest to `wanted` (edit distance), for "did you mean" hints.
fn closest<'a>(wanted: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (strsim::levenshtein(wanted, k), k))
        .min_by_key(|(d, k)| (*d, *k))
        .map(|(_, k)| k)
}

/// Checks that every key of an `accolade.toml` is a setting (tables only where the defaults have
/// tables). `source` names the file in messages.
pub fn check_file(text: &str, source: &str) -> anyhow::Result<()> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow!("{source} is not valid TOML: {}", e.message()))?;
    let known = defaults();
    let mut unknown = Vec::new();
    walk_file("", &table, &known, &mut unknown);
    match unknown.first() {
        None => Ok(()),
        Some(key) => {
            let hint = closest(key, known.keys().map(String::as_str))
                .map(|k| format!("; the closest setting is `{k}`"))
                .unwrap_or_default();
            let more = match unknown.len() {
                1 => String::new(),
                n => format!(" (and {} more unknown key(s))", n - 1),
            };
            bail!("{source}: unknown setting `{key}`{hint}{more}")
        }
    }
}

fn walk_file(
    prefix: &str,
    table: &toml::Table,
    known: &BTreeMap<String, toml::Value>,
    unknown: &mut Vec<String>,
) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if known.contains_key(&key) {
            continue; // a setting; its type is checked when the whole config is read
        }
        let section = format!("{key}.");
        match v {
            toml::Value::Table(t) if known.keys().any(|k| k.starts_with(&section)) => {
                walk_file(&key, t, known, unknown)
            }
            _ => unknown.push(key),
        }
    }
}

/// The settings given by `ACCOLADE_*` variables among `vars`, typed like their defaults.
/// An `ACCOLADE_` variable that is neither a setting nor one of [`NOT_SETTINGS`] is an error.
pub fn from_env(
    vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Vec<(String, toml::Value)>> {
    let known = defaults();
    let mut out = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("ACCOLADE_") else {
            continue;
        };
        if NOT_SETTINGS.contains(&name.as_str()) || rest.starts_with("TEST_") {
            continue;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        let Some(default) = known.get(&key) else {
            let names: Vec<String> = known.keys().map(|k| env_name(k)).collect();
            let hint = closest(&name, names.iter().map(String::as_str))
                .map(|k| format!("; the closest setting is {k}"))
                .unwrap_or_default();
            bail!(
                "unknown environment variable {name}: it is not a setting{hint} \
                 (settings are ACCOLADE_<SECTION>__<KEY>, see `accolade default-config`)"
            );
        };
        // The value is not repeated in the message: it may be a secret set in the wrong place.
        let value = typed(&raw, default).map_err(|e| anyhow!("{name}: {e}"))?;
        out.push((key, value));
    }
    Ok(out)
}

/// Reads an environment value as the type of the setting's default: text verbatim (so `0042`
/// stays text), numbers and booleans parsed, lists as TOML arrays (`["a", "b"]`) or
/// comma-separated (`a,b`).
fn typed(raw: &str, default: &toml::Value) -> anyhow::Result<toml::Value> {
    use toml::Value as V;
    Ok(match default {
        V::String(_) => V::String(raw.to_string()),
        V::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => V::Boolean(true),
            "false" | "0" | "no" | "off" => V::Boolean(false),
            _ => bail!("expected true or false"),
        },
        V::Integer(_) => V::Integer(
            raw.trim()
                .parse()
                .map_err(|_| anyhow!("expected an integer"))?,
        ),
        V::Float(_) => V::Float(
            raw.trim()
                .parse()
                .map_err(|_| anyhow!("expected a number"))?,
        ),
        V::Array(items) => {
            let trimmed = raw.trim();
            if trimmed.starts_with('[') {
                let doc: toml::Table = format!("v = {trimmed}")
                    .parse()
                    .map_err(|_| anyhow!("expected a TOML array like [\"a\", \"b\"]"))?;
                doc.get("v").cloned().unwrap_or(V::Array(vec![]))
            } else {
                let element = items.first().cloned().unwrap_or(V::String(String::new()));
                let parts = trimmed.split(',').map(str::trim).filter(|s| !s.is_empty());
                V::Array(
                    parts
                        .map(|p| typed(p, &element))
                        .collect::<anyhow::Result<_>>()?,
                )
            }
        }
        other => bail!("cannot be set from the environment ({})", other.type_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> anyhow::Result<Vec<(String, toml::Value)>> {
        from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn every_section_is_known_including_nested_ones() {
        let keys = defaults();
        for k in [
            "database.url",
            "opencredit.rate_limit_redis_url",
            "opencredit.s3.secret_access_key",
            "opencredit.mail.smtp_url",
            "event_bus.publish",
        ] {
            assert!(keys.contains_key(k), "{k}");
        }
        assert_eq!(
            env_name("opencredit.s3.bucket"),
            "ACCOLADE_OPENCREDIT__S3__BUCKET"
        );
    }

    #[test]
    fn environment_values_take_the_type_of_the_default() {
        let got = env(&[
            ("ACCOLADE_OPENCREDIT__S3__BUCKET", "0042"),
            ("ACCOLADE_EVENT_BUS__PUBLISH", "false"),
            ("ACCOLADE_HTTP__MAX_BODY_BYTES", "2048"),
            ("ACCOLADE_CREDLY__KEY_WARNING_DAYS", "14, 3"),
            ("ACCOLADE_EVENTS__TYPES", r#"["a.b.c", "d.e.f"]"#),
            ("PATH", "/bin"),
            ("ACCOLADE_CONFIG", "x.toml"),
            ("ACCOLADE_TEST_PG_URL", "postgres://x"),
        ])
        .unwrap();
        let map: BTreeMap<_, _> = got.into_iter().collect();
        assert_eq!(map.len(), 5, "{map:?}");
        assert_eq!(
            map["opencredit.s3.bucket"],
            toml::Value::String("0042".into())
        );
        assert_eq!(map["event_bus.publish"], toml::Value::Boolean(false));
        assert_eq!(map["http.max_body_bytes"], toml::Value::Integer(2048));
        assert_eq!(
            map["credly.key_warning_days"],
            toml::Value::Array(vec![14.into(), 3.into()])
        );
        assert_eq!(
            map["events.types"],
            toml::Value::Array(vec!["a.b.c".into(), "d.e.f".into()])
        );
    }

    #[test]
    fn unknown_variables_and_keys_name_the_closest_setting() {
        let e = env(&[("ACCOLADE_DATABASE_URL", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ACCOLADE_DATABASE_URL"), "{e}");
        assert!(e.contains("ACCOLADE_DATABASE__URL"), "{e}");
        let e = env(&[("ACCOLADE_OPENCREDIT__S3__BUCKT", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ACCOLADE_OPENCREDIT__S3__BUCKET"), "{e}");
        let e = env(&[("ACCOLADE_HTTP__MAX_BODY_BYTES", "big")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("integer"), "{e}");

        check_file(
            "[http]\nbind = \"127.0.0.1:1\"\n[opencredit.s3]\nbucket = \"b\"",
            "f",
        )
        .unwrap();
        let e = check_file("[http]\nbnd = \"x\"", "accolade.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`http.bnd`") && e.contains("`http.bind`"), "{e}");
        let e = check_file("[opencredit.s4]\nbucket = \"b\"", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("opencredit.s4"), "{e}");
        let e = check_file("[nosuch]\nx = 1", "f").unwrap_err().to_string();
        assert!(e.contains("`nosuch`"), "{e}");
    }
}
