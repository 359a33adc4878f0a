//! Credly organizations (add, rotate key, sync), webhook notifications, and the public webhook
//! receiver `POST /badges/credly/webhook/`.

use accolade_credly::CredlyError;
use accolade_store::{CredlyNotification, CredlyOrganization, SyncSummary};
use axum::extract::{FromRequest, Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{ListBody, PageQuery};
use super::extract::{ApiJson, ApiQuery};
use crate::error::{ApiError, ApiResult};
use crate::service::credly::orgs::{self, key_status, KeyStatus};
use crate::service::credly::webhook::{self, Notification, Receipt};
use crate::service::credly::{sync, Credly, CredlyFailure};
use crate::state::AppState;

/// How a failed Credly operation is answered over HTTP: a key Credly refuses or an unknown
/// organization is the caller's to fix (400), Credly failing is 502, an expired key 409.
impl From<CredlyFailure> for ApiError {
    fn from(f: CredlyFailure) -> Self {
        match f {
            CredlyFailure::Credly(e) => match e {
                CredlyError::Unauthorized(_) | CredlyError::Forbidden(_) => ApiError::bad_request(
                    "credly_key_rejected",
                    format!(
                        "{e}. Check that the API key is current and belongs to this organization."
                    ),
                ),
                CredlyError::NotFound(_) => ApiError::bad_request(
                    "credly_org_not_found",
                    format!("{e}. Check the organization UUID."),
                ),
                other => ApiError::BadGateway {
                    code: other.code(),
                    detail: other.to_string(),
                },
            },
            e @ CredlyFailure::KeyExpired { .. } => ApiError::Conflict {
                code: "credly_key_expired",
                detail: e.to_string(),
            },
            CredlyFailure::Store(e) => e.into(),
            CredlyFailure::Invalid { code, detail } => ApiError::bad_request(code, detail),
            CredlyFailure::Backlog { detail } => ApiError::Overloaded {
                code: "webhook_backlog_full",
                detail,
                retry_after_secs: 60,
            },
            CredlyFailure::Internal(m) => ApiError::Internal(anyhow::anyhow!(m)),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, add_org))
        .routes(routes!(get_org))
        .routes(routes!(rotate_key))
        .routes(routes!(sync_org))
        .routes(routes!(list_notifications))
}

/// The public webhook receiver (no bearer token: Credly cannot send one; notifications are
/// verified by fetching the event from Credly). Credly's documented path has a trailing slash;
/// both forms are served.
pub fn webhook_router() -> Router<AppState> {
    Router::new()
        .route("/badges/credly/webhook/", post(receive_webhook))
        .route("/badges/credly/webhook", post(receive_webhook))
}

/// A Credly organization. The API key is never returned, only its last four characters.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationBody {
    pub uuid: String,
    pub name: String,
    /// `…` followed by the key's last four characters.
    pub api_key: String,
    pub key_created_at: DateTime<Utc>,
    pub key: KeyStatus,
    pub last_sync_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Object>)]
    pub last_sync: Option<SyncSummary>,
    /// The organization on the Credly dashboard.
    pub dashboard_url: String,
    pub created_at: DateTime<Utc>,
}

impl OrganizationBody {
    fn new(credly: &Credly, o: CredlyOrganization) -> Self {
        let base = credly.config.effective_base_url().trim_end_matches('/');
        OrganizationBody {
            dashboard_url: format!("{base}/mgmt/organizations/{}/badges/templates", o.id),
            key: key_status(
                o.key_expires_at,
                Utc::now(),
                &credly.config.key_warning_days,
            ),
            uuid: o.id,
            name: o.name,
            api_key: format!("…{}", o.api_key_last4),
            key_created_at: o.key_created_at,
            last_sync_at: o.last_sync_at,
            last_sync: o.last_sync,
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddOrganization {
    /// Credly organization UUID.
    #[schema(format = "uuid")]
    pub uuid: String,
    /// An authorization token of that organization: 8-512 bytes without `:` or control
    /// characters.
    #[schema(
        min_length = 8,
        max_length = 512,
        pattern = r"^[^:\x00-\x1F\x7F-\x9F]*$"
    )]
    pub api_key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// The new authorization token: 8-512 bytes without `:` or control characters.
    #[schema(
        min_length = 8,
        max_length = 512,
        pattern = r"^[^:\x00-\x1F\x7F-\x9F]*$"
    )]
    pub api_key: String,
}

#[utoipa::path(get, path = "/credly/organizations", tag = "credly",
    responses((status = 200, body = ListBody<OrganizationBody>)), security(("bearer" = [])))]
pub async fn list_orgs(
    State(state): State<AppState>,
) -> ApiResult<Json<ListBody<OrganizationBody>>> {
    let orgs = orgs::list(&*state.store).await?;
    Ok(Json(ListBody {
        data: orgs
            .into_iter()
            .map(|o| OrganizationBody::new(&state.credly, o))
            .collect(),
        next_offset: None,
    }))
}

