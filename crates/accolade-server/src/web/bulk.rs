//! Bulk manual awards and revocations from a template's page: a pasted CSV or JSON list of
//! learners, award or revoke, a reason, a dry run; the answer lists each learner's outcome.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::forms::one;
use super::pages::{error_page, render_with, unavailable};
use super::session::AdminForm;
use crate::service::awards::{AwardError, ChangedBy};
use crate::service::bulk::{self, BulkAction, BulkError, BulkReport, BulkRequest};
use crate::service::templates;
use crate::state::AppState;

/// Learner rows shown (the counts cover all).
const SHOWN: usize = 500;

#[derive(Template)]
#[template(path = "admin/bulk.html")]
pub struct BulkPage {
    pub username: String,
    pub csrf: String,
    pub template_id: String,
    pub name: String,
    pub report: BulkReport,
    pub shown: usize,
}

/// `POST /admin/templates/{id}/bulk` with `list`, `action` (`award`/`revoke`), `reason` and
/// `dry_run`.
pub async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, fields }: AdminForm,
) -> Response {
    let action = match one(&fields, "action") {
        "award" => BulkAction::Award,
        "revoke" => BulkAction::Revoke,
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose award or revoke."),
    };
    let text = one(&fields, "list").replace("\r\n", "\n");
    let who = admin.session.username.clone();
    let outcome = match bulk::parse_list(&text) {
        Ok(learners) => {
            let req = BulkRequest {
                action,
                learners,
                reason: one(&fields, "reason").to_string(),
                dry_run: one(&fields, "dry_run") == "1",
            };
            bulk::run(&*state.store, &id, req, ChangedBy::Admin(&who)).await
        }
        Err(e) => Err(e),
    };
    let report = match outcome {
        Ok(r) => r,
        Err(BulkError::Store(accolade_store::StoreError::NotFound { .. })) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "There is no badge template with this id.",
            )
        }
        Err(BulkError::Store(e)) | Err(BulkError::Award(AwardError::Store(e))) => {
            return unavailable("bulk change: database", e)
        }
        Err(e) => return error_page(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    tracing::info!(template = %id, by = %who, changed = report.changed, dry_run = report.dry_run, "bulk change from the admin UI");
    let name = templates::name_or_id(&*state.store, &id).await;
    render_with(
        StatusCode::OK,
        &BulkPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            template_id: id,
            name,
            shown: report.results.len().min(SHOWN),
            report,
        },
    )
}
