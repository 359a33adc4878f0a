//! `accolade config show`: the effective settings after every layer, as TOML, with secrets
//! masked, so an operator can see what the process will really use.

use super::{redact_url, Config};

/// What a secret that is set looks like in the output.
pub const MASK: &str = "***";

impl Config {
    /// A copy safe to print: secret values become [`MASK`], passwords in URLs `***`.
    pub fn masked(&self) -> Config {
        let mut c = self.clone();
        let hide = |s: &mut String| {
            if !s.is_empty() {
                *s = MASK.to_string();
            }
        };
        hide(&mut c.secrets.key);
        hide(&mut c.opencredit.s3.secret_access_key);
        hide(&mut c.http.metrics_token);
        for url in [
            &mut c.database.url,
            &mut c.event_bus.redis_url,
            &mut c.opencredit.rate_limit_redis_url,
            &mut c.opencredit.mail.smtp_url,
        ] {
            *url = redact_url(url);
        }
        c
    }

    /// The masked settings as TOML.
    pub fn show(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(&self.masked())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_appear_and_the_rest_reads_back() {
        let mut c = Config::defaults();
        c.secrets.key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into();
        c.opencredit.s3.secret_access_key = "s3-very-secret".into();
        c.database.url = "postgres://u:pw-db@h/db".into();
        c.event_bus.redis_url = "redis://:pw-redis@h:6379/0".into();
        c.opencredit.mail.smtp_url = "smtp://me:pw-mail@h:25".into();
        let text = c.show().unwrap();
        for secret in ["AQEBAQEB", "s3-very-secret", "pw-db", "pw-redis", "pw-mail"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let back: toml::Table = text.parse().unwrap();
        assert_eq!(back["secrets"]["key"].as_str(), Some(MASK));
        assert_eq!(back["http"]["bind"].as_str(), Some("127.0.0.1:8080"));
        assert_eq!(
            back["database"]["url"].as_str(),
            Some("postgres://u:***@h/db")
        );
    }
}
