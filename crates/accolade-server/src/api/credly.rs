//! Credly organizations (add with an authorization token or OAuth client credentials, replace
//! the credentials, rotate the token through Credly, sync), webhook notifications, and the
//! public webhook receiver `POST /badges/credly/webhook/`.

use accolade_credly::CredlyError;
use accolade_store::{CredlyAuthMethod, CredlyNotification, CredlyOrganization, SyncSummary};
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
use crate::service::credly::orgs::{self, key_status, CredentialsInput, KeyStatus};
use crate::service::credly::rotation;
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
            e @ CredlyFailure::CredentialsRefused { .. } => ApiError::Conflict {
                code: "credly_credentials_refused",
                detail: e.to_string(),
            },
            e @ CredlyFailure::Rotating { .. } => ApiError::Conflict {
                code: "credly_rotation_in_progress",
                detail: e.to_string(),
            },
            CredlyFailure::Unavailable(m) => ApiError::Unavailable(m),
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
        .routes(routes!(rotate_through_credly))
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

/// A Credly organization. Its secrets are never returned, only the last four characters of
/// the key or of the OAuth client id.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationBody {
    pub uuid: String,
    pub name: String,
    /// How the organization authenticates: `token` (an authorization token, HTTP Basic) or
    /// `oauth` (OAuth 2.0 client credentials, Bearer access tokens).
    #[schema(pattern = "^(token|oauth)$")]
    pub auth_method: &'static str,
    /// `…` followed by the key's last four characters (`token` method; else null).
    pub api_key: Option<String>,
    /// `…` followed by the OAuth client id's last four characters (`oauth` method; else null).
    pub client_id: Option<String>,
    /// When the key was made (`token` method; else null).
    pub key_created_at: Option<DateTime<Utc>>,
    /// The key's expiry (`token` method; else null: client credentials have no known expiry).
    pub key: Option<KeyStatus>,
    /// Rotation of the key through Credly.
    pub rotation: RotationBody,
    pub last_sync_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Object>)]
    pub last_sync: Option<SyncSummary>,
    /// The organization on the Credly dashboard.
    pub dashboard_url: String,
    pub created_at: DateTime<Utc>,
}

/// Rotation of an organization's authorization token through Credly.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationBody {
    /// Whether automatic rotation applies: `credly.auto_rotate_days` is above 0 and the
    /// organization uses a token.
    pub auto: bool,
    /// The configured `credly.auto_rotate_days` (0 = off).
    pub auto_rotate_days: u32,
    /// When automatic rotation will replace the key (the first hourly check after this time);
    /// null when it does not apply.
    pub next_auto_rotation_at: Option<DateTime<Utc>>,
    /// Whether a rotation is under way now.
    pub in_progress: bool,
    /// The last attempt, if any.
    pub last: Option<LastRotationBody>,
}

/// One rotation attempt (no secret in it).
#[derive(Debug, Serialize, ToSchema)]
pub struct LastRotationBody {
    pub at: DateTime<Utc>,
    /// `manual` (API, admin UI, CLI) or `auto`.
    #[schema(pattern = "^(manual|auto)$")]
    pub trigger: &'static str,
    /// `ok` (a new token was stored) or `failed` (the old token stays).
    #[schema(pattern = "^(ok|failed)$")]
    pub result: &'static str,
    /// Why it failed.
    pub detail: Option<String>,
}

impl OrganizationBody {
    fn new(credly: &Credly, o: CredlyOrganization) -> Self {
        let base = credly.config.effective_base_url().trim_end_matches('/');
        let now = Utc::now();
        let days = credly.config.auto_rotate_days;
        let token = o.auth_method == CredlyAuthMethod::Token;
        OrganizationBody {
            dashboard_url: format!("{base}/mgmt/organizations/{}/badges/templates", o.id),
            key: o
                .key_expires_at
                .map(|at| key_status(at, now, &credly.config.key_warning_days)),
            rotation: RotationBody {
                auto: token && days > 0,
                auto_rotate_days: days,
                next_auto_rotation_at: o
                    .key_expires_at
                    .filter(|_| token)
                    .and_then(|at| rotation::scheduled_at(at, days)),
                in_progress: o.rotation_lease_until.is_some_and(|t| t > now),
                last: o.last_rotation.map(|r| LastRotationBody {
                    at: r.at,
                    trigger: r.trigger.as_str(),
                    result: if r.ok { "ok" } else { "failed" },
                    detail: r.detail,
                }),
            },
            auth_method: o.auth_method.as_str(),
            api_key: o.api_key_last4.map(|l| format!("…{l}")),
            client_id: o.oauth_client_id_last4.map(|l| format!("…{l}")),
            uuid: o.id,
            name: o.name,
            key_created_at: o.key_created_at,
            last_sync_at: o.last_sync_at,
            last_sync: o.last_sync,
            created_at: o.created_at,
        }
    }
}

