//! The Open Credit-style badge platform API under `/v1.1` (seed 001; facts in
//! `reference/open-credit-api.md`).
//!
//! Apps call it with `X-Api-Key` + `X-Api-Secret`; members act through an `access_token`
//! parameter. Every answer is the `{meta, data}` envelope (`envelope.rs`), parameters come from
//! the query string and a form, JSON or multipart body (`params.rs`), and every request is
//! counted against the app's rate-limit tier (`limiter.rs`, applied in `ctx.rs`).

/// Starts a `/v1.1` handler: `let ctx = load!(state, headers, params);` authenticates the app
/// and token and counts the request, or returns the finished error answer.
macro_rules! load {
    ($state:expr, $headers:expr, $params:expr) => {
        match $crate::opencredit::ctx::Ctx::load(&$state, &$headers, &$params).await {
            Result::Ok(c) => c,
            Err(r) => return r,
        }
    };
}

pub mod apps;
pub mod awards;
pub mod badges;
pub mod credit;
pub mod ctx;
pub mod envelope;
pub mod limiter;
pub mod mail;
pub mod media;
pub mod members;
pub mod params;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use accolade_store::{OcMember, OcToken, Store, StoreError};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;

use crate::config::OpenCreditConfig;
use crate::state::AppState;

/// Tokens kept in memory at most (they never change, so the cache is only bounded).
const TOKEN_CACHE_MAX: usize = 100_000;
/// Members are re-read after this long (profiles change, seed 001: cache them briefly).
const MEMBER_TTL: Duration = Duration::from_secs(2);

/// What the `/v1.1` handlers share.
pub struct OpenCredit {
    pub limiter: limiter::Limiter,
    pub mailer: mail::Mailer,
    /// Where images are stored (media_root or an S3-compatible bucket).
    pub media: media::MediaStore,
    /// Workers that decode and render uploads, and the bounded wait for them.
    pub images: crate::service::blocking::Budget,
    tokens: Mutex<HashMap<String, OcToken>>,
    members: Mutex<HashMap<i64, (Instant, OcMember)>>,
}

impl OpenCredit {
    pub fn new(config: &OpenCreditConfig) -> anyhow::Result<OpenCredit> {
        Ok(OpenCredit {
            limiter: limiter::Limiter::new(&config.rate_limit_redis_url)?,
            mailer: mail::Mailer::new(&config.mail)?,
            media: media::MediaStore::new(config)?,
            images: media::image_budget(config),
            tokens: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
        })
    }

    /// A token by hash, from memory when it was seen before.
    pub async fn token(
        &self,
        store: &dyn Store,
        hash: &str,
    ) -> Result<Option<OcToken>, StoreError> {
        if let Some(t) = self.tokens.lock().get(hash) {
            return Ok(Some(t.clone()));
        }
        let found = store.oc_token(hash).await?;
        if let Some(t) = &found {
            let mut cache = self.tokens.lock();
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash.to_string(), t.clone());
        }
        Ok(found)
    }

    /// Drops a member from the cache (after a change made here).
    pub fn forget_member(&self, id: i64) {
        self.members.lock().remove(&id);
    }

    /// A member by id, from memory when read within the last two seconds.
    pub async fn member(&self, store: &dyn Store, id: i64) -> Result<Option<OcMember>, StoreError> {
        if let Some((at, m)) = self.members.lock().get(&id) {
            if at.elapsed() < MEMBER_TTL {
                return Ok(Some(m.clone()));
            }
        }
        let found = store.oc_member(id).await?;
        if let Some(m) = &found {
            let mut cache = self.members.lock();
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(id, (Instant::now(), m.clone()));
        }
        Ok(found)
    }
}

/// `accolade doctor`'s checks of the Open Credit API: the image store takes a write and gives
/// it back, and the mail transport works (the folder is writable, or the SMTP server answers).
pub async fn checks(state: &AppState) -> Vec<(crate::cli::Level, String)> {
    use crate::cli::Level;
    let mut out = Vec::new();
    let probe = "doctor/probe.txt";
    let media = &state.opencredit.media;
    let written = async {
        media.put(probe, b"accolade doctor".to_vec()).await?;
        anyhow::ensure!(
            media.get(probe).await?.as_deref() == Some(&b"accolade doctor"[..]),
            "the probe did not read back"
        );
        Ok(())
    }
    .await;
    let where_ = if state.config.opencredit.s3.bucket.is_empty() {
        format!("folder {}", state.config.opencredit.media_root.display())
    } else {
        format!("S3 bucket {}", state.config.opencredit.s3.bucket)
    };
    match written {
        Ok(()) => out.push((
            Level::Ok,
            format!("Open Credit images: {where_} is writable"),
        )),
        Err(e) => out.push((Level::Fail, format!("Open Credit images: {where_}: {e:#}"))),
    }
    match state.opencredit.mailer.check().await {
        Ok(what) => out.push((Level::Ok, format!("Open Credit mail: {what}"))),
        Err(e) => out.push((Level::Fail, format!("Open Credit mail: {e:#}"))),
    }
    out
}

async fn not_found() -> Response {
    envelope::OcError::not_found("endpoint").into_response()
}

/// The `/v1.1` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authenticate", post(members::authenticate))
        .route("/authenticate/register", post(members::register))
        .route("/authenticate/refresh", post(members::refresh))
        .route("/verify", get(members::verify_page).post(members::verify))
        .route("/me", get(members::me))
        .route("/me/emails", post(members::add_email))
        .route("/me/emails/resend", post(members::resend_verification))
        .route("/me/avatar", post(members::set_avatar))
        .route("/me/badges/created", get(badges::created))
        .route("/me/badges", get(credit::mine))
        .route("/members/{id}/badges", get(credit::of_member))
        .route("/member_badges", post(credit::give))
        .route(
            "/member_badges/{id}",
            get(credit::get).delete(credit::delete),
        )
        .route("/member_badges/{id}/accept", post(credit::accept))
        .route("/member_badges/{id}/reject", post(credit::reject))
        .route("/members", get(members::search))
        .route("/members/{id}", get(members::get_member))
        .route("/badges", get(badges::list).post(badges::create))
        .route(
            "/badges/{id}",
            get(badges::get).post(badges::update).delete(badges::delete),
        )
        .route("/media/{kind}/{file}", get(media::serve))
        .fallback(not_found)
}
