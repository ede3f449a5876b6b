//! `GET /ws`: market data and, for an authenticated connection, the caller's own order, fill,
//! position and portfolio updates, pushed as JSON text messages.
//!
//! The gateway core publishes the events of each fold into the read model on a broadcast channel
//! (after folding, so a book snapshot read for an event already contains it; a command's events
//! are folded, and so published, together). Each connection
//! filters that stream by its subscriptions. Every message carries the `shard` and the engine
//! `sequence` of the event behind it, so a client can detect gaps; a connection that falls too far
//! behind gets `{"type":"gap","missed":n}` (`n` folds of events were dropped) and continues from
//! the newest events.
//!
//! Client messages: `{"op":"subscribe"|"unsubscribe","channel":"trades"|"book"|"book_deltas","symbol":"AAPL"}`
//! and `{"op":"subscribe","channel":"account"}` (needs credentials at connect time: an `x-api-key`
//! header, or the query parameter `api_key` or `token`, the venue's or an external provider's). Book messages are snapshots of the top
//! ten levels, sent on subscription and once per batch of events that touched the book.
//!
//! `book_deltas` sends the whole book once (`book_snapshot`, at its `sequence`), then one
//! `book_delta` per event that changed levels: each changed level's new total (0: gone), the
//! event's `sequence` and `prev_sequence`, the symbol's previous book-changing sequence. A client
//! that applies each delta whose `prev_sequence` is the last sequence it holds has the venue's
//! book; any other `prev_sequence` is a gap, and it subscribes again for a new snapshot (the server
//! sends one itself after a `gap`). Deltas already in the snapshot are not sent.

use super::error::ApiError;
use super::extract::ApiQuery;
use super::numbers::Num;
use super::routes::portfolios::{flat_position_view, portfolio_view};
use super::wire::{side_text, FillJson, OrderJson};
use super::AppState;
use crate::auth::{PortfolioEntry, UserId};
use crate::bridge::FoldedEvents;
use crate::history::{LevelChange, SymbolMarket, TradeRecord};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use simex_engine::{EventBody, PortfolioId, SymbolId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

const BOOK_DEPTH: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectQuery {
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ConnectQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(String::from).or(query.api_key);
    let user_id = match (key, query.token) {
        (Some(key), _) => Some(state.accounts.verify(&key).ok_or_else(|| invalid("invalid_api_key"))?),
        (None, Some(token)) => match state.jwt.verify(&token) {
            Some(user_id) => Some(user_id),
            None => Some(super::extract::external_user(&state, &token).await?),
        },
        (None, None) => None,
    };
    Ok(upgrade.on_upgrade(move |socket| serve(socket, state, user_id)))
}

fn invalid(code: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, "the credentials are not valid")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    op: String,
    channel: String,
    #[serde(default)]
    symbol: Option<String>,
}

#[derive(Default)]
struct Subscriptions {
    trades: BTreeSet<SymbolId>,
    books: BTreeSet<SymbolId>,
    /// Book delta subscriptions: symbol -> the sequence of the snapshot sent (older deltas are in it).
    book_deltas: HashMap<SymbolId, u64>,
    account: bool,
}

