//! Request extractors that answer with [`ApiError`] instead of axum's plain-text rejections:
//! JSON bodies ([`ApiJson`]), query strings ([`ApiQuery`]), and the authenticated, rate-limited
//! caller ([`Caller`]).

use super::error::ApiError;
use super::AppState;
use crate::auth::UserId;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A JSON body: 413 over the body limit, 400 when it is not JSON, 422 when it is JSON of the wrong
/// shape (wrong types, unknown or missing fields, bad enum values).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(body_error)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A raw body, with the API's 413.
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state).await.map(ApiBytes).map_err(body_error)
    }
}

/// Parses JSON with the API's error mapping.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => ApiError::invalid("invalid_field", error.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::malformed(format!("the body is not valid JSON: {error}"))
            }
        }
    })
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is larger than the limit")
    } else {
        ApiError::malformed(rejection.body_text())
    }
}

/// A query string: 422 when a parameter has the wrong type.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::invalid("invalid_query", format!("bad query string: {e}")))
    }
}

/// The authenticated caller: an `x-api-key`, or `Authorization: Bearer <jwt>`. 401 without valid
/// credentials; 429 (with `Retry-After`) past the caller's rate.
pub struct Caller(pub UserId);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let unauthorized =
            |code: &str, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, message.to_string());
        let user_id = if let Some(key) = parts.headers.get("x-api-key") {
            let key = key.to_str().map_err(|_| unauthorized("invalid_api_key", "the API key is not valid"))?;
            state.accounts.verify(key).ok_or_else(|| unauthorized("invalid_api_key", "the API key is not valid"))?
        } else if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| unauthorized("invalid_token", "expected Authorization: Bearer <token>"))?;
            let token = token.trim();
            match state.jwt.verify(token) {
                Some(user_id) => {
                    state
                        .accounts
                        .user(user_id)
                        .ok_or_else(|| unauthorized("invalid_token", "the token is not valid"))?;
                    user_id
                }
                None => external_user(state, token).await?,
            }
        } else {
            return Err(unauthorized("missing_credentials", "send an x-api-key header or a bearer token"));
        };
        check_rate(&state.limiter, &user_id, state)?;
        Ok(Caller(user_id))
    }
}

/// 429 with `Retry-After` when `key` is over its rate.
pub fn check_rate<K: std::hash::Hash + Eq + Clone>(
    limiter: &governor::DefaultKeyedRateLimiter<K>,
    key: &K,
    state: &AppState,
) -> Result<(), ApiError> {
    if let Err(not_until) = limiter.check_key(key) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests");
        error.retry_after_seconds = Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        state.metrics.rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(error);
    }
    Ok(())
}

/// The client's address, rate limited per IP: for the endpoints that take no credentials
/// (registration, signup, login), whose cost (a journal commit, an argon2 hash) invites abuse.
pub struct AnonymousClient;

impl FromRequestParts<Arc<AppState>> for AnonymousClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        check_rate(&state.anonymous_limiter, &ip, state)?;
        Ok(AnonymousClient)
    }
}

/// The user behind a valid external (RS256) token, created on first sight; 401 otherwise.
pub async fn external_user(state: &Arc<AppState>, token: &str) -> Result<UserId, ApiError> {
    let invalid = || ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", "the token is not valid");
    let external = state.external.as_ref().ok_or_else(invalid)?;
    let (issuer, subject) = external.verify(token).ok_or_else(invalid)?;
    let accounts = state.accounts.clone();
    tokio::task::spawn_blocking(move || accounts.external_user(&issuer, &subject))
        .await
        .map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))
}
