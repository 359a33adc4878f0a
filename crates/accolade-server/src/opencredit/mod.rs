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
pub mod media_store;
pub mod members;
pub mod params;
pub mod runtime;

pub use runtime::OpenCredit;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::service::checks::Level;
use crate::state::AppState;

/// `accolade doctor`'s checks of the Open Credit API: the image store takes a write and gives
/// it back, and the mail transport works (the folder is writable, or the SMTP server answers).
pub async fn checks(state: &AppState) -> Vec<(Level, String)> {
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
