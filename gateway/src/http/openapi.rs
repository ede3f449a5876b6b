//! `GET /openapi.json`: the OpenAPI 3 description of the HTTP API, built with `utoipa`'s builders
//! from one table, [`ENDPOINTS`], that names every route with its request and response examples.
//! A unit test checks that the table and the router agree, so the document cannot forget a route.

use super::error::ApiError;
use axum::http::StatusCode;
use serde_json::{json, Value};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Required, ResponseBuilder,
};

/// One documented operation.
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub authenticated: bool,
    /// Query parameters: (name, description).
    pub query: &'static [(&'static str, &'static str)],
    pub request: Option<fn() -> Value>,
    pub status: u16,
    pub response: fn() -> Value,
    /// Error statuses the operation answers with.
    pub errors: &'static [u16],
}

fn order_example() -> Value {
    json!({"order_id": 281474976710657u64, "ticker": "AAPL", "side": "buy", "type": "limit", "status": "open",
        "shares": "10", "filled_shares": "0", "remaining_shares": "10", "limit_price": "150.25",
        "time_in_force": "gtc", "client_order_id": null, "created_at": "2026-01-05T14:30:00.000000001Z",
        "updated_at": "2026-01-05T14:30:00.000000001Z"})
}

fn fill_example() -> Value {
    json!({"trade_id": 1, "order_id": 2, "ticker": "AAPL", "side": "buy", "shares": "5", "price": "150.00",
        "fee": "0.075", "executed_at": "2026-01-05T14:30:00.000000002Z"})
}

fn trade_request() -> Value {
    json!({"ticker": "AAPL", "side": "buy", "shares": 10, "type": "limit", "limit_price": "150.25", "time_in_force": "gtc"})
}

/// A waiting stop-loss exit of a bracket, as listed by `GET .../orders?status=open`.
fn waiting_stop_example() -> Value {
    json!({"order_id": 281474976710660u64, "ticker": "AAPL", "side": "sell", "type": "stop", "status": "waiting_trigger",
        "shares": "10", "filled_shares": "0", "remaining_shares": "10", "limit_price": null,
        "time_in_force": "gtc", "client_order_id": null, "created_at": "2026-01-05T14:30:00.000000001Z",
        "updated_at": "2026-01-05T14:30:00.000000002Z", "stop_price": "145.00",
        "parent_order_id": 281474976710658u64, "oco_order_id": 281474976710659u64})
}

/// Named request examples of `POST .../trades`, one per order type and link.
fn trade_request_examples() -> Vec<(&'static str, Value)> {
    let order = |fields: Value| {
        let mut order = json!({"ticker": "AAPL", "side": "sell", "shares": 10});
        for (key, value) in fields.as_object().into_iter().flatten() {
            order[key] = value.clone();
        }
        order
    };
    vec![
        ("limit", trade_request()),
        ("market", json!({"ticker": "AAPL", "side": "buy", "shares": 10})),
        ("stop", order(json!({"type": "stop", "stop_price": "145.00"}))),
        ("stop_limit", order(json!({"type": "stop_limit", "stop_price": "145.00", "limit_price": "144.50"}))),
        ("take_profit", order(json!({"type": "take_profit", "stop_price": "160.00"}))),
        (
            "take_profit_limit",
            order(json!({"type": "take_profit_limit", "trigger_price": "160.00", "limit_price": "160.00"})),
        ),
        ("trailing_stop_amount", order(json!({"type": "trailing_stop", "trail_amount": "2.50"}))),
        ("trailing_stop_percent", order(json!({"type": "trailing_stop", "trail_percent": "1.5"}))),
        (
            "bracket",
            json!({"ticker": "AAPL", "side": "buy", "shares": 10, "type": "limit", "limit_price": "150.00",
                "take_profit": {"limit_price": "160.00"}, "stop_loss": {"stop_price": "145.00", "limit_price": "144.50"}}),
        ),
        (
            "oco",
            order(
                json!({"type": "take_profit_limit", "stop_price": "160.00", "limit_price": "160.00", "oco": 281474976710657u64}),
            ),
        ),
    ]
}

fn token_example() -> Value {
    json!({"uid": "1", "token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9...", "token_type": "Bearer", "expires_in": 86400})
}

