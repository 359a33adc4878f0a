//! Outbound webhook subscriptions (`/webhooks`) and their delivery log (`/webhook-deliveries`).
//! A subscription's secret appears in the answers to create and rotate-secret only.

use accolade_domain::webhook::DeliveryStatus;
use accolade_store::{Webhook, WebhookDelivery, WebhookPatch};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{one_of_strings, ListBody, PageQuery};
use super::extract::{ApiJson, ApiQuery};
use crate::error::{ApiError, ApiResult};
use crate::service::webhooks::deliveries;
use crate::service::webhooks::subscriptions::{self, Subscribe, SubscriptionError, WithSecret};
use crate::state::AppState;

impl From<SubscriptionError> for ApiError {
    fn from(e: SubscriptionError) -> Self {
        match e {
            SubscriptionError::Invalid { code, detail } => ApiError::bad_request(code, detail),
            SubscriptionError::Store(e) => e.into(),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(replay_delivery))
}

/// A subscription (never with its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookBody {
    /// `whk_…`
    pub id: String,
    pub url: String,
    /// Delivered event types; empty = all.
    pub event_types: Vec<String>,
    pub description: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookBody {
    fn from(w: Webhook) -> Self {
        WebhookBody {
            id: w.id,
            url: w.url,
            event_types: w.event_types,
            description: w.description,
            active: w.active,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A subscription with its signing secret: returned by create and rotate-secret only.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecretBody {
    #[serde(flatten)]
    pub webhook: WebhookBody,
    /// The signing secret. Shown once: store it now.
    pub secret: String,
}

impl From<WithSecret> for WebhookWithSecretBody {
    fn from(w: WithSecret) -> Self {
        WebhookWithSecretBody {
            webhook: w.webhook.into(),
            secret: w.secret,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Absolute http(s) URL with a host, at most 2048 bytes (else `invalid_webhook_url`), whose
    /// host is a public address or is listed in `webhooks.allowed_destinations` (else
    /// `webhook_destination_private`).
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    #[serde(default)]
    #[schema(schema_with = event_types)]
    pub event_types: Vec<String>,
    /// 16-256 characters without whitespace or control characters; absent = generated
    /// (`whsec_…`).
    #[schema(
        min_length = 16,
        max_length = 256,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]*$"
    )]
    pub secret: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Default true.
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// Absolute http(s) URL with a host, at most 2048 bytes (else `invalid_webhook_url`).
    #[schema(min_length = 1, max_length = 2048)]
    pub url: Option<String>,
    #[schema(schema_with = event_types_or_null)]
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// The new secret, 16-256 characters without whitespace or control characters; absent =
    /// generated.
    #[schema(
        min_length = 16,
        max_length = 256,
        pattern = r"^[^\s\x00-\x1F\x7F-\x9F]*$"
    )]
    pub secret: Option<String>,
}

/// The event types a subscription can ask for (`accolade_domain::webhook::EVENT_TYPES`).
fn event_types_schema(nullable: bool) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    let ty = if nullable {
        SchemaType::from_iter([Type::Array, Type::Null])
    } else {
        SchemaType::new(Type::Array)
    };
    ArrayBuilder::new()
        .schema_type(ty)
        .items(one_of_strings(
            &accolade_domain::webhook::EVENT_TYPES,
            false,
            "An event type webhooks deliver.",
        ))
        .description(Some("Delivered event types; empty = all."))
        .build()
}

fn event_types() -> utoipa::openapi::schema::Array {
    event_types_schema(false)
}

fn event_types_or_null() -> utoipa::openapi::schema::Array {
    event_types_schema(true)
}

