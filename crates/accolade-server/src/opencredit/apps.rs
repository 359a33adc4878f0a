//! Registering apps and changing their tier: shared by `accolade opencredit …` and the admin API
//! (`/api/v1/opencredit/apps`). The secret is shown once and stored as its SHA-256.

use std::str::FromStr;

use accolade_opencredit::tiers::Tier;
use accolade_store::{OcApp, Store, StoreError};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

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

pub fn app_json(app: &OcApp) -> Value {
    json!({
        "id": app.id,
        "name": app.name,
        "api_key": app.api_key,
        "tier": app.tier,
        "created_at": app.created_at,
    })
}

fn parse_tier(tier: &str) -> Result<Tier, ApiError> {
    Tier::from_str(tier).map_err(|e| ApiError::BadRequest {
        code: "invalid_tier",
        detail: e.to_string(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApp {
    name: String,
    tier: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierChange {
    tier: String,
}

async fn create_app(
    State(state): State<AppState>,
    crate::api::extract::ApiJson(body): crate::api::extract::ApiJson<NewApp>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    if body.name.trim().is_empty() || body.name.len() > 200 {
        return Err(ApiError::BadRequest {
            code: "invalid_name",
            detail: "name must have 1 to 200 characters".into(),
        });
    }
    let tier = parse_tier(&body.tier)?;
    let (app, secret) = create(&*state.store, &body.name, tier).await?;
    let mut data = app_json(&app);
    data["api_secret"] = json!(secret);
    Ok((axum::http::StatusCode::CREATED, Json(data)))
}

async fn list_apps(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let apps = state.store.oc_list_apps().await?;
    Ok(Json(
        json!({"data": apps.iter().map(app_json).collect::<Vec<_>>()}),
    ))
}

async fn set_tier(
    State(state): State<AppState>,
    Path(app): Path<String>,
    crate::api::extract::ApiJson(body): crate::api::extract::ApiJson<TierChange>,
) -> Result<Json<Value>, ApiError> {
    let tier = parse_tier(&body.tier)?;
    let app = state.store.oc_set_app_tier(&app, tier.as_str()).await?;
    Ok(Json(app_json(&app)))
}

/// Admin routes (mounted under `/api/v1`, behind the bearer token).
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/opencredit/apps", get(list_apps).post(create_app))
        .route("/opencredit/apps/{app}/tier", post(set_tier))
}