/// Every route of the API.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "get",
        path: "/health",
        tag: "venue",
        summary: "Liveness: answers `ok`",
        authenticated: false,
        query: &[],
        request: None,
        status: 200,
        response: || json!("ok"),
        errors: &[],
    },
    Endpoint {
        method: "get",
        path: "/metrics",
        tag: "venue",
        summary: "Prometheus text metrics",
        authenticated: false,
        query: &[],
        request: None,
        status: 200,
        response: || json!("simex_http_orders_total 42"),
        errors: &[],
    },
    Endpoint {
        method: "get",
        path: "/openapi.json",
        tag: "venue",
        summary: "This document",
        authenticated: false,
        query: &[],
        request: None,
        status: 200,
        response: || json!({"openapi": "3.1.0"}),
        errors: &[],
    },
    Endpoint {
        method: "get",
        path: "/ws",
        tag: "venue",
        summary: "WebSocket: trades, book snapshots, book deltas, own orders, fills, positions and portfolios (see docs/http.md)",
        authenticated: false,
        query: &[("api_key", "optional API key"), ("token", "optional bearer token")],
        request: None,
        status: 101,
        response: || json!({"type": "trade", "symbol": "AAPL", "price": "150.00", "shares": "5", "shard": 0, "sequence": 12}),
        errors: &[401],
    },
    Endpoint {
        method: "post",
        path: "/api/auth/register",
        tag: "auth",
        summary: "Register a bot: returns its API key, shown once",
        authenticated: false,
        query: &[],
        request: Some(|| json!({"email": "bot@example.com", "name": "Bot", "display_name": "My bot"})),
        status: 201,
        response: || json!({"uid": "1", "api_key": "st_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "message": "keep this API key"}),
        errors: &[400, 409, 422, 429],
    },
    Endpoint {
        method: "post",
        path: "/api/auth/signup",
        tag: "auth",
        summary: "Sign up with a password: returns a token",
        authenticated: false,
        query: &[],
        request: Some(
            || json!({"username": "carol", "email": "carol@example.com", "password": "correct horse battery"}),
        ),
        status: 201,
        response: token_example,
        errors: &[400, 409, 422, 429],
    },
    Endpoint {
        method: "post",
        path: "/api/auth/login",
        tag: "auth",
        summary: "Log in: returns a token",
        authenticated: false,
        query: &[],
        request: Some(|| json!({"username": "carol", "password": "correct horse battery"})),
        status: 200,
        response: token_example,
        errors: &[400, 401, 422, 429],
    },
    Endpoint {
        method: "post",
        path: "/api/portfolios",
        tag: "portfolios",
        summary: "Open a portfolio (default balance 100000)",
        authenticated: true,
        query: &[],
        request: Some(|| json!({"starting_balance": "100000", "name": "main"})),
        status: 201,
        response: || json!({"portfolio_id": 1, "balance": "100000.00", "name": "main"}),
        errors: &[400, 401, 403, 422, 429, 503],
    },
    Endpoint {
        method: "get",
        path: "/api/portfolios",
        tag: "portfolios",
        summary: "The caller's portfolios",
        authenticated: true,
        query: &[],
        request: None,
        status: 200,
        response: || json!({"portfolios": [{"portfolio_id": 1, "name": "main", "cash_balance": "99249.92", "starting_balance": "100000.00"}]}),
        errors: &[401, 429],
    },
    Endpoint {
        method: "get",
        path: "/api/portfolios/{id}/portfolio",
        tag: "portfolios",
        summary: "Cash, positions, value and return",
        authenticated: true,
        query: &[],
        request: None,
        status: 200,
        response: || json!({"portfolio_id": 1, "cash_balance": "99249.92", "available_cash": "99249.92", "positions": [{"ticker": "AAPL", "shares": "5", "avg_price": "150.00", "market_price": "151.00", "market_value": "755.00", "unrealized_pnl": "5.00", "realized_pnl": "0.00"}], "total_value": "100004.92", "total_return_pct": "0.0049"}),
        errors: &[401, 404, 429],
    },
    Endpoint {
        method: "post",
        path: "/api/portfolios/{id}/reset",
        tag: "portfolios",
        summary: "Cancel open orders and start again from the starting balance",
        authenticated: true,
        query: &[],
        request: None,
        status: 200,
        response: || json!({"portfolio_id": 1, "balance": "100000.00", "message": "portfolio reset to its starting balance"}),
        errors: &[401, 404, 429, 503],
    },
    Endpoint {
        method: "post",
        path: "/api/portfolios/{id}/topup",
        tag: "portfolios",
        summary: "Add cash",
        authenticated: true,
        query: &[],
        request: Some(|| json!({"amount": "2500.50"})),
        status: 200,
        response: || json!({"portfolio_id": 1, "amount": "2500.50", "cash_balance": "102500.50"}),
        errors: &[400, 401, 404, 422, 429, 503],
    },
    Endpoint {
        method: "post",
        path: "/api/portfolios/{id}/trades",
        tag: "orders",
        summary: "Place an order: market, limit, stop, stop_limit, take_profit, take_profit_limit or trailing_stop; a bracket with take_profit/stop_loss; oco links two conditional orders",
        authenticated: true,
        query: &[],
        request: Some(trade_request),
        status: 201,
        response: || json!({"order_id": 2, "status": "filled", "fill_count": 1, "fills": [fill_example()], "take_profit_order_id": 3, "stop_loss_order_id": 4}),
        errors: &[400, 401, 403, 404, 409, 413, 422, 429, 503],
    },
    Endpoint {
        method: "get",
        path: "/api/portfolios/{id}/trades",
        tag: "orders",
        summary: "Trade history, newest first",
        authenticated: true,
        query: &[("limit", "1 to 1000, default 50"), ("offset", "default 0")],
        request: None,
        status: 200,
        response: || json!({"trades": [fill_example()], "total": 1, "limit": 50, "offset": 0}),
        errors: &[401, 404, 422, 429],
    },
    Endpoint {
        method: "post",
        path: "/api/portfolios/{id}/batch-trades",
        tag: "orders",
        summary: "Place up to 100 orders",
        authenticated: true,
        query: &[],
        request: Some(|| json!({"orders": [trade_request(), {"ticker": "NOPE", "side": "buy", "shares": 1}, {"ticker": "AAPL", "side": "sell", "shares": 10, "type": "stop", "stop_price": "145.00"}]})),
        status: 201,
        response: || json!({"fill_count": 0, "rejection_count": 1, "fills": [], "rejections": [{"index": 1, "code": "unknown_symbol", "message": "unknown ticker \"NOPE\""}], "orders": [{"index": 0, "order_id": 3, "status": "open"}, {"index": 2, "order_id": 4, "status": "waiting_trigger"}]}),
        errors: &[400, 401, 404, 413, 422, 429, 503],
    },
    Endpoint {
        method: "get",
        path: "/api/portfolios/{id}/orders",
        tag: "orders",
        summary: "Orders, newest first",
        authenticated: true,
        query: &[("status", "open, closed or all (default)")],
        request: None,
        status: 200,
        response: || json!({"orders": [waiting_stop_example(), order_example()]}),
        errors: &[401, 404, 422, 429],
    },
    Endpoint {
        method: "get",
        path: "/api/portfolios/{id}/orders/{order_id}",
        tag: "orders",
        summary: "One order",
        authenticated: true,
        query: &[],
        request: None,
        status: 200,
        response: order_example,
        errors: &[401, 404, 429],
    },
    Endpoint {
        method: "delete",
        path: "/api/portfolios/{id}/orders/{order_id}",
        tag: "orders",
        summary: "Cancel an open order",
        authenticated: true,
        query: &[],
        request: None,
        status: 200,
        response: order_example,
        errors: &[401, 404, 409, 429, 503],
    },
    Endpoint {
        method: "patch",
        path: "/api/portfolios/{id}/orders/{order_id}",
        tag: "orders",
        summary: "Replace an open limit order's price and/or open quantity",
        authenticated: true,
        query: &[],
        request: Some(|| json!({"limit_price": "150.50", "shares": 8})),
        status: 200,
        response: order_example,
        errors: &[400, 401, 403, 404, 409, 422, 429, 503],
    },
    Endpoint {
        method: "get",
        path: "/api/symbols",
        tag: "market",
        summary: "Instruments",
        authenticated: false,
        query: &[],
        request: None,
        status: 200,
        response: || json!({"symbols": [{"symbol": "AAPL", "asset_class": "equity", "tick_size": "0.01", "lot_size": "1", "min_qty": "1", "max_qty": "100000", "short_allowed": true}]}),
        errors: &[],
    },
    Endpoint {
        method: "get",
        path: "/api/prices/{symbol}",
        tag: "market",
        summary: "Last trade, reference price and top of book",
        authenticated: false,
        query: &[],
        request: None,
        status: 200,
        response: || json!({"symbol": "AAPL", "price": "150.00", "last_trade": "150.00", "reference_price": null, "bid": "149.99", "ask": "150.01", "sequence": 12}),
        errors: &[404],
    },
    Endpoint {
        method: "get",
        path: "/api/orderbook/{symbol}",
        tag: "market",
        summary: "Book levels",
        authenticated: false,
        query: &[("depth", "1 to 100, default 10")],
        request: None,
        status: 200,
        response: || json!({"symbol": "AAPL", "bids": [["149.99", "10"]], "asks": [["150.01", "5"]], "sequence": 12}),
        errors: &[404, 422],
    },
];

fn error_example(status: u16) -> (&'static str, Value) {
    let (description, code) = match status {
        400 => ("Malformed request", "malformed_request"),
        401 => ("Missing or bad credentials", "missing_credentials"),
        403 => ("Refused by risk checks or limits", "insufficient_buying_power"),
        404 => ("Unknown, or another user's, portfolio or order", "portfolio_not_found"),
        409 => ("Duplicate, or the order is no longer open", "duplicate_client_order_id"),
        413 => ("Body over the limit", "payload_too_large"),
        422 => ("A value the venue refuses", "price_not_on_tick"),
        429 => ("Rate limited; see Retry-After", "rate_limited"),
        503 => ("The venue is busy; nothing happened", "busy"),
        _ => ("Error", "error"),
    };
    (description, json!({"code": code, "message": description}))
}

/// The whole document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for endpoint in ENDPOINTS {
        let mut operation = OperationBuilder::new()
            .summary(Some(endpoint.summary))
            .tag(endpoint.tag)
            .operation_id(Some(format!("{} {}", endpoint.method, endpoint.path)));
        for name in endpoint.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            operation = operation
                .parameter(ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True));
        }
        for (name, description) in endpoint.query {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*description)),
            );
        }
        if let Some(request) = endpoint.request {
            let content = if endpoint.path == "/api/portfolios/{id}/trades" {
                let examples = trade_request_examples().into_iter().map(|(name, value)| {
                    (name, ExampleBuilder::new().summary(name.replace('_', " ")).value(Some(value)).build())
                });
                ContentBuilder::new().examples_from_iter(examples).build()
            } else {
                ContentBuilder::new().example(Some(request())).build()
            };
            operation =
                operation.request_body(Some(RequestBodyBuilder::new().content("application/json", content).build()));
        }
        let content_type =
            if endpoint.path == "/health" || endpoint.path == "/metrics" { "text/plain" } else { "application/json" };
        let ok = ResponseBuilder::new()
            .description("Success")
            .content(content_type, ContentBuilder::new().example(Some((endpoint.response)())).build());
        operation = operation.response(endpoint.status.to_string(), ok.build());
        for status in endpoint.errors {
            let (description, example) = error_example(*status);
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", ContentBuilder::new().example(Some(example)).build());
            operation = operation.response(status.to_string(), response.build());
        }
        if endpoint.authenticated {
            operation = operation
                .security(SecurityRequirement::new("api_key", Vec::<String>::new()))
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        let method = match endpoint.method {
            "post" => HttpMethod::Post,
            "patch" => HttpMethod::Patch,
            "delete" => HttpMethod::Delete,
            _ => HttpMethod::Get,
        };
        paths = paths.path(endpoint.path, PathItem::new(method, operation.build()));
    }
    let components = ComponentsBuilder::new()
        .security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))))
        .security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("simex")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("A simulated exchange and paper-trading venue. Decimals are exact strings.")),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

