//! The handlers, grouped by what they touch, and the helpers they share.

pub mod auth;
pub mod market;
pub mod orders;
pub mod portfolios;

use super::error::ApiError;
use super::AppState;
use crate::auth::{PortfolioEntry, UserId};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use simex_engine::{Event, EventBody, RejectReason};
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub async fn health() -> &'static str {
    "ok"
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
}

/// Prometheus text: gateway counters and how far the read model has come per shard.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = String::new();
    let counters = [
        ("simex_http_authenticated_requests_total", "Requests that passed authentication.", &state.metrics.requests),
        ("simex_http_orders_total", "Orders submitted over HTTP.", &state.metrics.orders),
        ("simex_http_rate_limited_total", "Requests refused by the rate limit.", &state.metrics.rate_limited),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
    }
    let _ = writeln!(text, "# HELP simex_read_model_sequence Last event sequence folded into the read model.");
    let _ = writeln!(text, "# TYPE simex_read_model_sequence gauge");
    for (shard, seq) in state.model.read().last_seqs() {
        let _ = writeln!(text, "simex_read_model_sequence{{shard=\"{shard}\"}} {seq}");
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The path's parameters, or 400.
pub fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(value)| value).map_err(|e| ApiError::malformed(e.body_text()))
}

/// The caller's portfolio `id`; 404 alike for unknown, foreign and malformed ids.
pub fn owned_portfolio(state: &AppState, user_id: UserId, id: &str) -> Result<PortfolioEntry, ApiError> {
    state.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let portfolio_id = id.parse().map_err(|_| ApiError::portfolio_not_found())?;
    state.accounts.owns(user_id, portfolio_id).ok_or_else(ApiError::portfolio_not_found)
}

/// The first rejection among a command's events.
pub fn rejection(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match e.body {
        EventBody::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}

/// Runs blocking work (journal commits, password hashing) off the async workers.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))
}
