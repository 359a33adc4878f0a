//! Admin API tokens (`/tokens`): list, create (the secret is in the answer to create only) and
//! revoke. Every route needs the `admin` scope (`service::auth::Scope::needed_for`).

use accolade_store::ApiToken;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::ListBody;
use super::extract::ApiJson;
use crate::error::{ApiError, ApiResult};
use crate::service::auth::{self, CreateTokenError, TokenRequestError};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A token (never with its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    /// `tok_…`
    pub id: String,
    pub name: String,
    /// `events:write`, `read` or `admin`.
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Recorded at most about every ten seconds.
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
}

impl From<ApiToken> for TokenBody {
    fn from(t: ApiToken) -> Self {
        let state = auth::state_of(&t, Utc::now());
        TokenBody {
            id: t.id,
            name: t.name,
            scopes: t.scopes,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            state,
        }
    }
}

/// A new token with its secret: the answer to create only.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenWithSecretBody {
    #[serde(flatten)]
    pub token: TokenBody,
    /// The bearer secret (`acl_…`). Shown once: store it now.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, e.g. "lms-ingest" (1-100 printable characters).
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Scopes: `events:write` (POST /events only), `read` (every GET except tokens),
    /// `admin` (everything). Empty or missing: `admin`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Lifetime such as `90d`, `12h`, `30m`; missing: no expiry.
    pub expires_in: Option<String>,
}

impl From<TokenRequestError> for ApiError {
    fn from(e: TokenRequestError) -> Self {
        ApiError::bad_request(e.code, e.detail)
    }
}

/// Every token, oldest first (revoked and expired ones included, with their state).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = ListBody<TokenBody>)), security(("bearer" = [])))]
pub async fn list_tokens(State(state): State<AppState>) -> ApiResult<Json<ListBody<TokenBody>>> {
    let tokens = auth::list_tokens(&*state.store).await?;
    Ok(Json(ListBody {
        data: tokens.into_iter().map(Into::into).collect(),
        next_offset: None,
    }))
}

/// Create a token; its secret is in this answer only.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = TokenWithSecretBody),
        (status = 400, description = "invalid_token_name, unknown_scope, invalid_expiry", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenWithSecretBody>)> {
    let expires_at = body
        .expires_in
        .as_deref()
        .map(auth::expires_at)
        .transpose()?;
    let (token, secret) = auth::create_token(&*state.store, &body.name, &body.scopes, expires_at)
        .await
        .map_err(|e| match e {
            CreateTokenError::Invalid(e) => ApiError::from(e),
            CreateTokenError::Store(e) => ApiError::from(e),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(TokenWithSecretBody {
            token: token.into(),
            secret,
        }),
    ))
}

/// Revoke a token: refused from now on (within seconds on other instances), kept in the list.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 200, body = TokenBody),
        (status = 404, description = "token_not_found", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenBody>> {
    let token = auth::revoke_token(&*state.store, &state.tokens, &id).await?;
    Ok(Json(token.into()))
}