pub async fn serve() -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let text = document()
        .to_json()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes the router is built from are exactly the documented ones.
    #[test]
    fn the_document_covers_every_route() {
        let mut documented: Vec<(String, String)> =
            ENDPOINTS.iter().map(|e| (e.method.to_string(), e.path.to_string())).collect();
        documented.sort();
        let mut routed: Vec<(String, String)> =
            super::super::routes().iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        routed.sort();
        assert_eq!(documented, routed);
        let document: Value = serde_json::from_str(&document().to_json().unwrap()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with('3'));
        let operations: usize =
            document["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(operations, ENDPOINTS.len());
        let trade = &document["paths"]["/api/portfolios/{id}/trades"]["post"];
        let examples = &trade["requestBody"]["content"]["application/json"]["examples"];
        assert_eq!(examples["limit"]["value"]["ticker"], "AAPL");
        // Every order type has an example, and each converts to an engine command.
        let instruments = simex_engine::InstrumentTable::default_table();
        for (name, example) in trade_request_examples() {
            assert_eq!(examples[name]["value"], example);
            let request: super::super::wire::TradeRequest = serde_json::from_str(&example.to_string()).unwrap();
            assert!(request.to_command(1, &instruments).is_ok(), "{name}");
        }
        assert!(trade["responses"]["422"].is_object());
    }
}