/// Add an organization. Accolade checks the key with Credly and stores Credly's name for it.
#[utoipa::path(post, path = "/credly/organizations", tag = "credly", request_body = AddOrganization,
    responses((status = 201, body = OrganizationBody),
              (status = 400, description = "invalid_organization_id, invalid_api_key, credly_key_rejected, credly_org_not_found, credly_key_expired", body = crate::error::ErrorBody),
              (status = 409, description = "organization_exists", body = crate::error::ErrorBody),
              (status = 502, description = "Credly unreachable or failing", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_org(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AddOrganization>,
) -> ApiResult<(StatusCode, Json<OrganizationBody>)> {
    let org = orgs::add(&state.credly, &*state.store, &body.uuid, &body.api_key).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrganizationBody::new(&state.credly, org)),
    ))
}

#[utoipa::path(get, path = "/credly/organizations/{uuid}", tag = "credly", params(("uuid" = String, Path)),
    responses((status = 200, body = OrganizationBody), (status = 404, description = "organization_not_found", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_org(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> ApiResult<Json<OrganizationBody>> {
    let org = orgs::get(&*state.store, &orgs::normalize_id(&uuid)).await?;
    Ok(Json(OrganizationBody::new(&state.credly, org)))
}

/// Replace the organization's API key (checked with Credly first; no downtime).
#[utoipa::path(post, path = "/credly/organizations/{uuid}/key", tag = "credly", params(("uuid" = String, Path)),
    request_body = RotateKey,
    responses((status = 200, body = OrganizationBody),
              (status = 400, description = "invalid_organization_id, invalid_api_key, credly_key_rejected, credly_org_not_found", body = crate::error::ErrorBody),
              (status = 404, description = "organization_not_found", body = crate::error::ErrorBody),
              (status = 409, description = "credly_key_expired", body = crate::error::ErrorBody),
              (status = 502, description = "Credly unreachable or failing", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    ApiJson(body): ApiJson<RotateKey>,
) -> ApiResult<Json<OrganizationBody>> {
    let org = orgs::rotate_key(
        &state.credly,
        &*state.store,
        &orgs::normalize_id(&uuid),
        &body.api_key,
    )
    .await?;
    Ok(Json(OrganizationBody::new(&state.credly, org)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// Report what would change without changing anything.
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncBody {
    pub dry_run: bool,
    pub created: u32,
    pub updated: u32,
    pub deactivated: u32,
    pub unchanged: u32,
    pub pages: u32,
}

/// Sync the organization's badge templates from Credly (only `active` ones, every page; new
/// templates arrive inactive; templates no longer active on Credly are deactivated).
#[utoipa::path(post, path = "/credly/organizations/{uuid}/sync", tag = "credly", params(("uuid" = String, Path), SyncQuery),
    responses((status = 200, body = SyncBody), (status = 404, description = "organization_not_found", body = crate::error::ErrorBody),
              (status = 409, description = "credly_key_expired", body = crate::error::ErrorBody),
              (status = 502, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn sync_org(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    ApiQuery(q): ApiQuery<SyncQuery>,
) -> ApiResult<Json<SyncBody>> {
    let dry_run = q.dry_run.unwrap_or(false);
    let s = sync::sync_org(
        &state.credly,
        &*state.store,
        &orgs::normalize_id(&uuid),
        dry_run,
    )
    .await?;
    Ok(Json(SyncBody {
        dry_run,
        created: s.created,
        updated: s.updated,
        deactivated: s.deactivated,
        unchanged: s.unchanged,
        pages: s.pages,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationBody {
    pub id: String,
    pub organization_id: String,
    pub event_type: String,
    pub occurred_at: Option<String>,
    pub received_at: DateTime<Utc>,
    /// `received`, `applied`, `ignored` or `rejected`.
    pub status: String,
    pub detail: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

impl From<CredlyNotification> for NotificationBody {
    fn from(n: CredlyNotification) -> Self {
        NotificationBody {
            id: n.id,
            organization_id: n.organization_id,
            event_type: n.event_type,
            occurred_at: n.occurred_at,
            received_at: n.received_at,
            status: n.status,
            detail: n.detail,
            processed_at: n.processed_at,
        }
    }
}

/// Webhook notifications received from Credly, newest first.
#[utoipa::path(get, path = "/credly/notifications", tag = "credly", params(PageQuery),
    responses((status = 200, body = ListBody<NotificationBody>)), security(("bearer" = [])))]
pub async fn list_notifications(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListBody<NotificationBody>>> {
    let page = webhook::notifications(&*state.store, q.page()?).await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

/// Credly's webhook. Answers 200 once the notification is recorded (or knowingly ignored); 429
/// past the sender address's budget, 503 while the organization's backlog is full.
pub async fn receive_webhook(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> ApiResult<Json<Receipt>> {
    // Counted before the body is read or anything is looked up.
    if let Some(peer) = crate::listener::peer(request.extensions()) {
        let limit = state.config.credly.webhook_per_source_per_minute;
        let counted = state
            .opencredit
            .limiter
            .count(format!("credly-webhook:{}", peer.ip()), limit)
            .await;
        if !counted.allowed {
            crate::metrics::credly_webhook("throttled");
            return Err(ApiError::TooManyRequests {
                code: "webhook_rate_limited",
                detail: format!("more than {limit} webhook posts from this address this minute"),
                retry_after_secs: counted.reset_secs.max(1),
            });
        }
    }
    let ApiJson(n) = ApiJson::<Notification>::from_request(request, &state).await?;
    let max_pending = state.config.credly.webhook_max_pending;
    Ok(Json(webhook::receive(&*state.store, n, max_pending).await?))
}
