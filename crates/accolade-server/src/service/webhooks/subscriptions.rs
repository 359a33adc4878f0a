//! Subscriptions: subscribing, listing, changing and deleting them, with input validation (URL,
//! its destination, event types, secret), secret generation, and sealing the secret under the
//! server key bound to the subscription id, so it is stored encrypted and a ciphertext copied
//! onto another subscription does not open. The plaintext secret leaves this
//! module only in the value returned by [`create`] and [`rotate_secret`], shown to the operator
//! once.

use accolade_domain::webhook::{is_known_event_type, EVENT_TYPES};
use accolade_store::{NewWebhook, Page, Paged, Store, StoreError, Webhook, WebhookPatch};
use base64::Engine;
use rand::RngCore;

use super::destination::Destinations;
use super::Webhooks;
use crate::service::secrets::SecretBox;

/// Why a subscription cannot be made or changed as asked.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The input is refused; `code` is the stable error code (`invalid_webhook_url`, ...).
    #[error("{detail}")]
    Invalid { code: &'static str, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SubscriptionError {
    fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        SubscriptionError::Invalid {
            code,
            detail: detail.into(),
        }
    }
}

/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;
/// Prefix of generated secrets (tells a leaked string's purpose at a glance).
pub const SECRET_PREFIX: &str = "whsec_";
const MIN_SECRET_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 256;

/// What an operator asks for when subscribing.
#[derive(Debug, Clone, Default)]
pub struct Subscribe {
    pub url: String,
    pub event_types: Vec<String>,
    /// `None`: generate one.
    pub secret: Option<String>,
    pub description: String,
    pub active: bool,
}

/// A subscription together with its secret, returned once.
pub struct WithSecret {
    pub webhook: Webhook,
    pub secret: String,
}

/// An absolute http(s) URL with a host, at most [`MAX_URL_LEN`] characters.
pub fn validate_url(url: &str) -> Result<(), SubscriptionError> {
    let bad = |why: &str| SubscriptionError::invalid("invalid_webhook_url", format!("url: {why}"));
    if url.len() > MAX_URL_LEN {
        return Err(bad(&format!("longer than {MAX_URL_LEN} characters")));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|e| bad(&format!("not an absolute URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("a host is required"));
    }
    Ok(())
}

/// The URL's host must be a destination: a public address, or one `allowed` lists (see
/// `destination`). Refused with `webhook_destination_private`.
pub async fn check_destination(url: &str, allowed: &Destinations) -> Result<(), SubscriptionError> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Ok(()); // validate_url refuses it
    };
    allowed.check(&parsed).await.map_err(|why| {
        SubscriptionError::invalid(
            "webhook_destination_private",
            format!(
                "url: {why}; webhooks are sent to public addresses only (an operator can allow \
                 this destination with the setting webhooks.allowed_destinations)"
            ),
        )
    })
}