/// The body of `POST /credly/organizations` as read: the UUID and one method's credentials
/// (checked by `CredentialsInput::parse`, which names what is missing or mixed).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddOrganizationInput {
    pub uuid: String,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// The body of `POST /credly/organizations/{uuid}/key` as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBodyInput {
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// A new organization: its UUID and either an authorization token or OAuth client
/// credentials. A body with both, or with half of the client credentials, is refused with
/// `credly_auth_mixed` or `credly_auth_incomplete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schema(as = AddOrganization)]
pub enum AddOrganizationDoc {
    Token(AddTokenOrganization),
    OAuth(AddOAuthOrganization),
}

/// An organization that authenticates with an authorization token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AddTokenOrganization {
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

/// An organization that authenticates with OAuth 2.0 client credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AddOAuthOrganization {
    /// Credly organization UUID.
    #[schema(format = "uuid")]
    pub uuid: String,
    /// The OAuth application's client id (Credly's `uid`): 1-256 characters, no control
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub client_id: String,
    /// Its client secret: 8-512 characters, no control characters.
    #[schema(
        min_length = 8,
        max_length = 512,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub client_secret: String,
}

/// New credentials for an organization: an authorization token, or OAuth client credentials
/// (which may switch its method). Both, or half of the client credentials, are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schema(as = RotateKey)]
pub enum RotateKeyDoc {
    Token(NewToken),
    OAuth(NewOAuthClient),
}

/// A new authorization token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewToken {
    /// The new authorization token: 8-512 bytes without `:` or control characters.
    #[schema(
        min_length = 8,
        max_length = 512,
        pattern = r"^[^:\x00-\x1F\x7F-\x9F]*$"
    )]
    pub api_key: String,
}

/// New OAuth client credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewOAuthClient {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub client_id: String,
    #[schema(
        min_length = 8,
        max_length = 512,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub client_secret: String,
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

/// Add an organization with an authorization token or OAuth client credentials. Accolade
/// checks them with Credly (for client credentials: a token is issued and reaches the
/// organization) and stores Credly's name for the organization.
#[utoipa::path(post, path = "/credly/organizations", tag = "credly", request_body = AddOrganizationDoc,
    responses((status = 201, body = OrganizationBody),
              (status = 400, description = "invalid_organization_id, credly_auth_mixed, credly_auth_incomplete, invalid_api_key, invalid_client_id, invalid_client_secret, credly_key_rejected, credly_credentials_rejected, credly_org_not_found, credly_key_expired", body = crate::error::ErrorBody),
              (status = 409, description = "organization_exists", body = crate::error::ErrorBody),
              (status = 502, description = "Credly unreachable or failing", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_org(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AddOrganizationInput>,
) -> ApiResult<(StatusCode, Json<OrganizationBody>)> {
    let credentials = CredentialsInput {
        api_key: body.api_key,
        client_id: body.client_id,
        client_secret: body.client_secret,
    }
    .parse()?;
    let org = orgs::add(&state.credly, &*state.store, &body.uuid, credentials).await?;
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

/// Replace the organization's credentials with a key or OAuth client credentials given here
/// (checked with Credly first; no downtime). Client credentials switch a token organization
/// to OAuth, a key switches an OAuth organization to a token.
#[utoipa::path(post, path = "/credly/organizations/{uuid}/key", tag = "credly", params(("uuid" = String, Path)),
    request_body = RotateKeyDoc,
    responses((status = 200, body = OrganizationBody),
              (status = 400, description = "invalid_organization_id, credly_auth_mixed, credly_auth_incomplete, invalid_api_key, invalid_client_id, invalid_client_secret, credly_key_rejected, credly_credentials_rejected, credly_org_not_found, credly_key_expired", body = crate::error::ErrorBody),
              (status = 404, description = "organization_not_found", body = crate::error::ErrorBody),
              (status = 502, description = "Credly unreachable or failing", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    ApiJson(body): ApiJson<CredentialsBodyInput>,
) -> ApiResult<Json<OrganizationBody>> {
    let credentials = CredentialsInput {
        api_key: body.api_key,
        client_id: body.client_id,
        client_secret: body.client_secret,
    }
    .parse()?;
    let org = orgs::replace_credentials(
        &state.credly,
        &*state.store,
        &orgs::normalize_id(&uuid),
        credentials,
    )
    .await?;
    Ok(Json(OrganizationBody::new(&state.credly, org)))
}

/// Rotate the organization's authorization token through Credly now: Credly issues a new token
/// and ends the old one at once (also for every other system that uses it). The new token is
/// stored before anything else; if Credly fails, the old token stays and the failure is shown
/// in `rotation.last`.
#[utoipa::path(post, path = "/credly/organizations/{uuid}/key/rotate", tag = "credly", params(("uuid" = String, Path)),
    responses((status = 200, body = OrganizationBody),
              (status = 400, description = "credly_key_rejected: Credly refused the current token", body = crate::error::ErrorBody),
              (status = 404, description = "organization_not_found", body = crate::error::ErrorBody),
              (status = 409, description = "credly_auth_method (OAuth organizations have no token), credly_rotation_in_progress, credly_key_expired", body = crate::error::ErrorBody),
              (status = 502, description = "Credly unreachable, failing or answering without a token; the old token stays", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_through_credly(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> ApiResult<Json<OrganizationBody>> {
    let org =
        rotation::rotate_now(&state.credly, &*state.store, &orgs::normalize_id(&uuid)).await?;
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
