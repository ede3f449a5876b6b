//! The HTTP gateway: axum routes over the gateway core, the account store and the read model.
//!
//! Every handler is thin: authenticate ([`extract::Caller`]), check the portfolio is the caller's
//! (an unknown and a foreign portfolio get the same 404), convert JSON to an engine command
//! ([`wire`], exact decimals via [`numbers`]), run it through the core, and turn its events into
//! JSON or an [`error::ApiError`]. Nothing here decides a trade.

pub mod error;
pub mod extract;
pub mod metrics;
pub mod numbers;
pub mod openapi;
mod routes;
pub mod wire;
pub mod ws;

use crate::auth::{AccountStore, JwtKeys, UserId};
use crate::bridge::CoreHandle;
use crate::history::{HistoryStore, MemoryHistory};
use crate::runtime::SharedLedger;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use simex_engine::{InstrumentTable, PortfolioId};
use std::num::NonZeroU32;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The most orders in one batch.
pub const BATCH_ORDERS_MAX: usize = 100;

/// What the HTTP gateway is configured with.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub api_key_prefix: String,
    pub default_starting_balance_micros: i64,
    pub body_limit_bytes: usize,
    /// Allowed origins; `*` allows any.
    pub cors_origins: Vec<String>,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Registrations, signups and logins per second per client IP, and their burst.
    pub auth_rate_limit_per_second: u32,
    pub auth_rate_limit_burst: u32,
    /// Engine portfolio ids stay below this (the runtime's ledger size).
    pub portfolios_max: usize,
}

pub struct AppState {
    pub core: CoreHandle,
    /// Every event the core folded, for `/ws`.
    pub core_events: tokio::sync::broadcast::Sender<crate::bridge::FoldedEvents>,
    pub accounts: Arc<AccountStore>,
    pub jwt: Arc<JwtKeys>,
    /// Verification keys of an external identity provider, if configured.
    pub external: Option<crate::auth::ExternalTokens>,
    /// Where trades and orders are read from.
    pub history: Arc<dyn HistoryStore>,
    /// Positions, books and prices.
    pub model: MemoryHistory,
    pub ledger: SharedLedger,
    pub instruments: Arc<InstrumentTable>,
    pub limiter: DefaultKeyedRateLimiter<UserId>,
    pub anonymous_limiter: DefaultKeyedRateLimiter<std::net::IpAddr>,
    pub settings: HttpSettings,
    /// The next engine portfolio id to allocate.
    pub next_portfolio_id: AtomicU32,
    pub metrics: metrics::Metrics,
    /// Latency histograms for `/metrics`; `None` in a gateway without a runtime of its own.
    pub latency: Option<metrics::LatencySources>,
    /// The PostgreSQL projection's lag for `/metrics`; `None` without `DATABASE_URL`.
    pub projection_lag: Option<crate::projection::lag::LagCell>,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        core: CoreHandle,
        core_events: tokio::sync::broadcast::Sender<crate::bridge::FoldedEvents>,
        accounts: Arc<AccountStore>,
        jwt: Arc<JwtKeys>,
        history: Arc<dyn HistoryStore>,
        model: MemoryHistory,
        ledger: SharedLedger,
        instruments: Arc<InstrumentTable>,
        settings: HttpSettings,
    ) -> AppState {
        let quota = |per_second: u32, burst: u32| {
            let per_second = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
            Quota::per_second(per_second).allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN))
        };
        let first_free: PortfolioId = accounts.portfolio_id_max().max(model.read().portfolio_id_max()) + 1;
        AppState {
            core,
            core_events,
            accounts,
            jwt,
            external: None,
            history,
            model,
            ledger,
            instruments,
            limiter: RateLimiter::keyed(quota(settings.rate_limit_per_second, settings.rate_limit_burst)),
            anonymous_limiter: RateLimiter::keyed(quota(
                settings.auth_rate_limit_per_second,
                settings.auth_rate_limit_burst,
            )),
            settings,
            next_portfolio_id: AtomicU32::new(first_free),
            metrics: metrics::Metrics::default(),
            latency: None,
            projection_lag: None,
        }
    }
}

/// Every route as (method, path, handler): the router is built from this list, and the OpenAPI
/// document is checked against it.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Arc<AppState>>)> {
    use routes::{auth, market, orders, portfolios};
    vec![
        ("get", "/health", get(routes::health)),
        ("get", "/metrics", get(metrics::render)),
        ("get", "/openapi.json", get(openapi::serve)),
        ("get", "/ws", get(ws::upgrade)),
        ("post", "/api/auth/register", post(auth::register)),
        ("post", "/api/auth/signup", post(auth::signup)),
        ("post", "/api/auth/login", post(auth::login)),
        ("post", "/api/portfolios", post(portfolios::create)),
        ("get", "/api/portfolios", get(portfolios::list)),
        ("get", "/api/portfolios/{id}/portfolio", get(portfolios::show)),
        ("post", "/api/portfolios/{id}/reset", post(portfolios::reset)),
        ("post", "/api/portfolios/{id}/topup", post(portfolios::topup)),
        ("post", "/api/portfolios/{id}/trades", post(orders::trade)),
        ("get", "/api/portfolios/{id}/trades", get(orders::trades)),
        ("post", "/api/portfolios/{id}/batch-trades", post(orders::batch)),
        ("get", "/api/portfolios/{id}/orders", get(orders::orders)),
        ("get", "/api/portfolios/{id}/orders/{order_id}", get(orders::order)),
        ("delete", "/api/portfolios/{id}/orders/{order_id}", delete(orders::cancel)),
        ("patch", "/api/portfolios/{id}/orders/{order_id}", patch(orders::replace)),
        ("get", "/api/symbols", get(market::symbols)),
        ("get", "/api/prices/{symbol}", get(market::price)),
        ("get", "/api/orderbook/{symbol}", get(market::orderbook)),
    ]
}

/// Every route, with the body limit, CORS, response counting and the JSON fallbacks.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors_layer(&state.settings.cors_origins);
    let body_limit = state.settings.body_limit_bytes;
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_responses))
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let layer =
        CorsLayer::new().allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE]).allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderName::from_static("x-api-key"),
        ]);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}