/// Every type must be one webhooks deliver; duplicates are dropped, order kept.
pub fn validate_event_types(types: &[String]) -> Result<Vec<String>, SubscriptionError> {
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        if !is_known_event_type(t) {
            return Err(SubscriptionError::invalid(
                "unknown_event_type",
                format!(
                    "event type `{t}` cannot be subscribed to; use one of {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

fn validate_secret(secret: &str) -> Result<(), SubscriptionError> {
    let n = secret.chars().count();
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&n)
        || secret.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(SubscriptionError::invalid(
            "invalid_secret",
            format!(
                "secret must be {MIN_SECRET_LEN}-{MAX_SECRET_LEN} characters without spaces or \
                 control characters (or leave it out to have one generated)"
            ),
        ));
    }
    Ok(())
}

/// `whsec_` + 32 random bytes in URL-safe base64.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub async fn create(
    store: &dyn Store,
    hooks: &Webhooks,
    s: Subscribe,
) -> Result<WithSecret, SubscriptionError> {
    validate_url(&s.url)?;
    let event_types = validate_event_types(&s.event_types)?;
    check_destination(&s.url, &hooks.destinations).await?;
    let secrets = &hooks.secrets;
    let secret = match s.secret {
        Some(given) => {
            validate_secret(&given)?;
            given
        }
        None => generate_secret(),
    };
    let id = accolade_domain::ids::webhook_id();
    let webhook = store
        .create_webhook(NewWebhook {
            secret_ciphertext: secrets.seal(&secret, &id),
            id,
            url: s.url,
            event_types,
            description: s.description,
            active: s.active,
        })
        .await?;
    tracing::info!(webhook.id = %webhook.id, "webhook subscription {} created", webhook.id);
    Ok(WithSecret { webhook, secret })
}

pub async fn update(
    store: &dyn Store,
    hooks: &Webhooks,
    id: &str,
    mut patch: WebhookPatch,
) -> Result<Webhook, SubscriptionError> {
    if let Some(url) = &patch.url {
        validate_url(url)?;
    }
    if let Some(types) = &patch.event_types {
        patch.event_types = Some(validate_event_types(types)?);
    }
    if let Some(url) = &patch.url {
        check_destination(url, &hooks.destinations).await?;
    }
    Ok(store.update_webhook(id, patch).await?)
}

/// Replaces the secret (given or generated). Deliveries signed from now on use the new one.
pub async fn rotate_secret(
    store: &dyn Store,
    secrets: &SecretBox,
    id: &str,
    secret: Option<String>,
) -> Result<WithSecret, SubscriptionError> {
    let secret = match secret {
        Some(given) => {
            validate_secret(&given)?;
            given
        }
        None => generate_secret(),
    };
    let webhook = store
        .set_webhook_secret(id, secrets.seal(&secret, id))
        .await?;
    tracing::info!(webhook.id = %id, "webhook secret of {id} rotated");
    Ok(WithSecret { webhook, secret })
}

/// A page of subscriptions, oldest first.
pub async fn list(store: &dyn Store, page: Page) -> Result<Paged<Webhook>, StoreError> {
    store.list_webhooks(page).await
}

/// Every subscription, read page by page.
pub async fn all(store: &dyn Store) -> Result<Vec<Webhook>, StoreError> {
    let mut out = Vec::new();
    let mut offset = None;
    loop {
        let page = store
            .list_webhooks(Page::new(Some(Page::MAX_LIMIT), offset))
            .await?;
        out.extend(page.items);
        match page.next_offset {
            Some(o) => offset = Some(o),
            None => return Ok(out),
        }
    }
}

/// A subscription (never with its secret).
pub async fn get(store: &dyn Store, id: &str) -> Result<Webhook, StoreError> {
    store.get_webhook(id).await
}

/// Unsubscribes; the subscription's delivery log goes with it.
pub async fn delete(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    store.delete_webhook(id).await?;
    tracing::info!(webhook.id = %id, "webhook subscription {id} deleted");
    Ok(())
}

/// The subscription's secret in clear, for signing.
pub async fn secret(store: &dyn Store, secrets: &SecretBox, id: &str) -> anyhow::Result<String> {
    let sealed = store.webhook_secret(id).await?;
    secrets.open(&sealed, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: SubscriptionError) -> &'static str {
        match e {
            SubscriptionError::Invalid { code, .. } => code,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn urls() {
        assert!(validate_url("https://example.com/hook?x=1").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "example.com/hook",
            "ftp://example.com/",
            "https://",
            "/relative",
            "mailto:a@b",
        ] {
            assert_eq!(
                code(validate_url(bad).unwrap_err()),
                "invalid_webhook_url",
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            code(validate_url(&long).unwrap_err()),
            "invalid_webhook_url"
        );
    }

    #[test]
    fn event_types_and_secrets() {
        let t = accolade_domain::outbox::BADGE_REVOKED.to_string();
        assert_eq!(
            validate_event_types(&[t.clone(), t.clone()]).unwrap(),
            vec![t]
        );
        assert_eq!(
            code(validate_event_types(&["badge.awarded".into()]).unwrap_err()),
            "unknown_event_type"
        );
        let s = generate_secret();
        assert!(s.starts_with(SECRET_PREFIX) && s.len() == SECRET_PREFIX.len() + 43);
        assert_ne!(s, generate_secret());
        assert!(validate_secret(&s).is_ok());
        assert_eq!(
            code(validate_secret("short").unwrap_err()),
            "invalid_secret"
        );
        assert_eq!(
            code(validate_secret("has a space in the middle").unwrap_err()),
            "invalid_secret"
        );
    }
}
