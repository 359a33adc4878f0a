//! `POST /api/v1/events` (ingest, one event or an array) and the inbox listings.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::{json_bytes, parse_json, ApiQuery};
use crate::error::{ApiError, ApiResult};
use crate::service::events::{self, IngestFailure};
use crate::service::ingest::IngestError;
use crate::state::AppState;

impl From<IngestFailure> for ApiError {
    fn from(e: IngestFailure) -> Self {
        match e {
            e @ IngestFailure::TooMany { .. } => {
                ApiError::bad_request("too_many_events", e.to_string())
            }
            IngestFailure::Store(e) => e.into(),
            IngestFailure::Writer(IngestError::Storage(detail)) => {
                ApiError::Internal(anyhow::anyhow!(detail))
            }
            IngestFailure::Writer(other) => ApiError::Unavailable(other.to_string()),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_events, list_events))
        .routes(routes!(list_rejected_events))
}

/// Ingest learning events.
///
/// Body: one event object or an array of them, shaped like Open edX events. Answers once every
/// accepted event is durable. Events that fail validation (e.g. no `UserData`) are listed in
/// `rejected` with a code and recorded; the others are still accepted.
#[utoipa::path(post, path = "/events", tag = "events",
    request_body(content = EventsBody, description = "An event or an array of events"),
    responses((status = 202, body = IngestBody), (status = 400, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn ingest_events(
    State(state): State<AppState>,
    req: Request,
) -> ApiResult<(StatusCode, Json<IngestBody>)> {
    let bytes = json_bytes(req, &()).await.map_err(|e| match e {
        ApiError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge {
            limit: state.config.http.max_body_bytes,
        },
        other => other,
    })?;
    let value: Value = parse_json(&bytes)?;
    let items = match value {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "the body must be an event object or an array of events",
            ))
        }
    };
    let ingested = events::ingest(&state, items).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(IngestBody {
            accepted: ingested.accepted,
            duplicates: ingested.duplicates,
            rejected: ingested
                .rejected
                .into_iter()
                .map(|r| RejectionBody {
                    index: r.index,
                    code: r.code,
                    detail: r.detail,
                })
                .collect(),
        }),
    ))
}

/// The body of `POST /events`: one event object or an array (at most
/// `ingest.max_events_per_request`, else `too_many_events`). Array items that are not valid
/// events are answered in `rejected`, not refused.
pub struct EventsBody;

impl utoipa::PartialSchema for EventsBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type,
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some("One event, shaped like an Open edX event.")),
            )
            .item(
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
                    .description(Some("Events, each answered in order.")),
            )
            .into()
    }
}

impl utoipa::ToSchema for EventsBody {}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events of this learner (username).
    pub learner: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Rows to skip (use `next_offset` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub offset: Option<u64>,
}

/// Recent events in the inbox, newest first.
#[utoipa::path(get, path = "/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = ListBody<EventBody>)), security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<ListBody<EventBody>>> {
    let wanted = page(q.limit, q.offset)?;
    let page = events::list(&*state.store, q.learner.as_deref(), wanted).await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

/// Events refused at ingest, newest first, with the reason.
#[utoipa::path(get, path = "/events/rejected", tag = "events", params(PageQuery),
    responses((status = 200, body = ListBody<RejectedEventBody>)), security(("bearer" = [])))]
pub async fn list_rejected_events(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListBody<RejectedEventBody>>> {
    let rows = events::rejected(&*state.store, q.page()?).await?;
    Ok(Json(ListBody::from_page(rows, Into::into)))
}