/// One event to one subscription and how its attempts went.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    /// `whd_…`; a replay is a new delivery with a new id.
    pub id: String,
    pub webhook_id: String,
    /// The `Accolade-Event-Id`: the same for every delivery and replay of an event.
    pub event_id: String,
    pub event_type: String,
    /// The delivery this one replays.
    pub replay_of: Option<String>,
    /// `pending`, `succeeded` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last answer (absent after a network error or timeout).
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_response_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for DeliveryBody {
    fn from(d: WebhookDelivery) -> Self {
        DeliveryBody {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            event_type: d.event_type,
            replay_of: d.replay_of,
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            first_attempt_at: d.first_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            last_response_ms: d.last_response_ms,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    #[param(schema_with = delivery_status)]
    pub status: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Rows to skip (use `next_offset` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub offset: Option<u64>,
}

fn delivery_status() -> utoipa::openapi::Object {
    one_of_strings(
        &["pending", "succeeded", "dead"],
        false,
        "Only deliveries in this status.",
    )
}

pub fn parse_status(s: &str) -> Result<DeliveryStatus, ApiError> {
    DeliveryStatus::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_status",
            format!("unknown delivery status `{s}` (pending, succeeded or dead)"),
        )
    })
}

#[utoipa::path(get, path = "/webhooks", tag = "webhooks", params(PageQuery),
    responses((status = 200, body = ListBody<WebhookBody>)), security(("bearer" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListBody<WebhookBody>>> {
    let page = subscriptions::list(&*state.store, q.page()?).await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

/// Subscribe a URL. The answer carries the signing secret, shown this once.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecretBody),
              (status = 400, description = "malformed_json, invalid_body, invalid_webhook_url, webhook_destination_private, unknown_event_type, invalid_secret", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecretBody>)> {
    let created = subscriptions::create(
        &*state.store,
        &state.webhooks,
        Subscribe {
            url: body.url,
            event_types: body.event_types,
            secret: body.secret,
            description: body.description,
            active: body.active.unwrap_or(true),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookBody), (status = 404, description = "webhook_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookBody>> {
    let w = subscriptions::get(&*state.store, &id).await?;
    Ok(Json(w.into()))
}

#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = WebhookBody),
              (status = 400, description = "invalid_webhook_url, webhook_destination_private, unknown_event_type", body = crate::error::ErrorBody),
              (status = 404, description = "webhook_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<WebhookBody>> {
    let patch = WebhookPatch {
        url: body.url,
        event_types: body.event_types,
        description: body.description,
        active: body.active,
    };
    let w = subscriptions::update(&*state.store, &state.webhooks, &id, patch).await?;
    Ok(Json(w.into()))
}

/// Unsubscribe; the subscription's delivery log goes with it.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, description = "webhook_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    subscriptions::delete(&*state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret (given, or generated when the body is empty); the new secret is
/// shown this once and signs every request from now on.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    request_body(content = RotateSecret, description = "optional"),
    responses((status = 200, body = WebhookWithSecretBody),
              (status = 400, description = "invalid_secret", body = crate::error::ErrorBody),
              (status = 404, description = "webhook_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<WebhookWithSecretBody>> {
    // The body is optional: an empty one asks for a generated secret.
    let body: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        super::extract::parse_json(&body)?
    };
    let rotated =
        subscriptions::rotate_secret(&*state.store, &state.webhooks.secrets, &id, body.secret)
            .await?;
    Ok(Json(rotated.into()))
}

/// The subscription's deliveries, newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), DeliveryQuery),
    responses((status = 200, body = ListBody<DeliveryBody>),
              (status = 400, description = "invalid_status", body = crate::error::ErrorBody),
              (status = 404, description = "webhook_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<ListBody<DeliveryBody>>> {
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let wanted = super::dto::page(q.limit, q.offset)?;
    let page = deliveries::of_webhook(&*state.store, &id, status, wanted).await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

#[utoipa::path(get, path = "/webhook-deliveries/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = DeliveryBody), (status = 404, description = "webhook_delivery_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryBody>> {
    let d = deliveries::get(&*state.store, &id).await?;
    Ok(Json(d.into()))
}

/// Send the delivery's event again now: a new delivery (new id, `replay_of` set, fresh attempt
/// cycle) with the same event id, so receivers can recognise it.
#[utoipa::path(post, path = "/webhook-deliveries/{id}/replay", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 201, body = DeliveryBody), (status = 404, description = "webhook_delivery_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<DeliveryBody>)> {
    let d = deliveries::replay(&*state.store, &id).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}