async fn serve(mut socket: WebSocket, state: Arc<AppState>, user_id: Option<UserId>) {
    let mut events = state.core_events.subscribe();
    let mut subscriptions = Subscriptions::default();
    loop {
        tokio::select! {
            message = socket.recv() => {
                let Some(Ok(message)) = message else { return };
                let reply = match message {
                    Message::Text(text) => on_client_message(&state, user_id, &mut subscriptions, text.as_str()),
                    Message::Close(_) => return,
                    _ => continue,
                };
                for out in reply {
                    if socket.send(Message::Text(out.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            received = events.recv() => {
                let mut batch = Vec::new();
                match received {
                    Ok(events) => batch.push(Item::Events(events)),
                    Err(RecvError::Lagged(missed)) => batch.push(Item::Gap(missed)),
                    Err(RecvError::Closed) => return,
                }
                // Take what else is waiting, so book snapshots are sent once per batch.
                while batch.len() < BATCH_MAX {
                    match events.try_recv() {
                        Ok(events) => batch.push(Item::Events(events)),
                        Err(TryRecvError::Lagged(missed)) => batch.push(Item::Gap(missed)),
                        Err(_) => break,
                    }
                }
                for out in on_events(&state, user_id, &mut subscriptions, &batch) {
                    if socket.send(Message::Text(out.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

const BATCH_MAX: usize = 64;

enum Item {
    Events(FoldedEvents),
    /// This many folds of events were dropped because the connection fell behind.
    Gap(u64),
}

fn error_message(code: &str, message: &str) -> Value {
    json!({"type": "error", "code": code, "message": message})
}

fn on_client_message(
    state: &AppState,
    user_id: Option<UserId>,
    subscriptions: &mut Subscriptions,
    text: &str,
) -> Vec<Value> {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(e) => return vec![error_message("malformed_request", &e.to_string())],
    };
    let subscribe = match message.op.as_str() {
        "subscribe" => true,
        "unsubscribe" => false,
        _ => return vec![error_message("invalid_field", "op must be subscribe or unsubscribe")],
    };
    let ack = json!({"type": if subscribe { "subscribed" } else { "unsubscribed" }, "channel": message.channel, "symbol": message.symbol});
    match message.channel.as_str() {
        "account" => {
            if user_id.is_none() {
                return vec![error_message(
                    "missing_credentials",
                    "connect with an API key or token to follow an account",
                )];
            }
            subscriptions.account = subscribe;
            vec![ack]
        }
        "trades" | "book" | "book_deltas" => {
            let Some(instrument) = message.symbol.as_deref().and_then(|s| state.instruments.by_symbol(s)) else {
                return vec![error_message("unknown_symbol", "name a known symbol")];
            };
            if message.channel == "book_deltas" {
                let mut out = vec![ack];
                if subscribe {
                    let (snapshot, sequence) = book_snapshot(state, instrument.symbol_id);
                    subscriptions.book_deltas.insert(instrument.symbol_id, sequence);
                    out.push(snapshot);
                } else {
                    subscriptions.book_deltas.remove(&instrument.symbol_id);
                }
                return out;
            }
            let set = if message.channel == "trades" { &mut subscriptions.trades } else { &mut subscriptions.books };
            if subscribe {
                set.insert(instrument.symbol_id);
            } else {
                set.remove(&instrument.symbol_id);
            }
            let mut out = vec![ack];
            if subscribe && message.channel == "book" {
                out.push(book_message(state, instrument.symbol_id, None));
            }
            out
        }
        _ => vec![error_message("invalid_field", "channel must be trades, book, book_deltas or account")],
    }
}

/// The whole book of a symbol, and the sequence it is at (its last book-changing event).
fn book_snapshot(state: &AppState, symbol_id: SymbolId) -> (Value, u64) {
    let (mut snapshot, _, book_sequence) = book_levels(state, symbol_id, usize::MAX);
    snapshot["type"] = json!("book_snapshot");
    snapshot["sequence"] = json!(book_sequence);
    (snapshot, book_sequence)
}

/// `{"symbol","bids","asks"}` of a symbol's book to `depth` levels, read under the model's lock
/// (without copying the book), with the symbol's last sequence and last book-changing sequence.
fn book_levels(state: &AppState, symbol_id: SymbolId, depth: usize) -> (Value, u64, u64) {
    let Some(instrument) = state.instruments.get(symbol_id) else { return (Value::Null, 0, 0) };
    let model = state.model.read();
    let empty = SymbolMarket::default();
    let market = model.market(symbol_id).unwrap_or(&empty);
    let (bids, asks) = market.depth(depth);
    let levels = |levels: Vec<(i64, i64)>| -> Vec<(Num, Num)> {
        levels.into_iter().map(|(p, q)| (Num::steps(instrument.tick, p), Num::steps(instrument.lot, q))).collect()
    };
    let book = json!({"symbol": instrument.symbol, "bids": levels(bids), "asks": levels(asks)});
    (book, market.sequence, market.book_sequence)
}

/// `book_delta` messages for the level changes of subscribed symbols, one per event.
fn book_deltas(state: &AppState, subscriptions: &Subscriptions, levels: &[LevelChange], out: &mut Vec<Value>) {
    if subscriptions.book_deltas.is_empty() {
        return;
    }
    let mut index = 0;
    while index < levels.len() {
        let first = levels[index];
        let end = index
            + levels[index..]
                .iter()
                .take_while(|c| (c.symbol_id, c.sequence) == (first.symbol_id, first.sequence))
                .count();
        let changes = &levels[index..end];
        index = end;
        let Some(&snapshot_sequence) = subscriptions.book_deltas.get(&first.symbol_id) else { continue };
        if first.sequence <= snapshot_sequence {
            continue;
        }
        let Some(instrument) = state.instruments.get(first.symbol_id) else { continue };
        let changes: Vec<Value> = changes
            .iter()
            .map(|c| {
                json!({
                    "side": side_text(c.side),
                    "price": Num::steps(instrument.tick, c.price_ticks),
                    "shares": Num::steps(instrument.lot, c.qty_lots),
                })
            })
            .collect();
        out.push(json!({
            "type": "book_delta",
            "symbol": instrument.symbol,
            "changes": changes,
            "shard": first.shard,
            "sequence": first.sequence,
            "prev_sequence": first.prev_sequence,
        }));
    }
}

fn book_message(state: &AppState, symbol_id: SymbolId, shard: Option<u16>) -> Value {
    let (mut book, sequence, _) = book_levels(state, symbol_id, BOOK_DEPTH);
    if book.is_null() {
        return book;
    }
    book["type"] = json!("book");
    book["shard"] = json!(shard);
    book["sequence"] = json!(sequence);
    book
}

fn on_events(
    state: &AppState,
    user_id: Option<UserId>,
    subscriptions: &mut Subscriptions,
    batch: &[Item],
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut books_touched: HashMap<SymbolId, u16> = HashMap::new();
    // Engine portfolio id -> the caller's portfolio.
    let entries: HashMap<PortfolioId, PortfolioEntry> = match (subscriptions.account, user_id) {
        (true, Some(user_id)) => {
            state.accounts.portfolios_of(user_id).into_iter().map(|p| (p.engine_portfolio_id, p)).collect()
        }
        _ => HashMap::new(),
    };
    // Each touched portfolio's view, read once per batch for its position and portfolio messages.
    let mut views: HashMap<PortfolioId, Option<Value>> = HashMap::new();
    let mut view_of = |engine_portfolio_id: PortfolioId| -> Option<Value> {
        views
            .entry(engine_portfolio_id)
            .or_insert_with(|| portfolio_view(state, &entries[&engine_portfolio_id]))
            .clone()
    };
    // The caller's portfolios whose cash or positions changed, with the last such event's place.
    let mut portfolios_touched: BTreeMap<PortfolioId, (u16, u64)> = BTreeMap::new();
    // Book deltas go out per fold, after the fold's other messages; a gap resends snapshots.
    for item in batch {
        match item {
            Item::Events(fold) => book_deltas(state, subscriptions, &fold.levels, &mut out),
            Item::Gap(_) => {
                let symbols: Vec<SymbolId> = subscriptions.book_deltas.keys().copied().collect();
                for symbol_id in symbols {
                    let (snapshot, sequence) = book_snapshot(state, symbol_id);
                    subscriptions.book_deltas.insert(symbol_id, sequence);
                    out.push(snapshot);
                }
            }
        }
    }
    let mut deltas = std::mem::take(&mut out);
    let tapped_events = batch.iter().flat_map(|item| match item {
        Item::Events(fold) => fold.events.iter().map(Ok).collect::<Vec<_>>(),
        Item::Gap(missed) => vec![Err(*missed)],
    });
    for tapped in tapped_events {
        let tapped = match tapped {
            Ok(tapped) => tapped,
            Err(missed) => {
                out.push(json!({"type": "gap", "missed": missed}));
                continue;
            }
        };
        let (shard, event) = (tapped.shard, &tapped.event);
        let symbol_of = |body: &EventBody| match *body {
            EventBody::OrderAccepted(o) => Some(o.symbol_id),
            EventBody::Fill(f) => Some(f.symbol_id),
            EventBody::OrderCancelled { symbol_id, .. } | EventBody::OrderReplaced { symbol_id, .. } => Some(symbol_id),
            _ => None,
        };
        if let Some(symbol_id) = symbol_of(&event.body) {
            if subscriptions.books.contains(&symbol_id) {
                books_touched.insert(symbol_id, shard);
            }
        }
        match event.body {
            EventBody::Fill(fill) => {
                if subscriptions.trades.contains(&fill.symbol_id) {
                    if let Some(instrument) = state.instruments.get(fill.symbol_id) {
                        out.push(json!({
                            "type": "trade",
                            "symbol": instrument.symbol,
                            "trade_id": fill.trade_id,
                            "price": Num::steps(instrument.tick, fill.price_ticks),
                            "shares": Num::steps(instrument.lot, fill.qty_lots),
                            "taker_side": side_text(fill.taker_side),
                            "timestamp": super::wire::format_time(event.timestamp_ns),
                            "shard": shard,
                            "sequence": event.seq,
                        }));
                    }
                }
                let sides = [
                    (fill.taker_portfolio_id, fill.taker_order_id, fill.taker_side, fill.taker_fee_micros),
                    (fill.maker_portfolio_id, fill.maker_order_id, fill.taker_side.opposite(), fill.maker_fee_micros),
                ];
                for (engine_portfolio_id, order_id, side, fee_micros) in sides {
                    let Some(portfolio_id) = entries.get(&engine_portfolio_id).map(|e| e.portfolio_id) else {
                        continue;
                    };
                    let record = TradeRecord {
                        trade_id: fill.trade_id,
                        order_id,
                        symbol_id: fill.symbol_id,
                        side,
                        price_ticks: fill.price_ticks,
                        qty_lots: fill.qty_lots,
                        fee_micros,
                        notional_micros: fill.notional_micros,
                        timestamp_ns: event.timestamp_ns,
                        shard,
                        seq: event.seq,
                    };
                    let mut message =
                        json!({"type": "fill", "portfolio_id": portfolio_id, "shard": shard, "sequence": event.seq});
                    message["fill"] = json!(FillJson::new(&record, &state.instruments));
                    out.push(message);
                    if let Some(position) = position_of(state, view_of(engine_portfolio_id), fill.symbol_id) {
                        out.push(json!({"type": "position", "portfolio_id": portfolio_id, "position": position,
                                        "shard": shard, "sequence": event.seq}));
                    }
                    portfolios_touched.insert(engine_portfolio_id, (shard, event.seq));
                }
            }
            EventBody::CashAdjusted { portfolio_id, .. } | EventBody::PortfolioCreated { portfolio_id, .. }
                if entries.contains_key(&portfolio_id) =>
            {
                portfolios_touched.insert(portfolio_id, (shard, event.seq));
            }
            EventBody::OrderAccepted(order) => {
                push_order(state, &entries, &mut out, order.portfolio_id, order.order_id, "accepted", shard, event.seq)
            }
            EventBody::ConditionalAccepted(order) => {
                push_order(state, &entries, &mut out, order.portfolio_id, order.order_id, "accepted", shard, event.seq)
            }
            EventBody::OrderTriggered { portfolio_id, order_id, .. } => {
                push_order(state, &entries, &mut out, portfolio_id, order_id, "triggered", shard, event.seq)
            }
            EventBody::OrderCancelled { portfolio_id, order_id, .. } => {
                push_order(state, &entries, &mut out, portfolio_id, order_id, "cancelled", shard, event.seq)
            }
            EventBody::OrderReplaced { portfolio_id, order_id, .. } => {
                push_order(state, &entries, &mut out, portfolio_id, order_id, "replaced", shard, event.seq)
            }
            _ => {}
        }
    }
    for (engine_portfolio_id, (shard, sequence)) in portfolios_touched {
        if let Some(portfolio) = view_of(engine_portfolio_id) {
            let portfolio_id = entries[&engine_portfolio_id].portfolio_id;
            out.push(json!({"type": "portfolio", "portfolio_id": portfolio_id, "portfolio": portfolio,
                            "shard": shard, "sequence": sequence}));
        }
    }
    let mut touched: Vec<_> = books_touched.into_iter().collect();
    touched.sort_unstable();
    for (symbol_id, shard) in touched {
        out.push(book_message(state, symbol_id, Some(shard)));
    }
    out.append(&mut deltas);
    out
}

/// One position of a portfolio's view (a flat one, shares 0, when the view lists none: the fill
/// closed it), for the `position` message.
fn position_of(state: &AppState, view: Option<Value>, symbol_id: SymbolId) -> Option<Value> {
    let ticker = state.instruments.get(symbol_id)?.symbol.as_str();
    let listed = view?["positions"].as_array()?.iter().find(|p| p["ticker"] == ticker).cloned();
    listed.or_else(|| flat_position_view(state, symbol_id))
}

#[allow(clippy::too_many_arguments)]
fn push_order(
    state: &AppState,
    entries: &HashMap<PortfolioId, PortfolioEntry>,
    out: &mut Vec<Value>,
    engine_portfolio_id: PortfolioId,
    order_id: u64,
    what: &str,
    shard: u16,
    sequence: u64,
) {
    let Some(portfolio_id) = entries.get(&engine_portfolio_id).map(|e| e.portfolio_id) else { return };
    let Some(order) = state.model.read().order(order_id).cloned() else { return };
    out.push(json!({
        "type": "order",
        "event": what,
        "portfolio_id": portfolio_id,
        "order": OrderJson::new(&order, &state.instruments),
        "shard": shard,
        "sequence": sequence,
    }));
}
