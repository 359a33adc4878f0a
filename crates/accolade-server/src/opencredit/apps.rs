//! Registering apps and changing their tier: shared by `accolade opencredit …` and the admin API
//! (`/api/v1/opencredit/apps`). The secret is shown once and stored as its SHA-256.

use std::str::FromStr;

use accolade_opencredit::tiers::Tier;
use accolade_store::{OcApp, Store, StoreError};
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ctx::digest;
use super::members::new_secret;
use crate::error::ApiError;
use crate::state::AppState;

/// Registers an app; returns it with its key and (only now) its secret.
pub async fn create(
    store: &dyn Store,
    name: &str,
    tier: Tier,
) -> Result<(OcApp, String), StoreError> {
    let name = name.trim();
    let key = format!("ak_{}", &new_secret()[..32]);
    let secret = new_secret();
    let app = store
        .oc_create_app(name, &key, &digest(&secret), tier.as_str())
        .await?;
    Ok((app, secret))
}

/// Every registered app.
pub async fn list(store: &dyn Store) -> Result<Vec<OcApp>, StoreError> {
    store.oc_list_apps().await
}

/// Moves an app (by id or API key) to another tier; its next request is counted against it.
pub async fn change_tier(store: &dyn Store, app: &str, tier: Tier) -> Result<OcApp, StoreError> {
    store.oc_set_app_tier(app, tier.as_str()).await
}

/// An app of the Open Credit API (its secret is never shown again).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppBody {
    id: i64,
    name: String,
    api_key: String,
    /// sandbox, light, medium, heavy or enterprise.
    tier: String,
    created_at: chrono::DateTime<chrono::Utc>,
    /// Only in the answer to the creation (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    api_secret: Option<String>,
}

impl AppBody {
    fn of(app: OcApp, api_secret: Option<String>) -> AppBody {
        AppBody {
            id: app.id,
            name: app.name,
            api_key: app.api_key,
            tier: app.tier,
            created_at: app.created_at,
            api_secret,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    data: Vec<AppBody>,
}

fn parse_tier(tier: &str) -> Result<Tier, ApiError> {
    Tier::from_str(tier).map_err(|e| ApiError::BadRequest {
        code: "invalid_tier",
        detail: e.to_string(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    /// 1-200 bytes, not blank (else `invalid_name`).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[schema(schema_with = tier_schema)]
    tier: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierChange {
    #[schema(schema_with = tier_schema)]
    tier: String,
}

/// The tiers (`accolade_opencredit::tiers::TIERS`); any letter case is accepted.
fn tier_schema() -> utoipa::openapi::Object {
    let names: Vec<&str> = accolade_opencredit::tiers::TIERS
        .iter()
        .map(|t| t.as_str())
        .collect();
    crate::api::dto::one_of_strings(&names, false, "The app's tier (else `invalid_tier`).")
}

#[utoipa::path(post, path = "/opencredit/apps", tag = "opencredit", request_body = NewApp,
    responses((status = 201, body = AppBody, description = "the app with its api_secret (shown once)"),
              (status = 400, description = "malformed_json, invalid_body, invalid_name, invalid_tier", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn create_app(
    State(state): State<AppState>,
    crate::api::extract::ApiJson(body): crate::api::extract::ApiJson<NewApp>,
) -> Result<(axum::http::StatusCode, Json<AppBody>), ApiError> {
    if body.name.trim().is_empty() || body.name.len() > 200 {
        return Err(ApiError::BadRequest {
            code: "invalid_name",
            detail: "name must have 1 to 200 characters".into(),
        });
    }
    let tier = parse_tier(&body.tier)?;
    let (app, secret) = create(&*state.store, &body.name, tier).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(AppBody::of(app, Some(secret))),
    ))
}

#[utoipa::path(get, path = "/opencredit/apps", tag = "opencredit",
    responses((status = 200, body = AppList)), security(("bearer" = [])))]
async fn list_apps(State(state): State<AppState>) -> Result<Json<AppList>, ApiError> {
    let apps = list(&*state.store).await?;
    Ok(Json(AppList {
        data: apps.into_iter().map(|a| AppBody::of(a, None)).collect(),
    }))
}

#[utoipa::path(post, path = "/opencredit/apps/{app}/tier", tag = "opencredit",
    params(("app" = String, Path, description = "the app's id or API key")), request_body = TierChange,
    responses((status = 200, body = AppBody), (status = 400, description = "invalid_tier", body = crate::error::ErrorBody),
              (status = 404, description = "app_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
async fn set_tier(
    State(state): State<AppState>,
    Path(app): Path<String>,
    crate::api::extract::ApiJson(body): crate::api::extract::ApiJson<TierChange>,
) -> Result<Json<AppBody>, ApiError> {
    let tier = parse_tier(&body.tier)?;
    let app = change_tier(&*state.store, &app, tier).await?;
    Ok(Json(AppBody::of(app, None)))
}

/// Admin routes (under `/api/v1`, behind the bearer token, in the OpenAPI document).
pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(set_tier))
}
