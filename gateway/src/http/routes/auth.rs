//! Registration (API key), signup and login (JWT).

use super::blocking;
use crate::auth::{hash_password, NewUser, StoreError};
use crate::http::error::ApiError;
use crate::http::extract::{AnonymousClient, ApiJson};
use crate::http::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

const TEXT_MAX: usize = 254;
const PASSWORD_MIN: usize = 8;
const PASSWORD_MAX: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Serialize)]
pub struct Registered {
    uid: String,
    api_key: String,
    message: &'static str,
}

fn check_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.len() > TEXT_MAX || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("{field} must be at most {TEXT_MAX} printable characters"),
        ));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), ApiError> {
    check_text("email", email)?;
    let valid = email.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty());
    if !valid || email.contains(char::is_whitespace) {
        return Err(ApiError::invalid("invalid_email", "email is not an email address"));
    }
    Ok(())
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Duplicate(what) => {
            ApiError::new(StatusCode::CONFLICT, &format!("{what}_taken"), format!("that {what} is already registered"))
        }
        other => ApiError::internal(other.to_string()),
    }
}

pub async fn register(
    State(state): State<Arc<AppState>>,
    _client: AnonymousClient,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    check_email(&request.email)?;
    let name = request.name.unwrap_or_default();
    let display_name = request.display_name.unwrap_or_else(|| name.clone());
    check_text("name", &name)?;
    check_text("display_name", &display_name)?;
    let user = NewUser { email: request.email, name, display_name, username: None, password_phc: None };
    let accounts = state.accounts.clone();
    let prefix = state.settings.api_key_prefix.clone();
    let registered = blocking(move || accounts.register(user, &prefix)).await?.map_err(store_error)?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            uid: registered.user_id.to_string(),
            api_key: registered.api_key,
            message: "keep this API key: it is shown only once; send it as the x-api-key header",
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    username: String,
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// A username or an email.
    #[serde(alias = "email")]
    username: String,
    password: String,
}

fn token_body(state: &AppState, user_id: u64) -> Result<serde_json::Value, ApiError> {
    let token = state.jwt.issue(user_id).map_err(|e| ApiError::internal(format!("issuing a token: {e}")))?;
    Ok(
        json!({"uid": user_id.to_string(), "token": token, "token_type": "Bearer", "expires_in": state.jwt.ttl_seconds()}),
    )
}

pub async fn signup(
    State(state): State<Arc<AppState>>,
    _client: AnonymousClient,
    ApiJson(request): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    check_email(&request.email)?;
    let username_ok = !request.username.is_empty()
        && request.username.len() <= 64
        && request.username.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !username_ok {
        return Err(ApiError::invalid("invalid_username", "username: 1 to 64 letters, digits, '_', '-' or '.'"));
    }
    if request.password.chars().count() < PASSWORD_MIN || request.password.len() > PASSWORD_MAX {
        return Err(ApiError::invalid(
            "weak_password",
            format!("password: {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        ));
    }
    let accounts = state.accounts.clone();
    let prefix = state.settings.api_key_prefix.clone();
    let registered = blocking(move || {
        let phc = hash_password(&request.password)?;
        let user = NewUser {
            email: request.email,
            name: request.username.clone(),
            display_name: request.username.clone(),
            username: Some(request.username),
            password_phc: Some(phc),
        };
        accounts.register(user, &prefix)
    })
    .await?
    .map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(token_body(&state, registered.user_id)?)))
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    _client: AnonymousClient,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let accounts = state.accounts.clone();
    let user_id = blocking(move || accounts.login(&request.username, &request.password))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong username or password"))?;
    Ok(Json(token_body(&state, user_id)?))
}
