//! The binary order-entry protocol's frames: what the bytes on the wire are, and nothing else.
//!
//! Every frame is a 16-byte [`FrameHeader`] followed by one fixed-size body. Bodies are
//! `bytemuck::Pod` structs: little-endian integers, explicit padding, no `bool` or Rust `enum` on
//! the wire (enumerations are `u8`/`u16` codes checked on decode), so a frame can be read by any
//! language from the byte offsets in `docs/protocol.md`. A body's size is fixed by its message
//! type, so a frame's length is checked against its type before the body is looked at.
//!
//! [`decode`] never panics: a short buffer is `Ok(None)` (wait for more bytes), and anything else
//! wrong is a [`DecodeError`] naming what. Every request body that can be rejected starts with the
//! client's `request_id`, so a server can still answer a frame whose fields are bad.

use bytemuck::{Pod, Zeroable};
use simex_engine::{OrderKind, SelfTradePolicy, Side, TimeInForce, TriggerKind};

/// Size of the frame header in bytes.
pub const HEADER_LEN: usize = 16;
/// The largest frame any message type has; anything longer is refused before it is buffered.
pub const FRAME_MAX: usize = HEADER_LEN + 112;
/// `MassCancel::symbol_id` meaning "every symbol".
pub const ALL_SYMBOLS: u16 = u16::MAX;

/// The header of every frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FrameHeader {
    /// Bytes in the whole frame, this header included.
    pub length: u32,
    pub message_type: u16,
    pub reserved: u16,
    /// The sender's sequence number of this frame: 1 for the first frame a side sends on a
    /// connection, one more for each after. The server checks nothing of the client's.
    pub sequence: u64,
}

/// Message type codes. Client to server below 100, server to client from 100; `LOGOUT` and
/// `HEARTBEAT` go both ways.
pub mod message_type {
    pub const LOGIN: u16 = 1;
    pub const LOGOUT: u16 = 2;
    pub const HEARTBEAT: u16 = 3;
    pub const NEW_ORDER: u16 = 10;
    pub const CANCEL: u16 = 11;
    pub const REPLACE: u16 = 12;
    pub const MASS_CANCEL: u16 = 13;
    pub const NEW_CONDITIONAL_ORDER: u16 = 14;
    pub const NEW_BRACKET: u16 = 15;
    pub const RESEND_REQUEST: u16 = 20;
    pub const SUBSCRIBE: u16 = 21;
    pub const UNSUBSCRIBE: u16 = 22;
    pub const SYMBOL_DIRECTORY_REQUEST: u16 = 23;
    pub const LOGIN_ACCEPTED: u16 = 101;
    pub const LOGIN_REJECTED: u16 = 102;
    pub const REQUEST_REJECTED: u16 = 103;
    pub const EXECUTION_REPORT: u16 = 110;
    pub const TOP_OF_BOOK: u16 = 120;
    pub const TRADE: u16 = 121;
    pub const SYMBOL_DIRECTORY: u16 = 122;
}

/// Execution report kinds (`ExecutionReport::report_type`).
pub mod report_type {
    pub const ACCEPTED: u8 = 1;
    pub const REJECTED: u8 = 2;
    pub const FILL: u8 = 3;
    pub const CANCELLED: u8 = 4;
    pub const REPLACED: u8 = 5;
    pub const EXPIRED: u8 = 6;
    /// A waiting conditional order fired; an `ACCEPTED` (without [`report_flags::WAITING`]) for the
    /// same order id follows, or a rejection and a cancel.
    pub const TRIGGERED: u8 = 7;
}

/// Bits of `ExecutionReport::flags`.
pub mod report_flags {
    /// Sent again in answer to a resend request.
    pub const RESENT: u8 = 1;
    /// An `accepted` report of a conditional order (or bracket exit) that waits off-book for its
    /// trigger; without it, `accepted` means the order is in the book (or traded at once).
    pub const WAITING: u8 = 2;
}

/// Reject reasons the gateway adds to the engine's `RejectReason` codes (which are 1 to 999).
pub mod gateway_reject {
    /// The venue's inbound ring was full; nothing happened. Retry later.
    pub const BUSY: u16 = 1000;
    /// The session's API key does not own the portfolio.
    pub const PORTFOLIO_NOT_OWNED: u16 = 1001;
    /// A field holds a value outside its code table (side, order type, time in force, ...).
    pub const INVALID_FIELD: u16 = 1002;
    /// A reserved field is not zero (a `new_order` with a trigger price: conditional orders are
    /// `new_conditional_order`).
    pub const UNSUPPORTED: u16 = 1003;
    /// The symbol id is not in the symbol directory.
    pub const UNKNOWN_SYMBOL: u16 = 1004;
}

/// Why a session ended (`Logout::reason`).
pub mod logout_reason {
    pub const REQUESTED: u16 = 1;
    pub const HEARTBEAT_TIMEOUT: u16 = 2;
    pub const MALFORMED_FRAME: u16 = 3;
    pub const SLOW_CONSUMER: u16 = 4;
    pub const NOT_LOGGED_IN: u16 = 5;
    pub const LOGIN_TIMEOUT: u16 = 6;
    pub const UNEXPECTED_MESSAGE: u16 = 7;
    pub const SHUTDOWN: u16 = 8;
    pub const ALREADY_LOGGED_IN: u16 = 9;
}

/// Why a login failed (`LoginRejected::reason`).
pub mod login_reject {
    pub const UNKNOWN_KEY: u16 = 1;
    pub const BAD_KEY_TEXT: u16 = 2;
}

/// Side codes.
pub mod side {
    pub const BUY: u8 = 1;
    pub const SELL: u8 = 2;
}
/// Order type codes: what an order is in the book (a conditional order: once it fires).
pub mod order_kind {
    pub const LIMIT: u8 = 1;
    pub const MARKET: u8 = 2;
}
/// Trigger codes of `NewConditionalOrder::trigger`.
pub mod trigger {
    /// Fires when a trade prints at or beyond the trigger price against the position.
    pub const STOP: u8 = 1;
    /// Fires when a trade prints at or beyond the trigger price in the position's favour.
    pub const TAKE_PROFIT: u8 = 2;
    /// A stop that follows the best trade price at a distance in ticks or basis points.
    pub const TRAILING_STOP: u8 = 3;
}
/// Time-in-force codes.
pub mod time_in_force {
    pub const GTC: u8 = 1;
    pub const DAY: u8 = 2;
    pub const GTD: u8 = 3;
    pub const IOC: u8 = 4;
    pub const FOK: u8 = 5;
}
/// Self-trade policy codes.
pub mod self_trade {
    pub const DEFAULT: u8 = 0;
    pub const CANCEL_RESTING: u8 = 1;
    pub const CANCEL_INCOMING: u8 = 2;
    pub const CANCEL_BOTH: u8 = 3;
    pub const ALLOW: u8 = 4;
}

/// Type 1, client to server: the first frame of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Login {
    /// The API key as ASCII, zero-padded.
    pub api_key: [u8; 64],
    /// How often each side sends a heartbeat when it has nothing else to send; 0 for the server's
    /// default. The server ends a session that has sent nothing for three intervals.
    pub heartbeat_interval_ms: u32,
    pub padding: [u8; 4],
}

/// Type 2, both ways: the sender ends the session. From the server, `reason` says why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Logout {
    pub reason: u16,
    pub padding: [u8; 6],
}

/// Type 3, both ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Heartbeat {
    /// The sender's clock, for information only.
    pub timestamp_ns: i64,
}

/// Type 10: a new order. Codes for `side`, `order_kind`, `time_in_force` and `self_trade_policy`
/// are in the modules of the same names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct NewOrder {
    pub request_id: u64,
    /// ASCII, zero-padded; all zero for none.
    pub client_order_id: [u8; 16],
    pub portfolio_id: u32,
    pub symbol_id: u16,
    pub side: u8,
    pub order_kind: u8,
    /// The limit price in ticks; 0 for a market order.
    pub price_ticks: i64,
    pub qty_lots: i64,
    /// Expiry of a GTD order; 0 otherwise.
    pub expire_at_ns: i64,
    /// Reserved: must be 0 (conditional orders are [`NewConditionalOrder`]).
    pub trigger_price_ticks: i64,
    pub time_in_force: u8,
    /// 0 or 1.
    pub post_only: u8,
    pub self_trade_policy: u8,
    pub padding: [u8; 5],
}

/// Type 11: cancel one order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Cancel {
    pub request_id: u64,
    pub order_id: u64,
    pub portfolio_id: u32,
    pub padding: [u8; 4],
}

/// Type 12: cancel-replace with a new limit price and a new open quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Replace {
    pub request_id: u64,
    pub order_id: u64,
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub portfolio_id: u32,
    pub padding: [u8; 4],
}

/// Type 13: cancel every open order of a portfolio, in one symbol or in all ([`ALL_SYMBOLS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MassCancel {
    pub request_id: u64,
    pub portfolio_id: u32,
    pub symbol_id: u16,
    pub padding: [u8; 2],
}

/// Type 14: a conditional order, waiting off-book until its trigger fires, then a `order_kind`
/// order: stop (`STOP` + market), stop-limit (`STOP` + limit), take-profit (`TAKE_PROFIT` +
/// market), take-profit-limit (`TAKE_PROFIT` + limit), trailing stop (`TRAILING_STOP` + market,
/// with exactly one of `trail_ticks`, `trail_bps`). Optionally OCO-linked to a waiting one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct NewConditionalOrder {
    pub request_id: u64,
    /// ASCII, zero-padded; all zero for none.
    pub client_order_id: [u8; 16],
    pub portfolio_id: u32,
    pub symbol_id: u16,
    pub side: u8,
    /// What the order becomes when it fires.
    pub order_kind: u8,
    /// The limit price once fired; 0 for a market.
    pub price_ticks: i64,
    pub qty_lots: i64,
    /// Expiry of a GTD order (waiting or fired); 0 otherwise.
    pub expire_at_ns: i64,
    /// A stop's or take-profit's trigger price; 0 for a trailing stop.
    pub trigger_price_ticks: i64,
    /// A trailing stop's distance in ticks; 0 otherwise or when `trail_bps` is set.
    pub trail_ticks: i64,
    /// A waiting conditional order of the same portfolio and symbol to link with (one cancels the
    /// other); 0 for none.
    pub oco_order_id: u64,
    /// A trailing stop's distance in basis points of the best price (1 to 9999); 0 otherwise.
    pub trail_bps: u16,
    pub trigger: u8,
    pub time_in_force: u8,
    pub self_trade_policy: u8,
    pub padding: [u8; 3],
}

/// Type 15: an entry order with a take-profit exit (a take-profit-limit at
/// `take_profit_price_ticks`) and a stop-loss exit (a stop at `stop_loss_trigger_ticks`, a
/// stop-limit at `stop_loss_limit_ticks` when that is set). Either exit may be 0 (none), not both.
/// The exits grow with the entry's fills and cancel each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct NewBracket {
    pub request_id: u64,
    /// The entry's client order id (the exits have none).
    pub client_order_id: [u8; 16],
    pub portfolio_id: u32,
    pub symbol_id: u16,
    pub side: u8,
    /// The entry's order type.
    pub order_kind: u8,
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub expire_at_ns: i64,
    pub take_profit_price_ticks: i64,
    pub stop_loss_trigger_ticks: i64,
    pub stop_loss_limit_ticks: i64,
    pub time_in_force: u8,
    pub post_only: u8,
    pub self_trade_policy: u8,
    pub padding: [u8; 5],
}

/// Type 20: send again every execution report of this user from `from_report_seq` on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ResendRequest {
    pub from_report_seq: u64,
}

/// Types 21 (subscribe) and 22 (unsubscribe): market data of one symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Subscription {
    pub symbol_id: u16,
    pub padding: [u8; 6],
}

/// Type 23: ask for the symbol directory (one `SymbolDirectory` frame per symbol).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SymbolDirectoryRequest {
    pub reserved: u64,
}

/// Type 101: the session is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct LoginAccepted {
    pub user_id: u64,
    /// The `report_seq` the user's next new execution report will carry.
    pub next_report_seq: u64,
    /// The heartbeat interval in force.
    pub heartbeat_interval_ms: u32,
    /// How many symbols the directory has (ids 0 to `symbol_count - 1`).
    pub symbol_count: u32,
}

/// Type 102: the login failed; the server closes the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct LoginRejected {
    pub reason: u16,
    pub padding: [u8; 6],
}

/// Type 103: a request that is not an order (subscribe, resend) was refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct RequestRejected {
    pub message_type: u16,
    /// A `gateway_reject` code.
    pub reason: u16,
    pub padding: [u8; 4],
}

/// Type 110: what happened to an order, for the user owning its portfolio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ExecutionReport {
    /// Per user, from 1, gapless, kept across sessions: the number a resend asks from.
    pub report_seq: u64,
    /// The request that caused the report when it came from this user (0 otherwise, e.g. a fill
    /// as maker).
    pub request_id: u64,
    /// The engine event's sequence within its shard; 0 for a reject decided by the gateway.
    pub engine_seq: u64,
    pub timestamp_ns: i64,
    pub order_id: u64,
    /// Fills only.
    pub trade_id: u64,
    /// Accepted, replaced: the order's price (a market order's protection price); fill: the trade price.
    pub price_ticks: i64,
    /// Accepted: the order quantity; fill: the quantity traded; cancelled, expired: the open
    /// quantity removed; replaced: the new open quantity.
    pub qty_lots: i64,
    /// Fills only: the trade's value.
    pub notional_micros: i64,
    /// Fills only: this side's fee.
    pub fee_micros: i64,
    pub client_order_id: [u8; 16],
    pub portfolio_id: u32,
    pub symbol_id: u16,
    /// Rejected: the reject reason code; cancelled, expired: the cancel reason code.
    pub reason: u16,
    pub report_type: u8,
    /// Side code; 0 when unknown (rejects of cancels and replaces).
    pub side: u8,
    pub order_kind: u8,
    pub time_in_force: u8,
    /// Fills only: 1 maker, 2 taker.
    pub liquidity: u8,
    /// [`report_flags`]: resent (bit 0), waiting for a trigger (bit 1).
    pub flags: u8,
    pub shard: u16,
}

/// Type 120: the best bid and ask of a subscribed symbol after engine event `engine_seq`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct TopOfBook {
    pub engine_seq: u64,
    pub bid_price_ticks: i64,
    /// 0 when there is no bid.
    pub bid_qty_lots: i64,
    pub ask_price_ticks: i64,
    /// 0 when there is no ask.
    pub ask_qty_lots: i64,
    pub symbol_id: u16,
    pub shard: u16,
    pub padding: [u8; 4],
}

/// Type 121: a trade in a subscribed symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Trade {
    pub engine_seq: u64,
    pub trade_id: u64,
    pub timestamp_ns: i64,
    pub price_ticks: i64,
    pub qty_lots: i64,
    pub symbol_id: u16,
    pub shard: u16,
    pub taker_side: u8,
    pub padding: [u8; 3],
}

/// Type 122: one instrument. Price = `price_ticks * tick_mantissa * 10^-tick_scale`, quantity =
/// `qty_lots * lot_mantissa * 10^-lot_scale`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SymbolDirectory {
    /// ASCII, zero-padded.
    pub symbol: [u8; 16],
    pub tick_mantissa: u64,
    pub lot_mantissa: u64,
    pub tick_scale: u32,
    pub lot_scale: u32,
    pub qty_min_lots: i64,
    pub qty_max_lots: i64,
    pub symbol_id: u16,
    pub shard: u16,
    pub padding: [u8; 4],
}

/// One decoded message, either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    Login(Login),
    Logout(Logout),
    Heartbeat(Heartbeat),
    NewOrder(NewOrder),
    Cancel(Cancel),
    Replace(Replace),
    MassCancel(MassCancel),
    NewConditionalOrder(NewConditionalOrder),
    NewBracket(NewBracket),
    ResendRequest(ResendRequest),
    Subscribe(Subscription),
    Unsubscribe(Subscription),
    SymbolDirectoryRequest(SymbolDirectoryRequest),
    LoginAccepted(LoginAccepted),
    LoginRejected(LoginRejected),
    RequestRejected(RequestRejected),
    ExecutionReport(ExecutionReport),
    TopOfBook(TopOfBook),
    Trade(Trade),
    SymbolDirectory(SymbolDirectory),
}

/// A decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub sequence: u64,
    pub message: Message,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame length {length} is shorter than the {HEADER_LEN}-byte header")]
    TooShort { length: u32 },
    #[error("frame length {length} exceeds the largest frame, {FRAME_MAX} bytes")]
    Oversized { length: u32 },
    #[error("unknown message type {message_type}")]
    UnknownType { message_type: u16 },
    #[error("message type {message_type} has a {expected}-byte frame, not {length}")]
    BadLength { message_type: u16, length: u32, expected: u32 },
    /// The frame is well formed but a field is outside its code table. `request_id` is the
    /// request's (0 for a message that has none), so the request can be rejected.
    #[error("message type {message_type}: field {field} has no value {value}")]
    BadValue { message_type: u16, field: &'static str, value: u64, request_id: u64 },
}

impl DecodeError {
    /// Whether the stream can go on after this frame (its length was valid) or is lost.
    pub fn frame_len(&self) -> Option<usize> {
        match *self {
            DecodeError::BadValue { message_type, .. } => body_len(message_type).map(|len| HEADER_LEN + len),
            _ => None,
        }
    }
}

/// The body size of a message type, or `None` for an unknown type.
pub fn body_len(message_type: u16) -> Option<usize> {
    use self::message_type as t;
    let len = match message_type {
        t::LOGIN => size_of::<Login>(),
        t::LOGOUT | t::LOGIN_REJECTED => size_of::<Logout>(),
        t::HEARTBEAT => size_of::<Heartbeat>(),
        t::NEW_ORDER => size_of::<NewOrder>(),
        t::CANCEL => size_of::<Cancel>(),
        t::REPLACE => size_of::<Replace>(),
        t::MASS_CANCEL => size_of::<MassCancel>(),
        t::NEW_CONDITIONAL_ORDER => size_of::<NewConditionalOrder>(),
        t::NEW_BRACKET => size_of::<NewBracket>(),
        t::RESEND_REQUEST => size_of::<ResendRequest>(),
        t::SUBSCRIBE | t::UNSUBSCRIBE => size_of::<Subscription>(),
        t::SYMBOL_DIRECTORY_REQUEST => size_of::<SymbolDirectoryRequest>(),
        t::LOGIN_ACCEPTED => size_of::<LoginAccepted>(),
        t::REQUEST_REJECTED => size_of::<RequestRejected>(),
        t::EXECUTION_REPORT => size_of::<ExecutionReport>(),
        t::TOP_OF_BOOK => size_of::<TopOfBook>(),
        t::TRADE => size_of::<Trade>(),
        t::SYMBOL_DIRECTORY => size_of::<SymbolDirectory>(),
        _ => return None,
    };
    Some(len)
}

impl Message {
    pub fn message_type(&self) -> u16 {
        use self::message_type as t;
        match self {
            Message::Login(_) => t::LOGIN,
            Message::Logout(_) => t::LOGOUT,
            Message::Heartbeat(_) => t::HEARTBEAT,
            Message::NewOrder(_) => t::NEW_ORDER,
            Message::Cancel(_) => t::CANCEL,
            Message::Replace(_) => t::REPLACE,
            Message::MassCancel(_) => t::MASS_CANCEL,
            Message::NewConditionalOrder(_) => t::NEW_CONDITIONAL_ORDER,
            Message::NewBracket(_) => t::NEW_BRACKET,
            Message::ResendRequest(_) => t::RESEND_REQUEST,
            Message::Subscribe(_) => t::SUBSCRIBE,
            Message::Unsubscribe(_) => t::UNSUBSCRIBE,
            Message::SymbolDirectoryRequest(_) => t::SYMBOL_DIRECTORY_REQUEST,
            Message::LoginAccepted(_) => t::LOGIN_ACCEPTED,
            Message::LoginRejected(_) => t::LOGIN_REJECTED,
            Message::RequestRejected(_) => t::REQUEST_REJECTED,
            Message::ExecutionReport(_) => t::EXECUTION_REPORT,
            Message::TopOfBook(_) => t::TOP_OF_BOOK,
            Message::Trade(_) => t::TRADE,
            Message::SymbolDirectory(_) => t::SYMBOL_DIRECTORY,
        }
    }

    fn body(&self) -> &[u8] {
        match self {
            Message::Login(b) => bytemuck::bytes_of(b),
            Message::Logout(b) => bytemuck::bytes_of(b),
            Message::Heartbeat(b) => bytemuck::bytes_of(b),
            Message::NewOrder(b) => bytemuck::bytes_of(b),
            Message::Cancel(b) => bytemuck::bytes_of(b),
            Message::Replace(b) => bytemuck::bytes_of(b),
            Message::MassCancel(b) => bytemuck::bytes_of(b),
            Message::NewConditionalOrder(b) => bytemuck::bytes_of(b),
            Message::NewBracket(b) => bytemuck::bytes_of(b),
            Message::ResendRequest(b) => bytemuck::bytes_of(b),
            Message::Subscribe(b) | Message::Unsubscribe(b) => bytemuck::bytes_of(b),
            Message::SymbolDirectoryRequest(b) => bytemuck::bytes_of(b),
            Message::LoginAccepted(b) => bytemuck::bytes_of(b),
            Message::LoginRejected(b) => bytemuck::bytes_of(b),
            Message::RequestRejected(b) => bytemuck::bytes_of(b),
            Message::ExecutionReport(b) => bytemuck::bytes_of(b),
            Message::TopOfBook(b) => bytemuck::bytes_of(b),
            Message::Trade(b) => bytemuck::bytes_of(b),
            Message::SymbolDirectory(b) => bytemuck::bytes_of(b),
        }
    }

    /// The length of this message's frame.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.body().len()
    }
}

/// Appends one frame to `target` (which does not allocate while it has the capacity).
pub fn encode(message: &Message, sequence: u64, target: &mut Vec<u8>) {
    let body = message.body();
    let header = FrameHeader {
        length: (HEADER_LEN + body.len()) as u32,
        message_type: message.message_type(),
        reserved: 0,
        sequence,
    };
    target.extend_from_slice(bytemuck::bytes_of(&header));
    target.extend_from_slice(body);
}

/// Decodes the frame at the start of `source`: `Ok(None)` if more bytes are needed, else the frame
/// and its length.
pub fn decode(source: &[u8]) -> Result<Option<(Frame, usize)>, DecodeError> {
    if source.len() < 4 {
        return Ok(None);
    }
    let length = u32::from_le_bytes([source[0], source[1], source[2], source[3]]);
    if (length as usize) < HEADER_LEN {
        return Err(DecodeError::TooShort { length });
    }
    if length as usize > FRAME_MAX {
        return Err(DecodeError::Oversized { length });
    }
    if source.len() < HEADER_LEN {
        return Ok(None);
    }
    let header: FrameHeader = bytemuck::pod_read_unaligned(&source[..HEADER_LEN]);
    let message_type = header.message_type;
    let expected = body_len(message_type).ok_or(DecodeError::UnknownType { message_type })?;
    if length as usize != HEADER_LEN + expected {
        return Err(DecodeError::BadLength { message_type, length, expected: (HEADER_LEN + expected) as u32 });
    }
    if source.len() < length as usize {
        return Ok(None);
    }
    let body = &source[HEADER_LEN..length as usize];
    let message = decode_body(message_type, body)?;
    Ok(Some((Frame { sequence: header.sequence, message }, length as usize)))
}

fn decode_body(message_type: u16, body: &[u8]) -> Result<Message, DecodeError> {
    use self::message_type as t;
    fn read<T: Pod>(body: &[u8]) -> T {
        bytemuck::pod_read_unaligned(body)
    }
    let message = match message_type {
        t::LOGIN => Message::Login(read(body)),
        t::LOGOUT => Message::Logout(read(body)),
        t::HEARTBEAT => Message::Heartbeat(read(body)),
        t::NEW_ORDER => {
            let order: NewOrder = read(body);
            check_new_order(&order)?;
            Message::NewOrder(order)
        }
        t::CANCEL => Message::Cancel(read(body)),
        t::REPLACE => Message::Replace(read(body)),
        t::MASS_CANCEL => Message::MassCancel(read(body)),
        t::NEW_CONDITIONAL_ORDER => {
            let order: NewConditionalOrder = read(body);
            check_conditional_order(&order)?;
            Message::NewConditionalOrder(order)
        }
        t::NEW_BRACKET => {
            let bracket: NewBracket = read(body);
            check_bracket(&bracket)?;
            Message::NewBracket(bracket)
        }
        t::RESEND_REQUEST => Message::ResendRequest(read(body)),
        t::SUBSCRIBE => Message::Subscribe(read(body)),
        t::UNSUBSCRIBE => Message::Unsubscribe(read(body)),
        t::SYMBOL_DIRECTORY_REQUEST => Message::SymbolDirectoryRequest(read(body)),
        t::LOGIN_ACCEPTED => Message::LoginAccepted(read(body)),
        t::LOGIN_REJECTED => Message::LoginRejected(read(body)),
        t::REQUEST_REJECTED => Message::RequestRejected(read(body)),
        t::EXECUTION_REPORT => Message::ExecutionReport(read(body)),
        t::TOP_OF_BOOK => Message::TopOfBook(read(body)),
        t::TRADE => Message::Trade(read(body)),
        t::SYMBOL_DIRECTORY => Message::SymbolDirectory(read(body)),
        _ => return Err(DecodeError::UnknownType { message_type }),
    };
    Ok(message)
}

/// The code fields every order-carrying message has, checked against their tables.
struct OrderCodes<'a> {
    message_type: u16,
    request_id: u64,
    client_order_id: &'a [u8; 16],
    side: u8,
    order_kind: u8,
    time_in_force: u8,
    self_trade_policy: u8,
    post_only: u8,
}

impl OrderCodes<'_> {
    fn bad(&self, field: &'static str, value: u64) -> DecodeError {
        DecodeError::BadValue { message_type: self.message_type, field, value, request_id: self.request_id }
    }

    fn check(&self) -> Result<(), DecodeError> {
        side_from_code(self.side).ok_or(self.bad("side", self.side.into()))?;
        order_kind_from_code(self.order_kind).ok_or(self.bad("order_kind", self.order_kind.into()))?;
        time_in_force_from_code(self.time_in_force).ok_or(self.bad("time_in_force", self.time_in_force.into()))?;
        self_trade_from_code(self.self_trade_policy)
            .ok_or(self.bad("self_trade_policy", self.self_trade_policy.into()))?;
        if self.post_only > 1 {
            return Err(self.bad("post_only", self.post_only.into()));
        }
        if !is_padded_ascii(self.client_order_id) {
            return Err(self.bad("client_order_id", u64::from(self.client_order_id[0])));
        }
        Ok(())
    }
}

fn check_new_order(order: &NewOrder) -> Result<(), DecodeError> {
    OrderCodes {
        message_type: message_type::NEW_ORDER,
        request_id: order.request_id,
        client_order_id: &order.client_order_id,
        side: order.side,
        order_kind: order.order_kind,
        time_in_force: order.time_in_force,
        self_trade_policy: order.self_trade_policy,
        post_only: order.post_only,
    }
    .check()
}

fn check_conditional_order(order: &NewConditionalOrder) -> Result<(), DecodeError> {
    let codes = OrderCodes {
        message_type: message_type::NEW_CONDITIONAL_ORDER,
        request_id: order.request_id,
        client_order_id: &order.client_order_id,
        side: order.side,
        order_kind: order.order_kind,
        time_in_force: order.time_in_force,
        self_trade_policy: order.self_trade_policy,
        post_only: 0,
    };
    codes.check()?;
    trigger_from_code(order.trigger).ok_or(codes.bad("trigger", order.trigger.into()))?;
    Ok(())
}

fn check_bracket(bracket: &NewBracket) -> Result<(), DecodeError> {
    OrderCodes {
        message_type: message_type::NEW_BRACKET,
        request_id: bracket.request_id,
        client_order_id: &bracket.client_order_id,
        side: bracket.side,
        order_kind: bracket.order_kind,
        time_in_force: bracket.time_in_force,
        self_trade_policy: bracket.self_trade_policy,
        post_only: bracket.post_only,
    }
    .check()
}

pub fn side_from_code(code: u8) -> Option<Side> {
    match code {
        side::BUY => Some(Side::Buy),
        side::SELL => Some(Side::Sell),
        _ => None,
    }
}

pub fn side_code(value: Side) -> u8 {
    match value {
        Side::Buy => side::BUY,
        Side::Sell => side::SELL,
    }
}

pub fn order_kind_from_code(code: u8) -> Option<OrderKind> {
    match code {
        order_kind::LIMIT => Some(OrderKind::Limit),
        order_kind::MARKET => Some(OrderKind::Market),
        _ => None,
    }
}

pub fn order_kind_code(value: OrderKind) -> u8 {
    match value {
        OrderKind::Limit => order_kind::LIMIT,
        OrderKind::Market => order_kind::MARKET,
    }
}

/// A trigger code; 0 (none) is not a code: an order without a trigger is a `new_order`.
pub fn trigger_from_code(code: u8) -> Option<TriggerKind> {
    match code {
        trigger::STOP => Some(TriggerKind::Stop),
        trigger::TAKE_PROFIT => Some(TriggerKind::TakeProfit),
        trigger::TRAILING_STOP => Some(TriggerKind::TrailingStop),
        _ => None,
    }
}

pub fn time_in_force_from_code(code: u8) -> Option<TimeInForce> {
    match code {
        time_in_force::GTC => Some(TimeInForce::Gtc),
        time_in_force::DAY => Some(TimeInForce::Day),
        time_in_force::GTD => Some(TimeInForce::Gtd),
        time_in_force::IOC => Some(TimeInForce::Ioc),
        time_in_force::FOK => Some(TimeInForce::Fok),
        _ => None,
    }
}

pub fn time_in_force_code(value: TimeInForce) -> u8 {
    match value {
        TimeInForce::Gtc => time_in_force::GTC,
        TimeInForce::Day => time_in_force::DAY,
        TimeInForce::Gtd => time_in_force::GTD,
        TimeInForce::Ioc => time_in_force::IOC,
        TimeInForce::Fok => time_in_force::FOK,
    }
}

pub fn self_trade_from_code(code: u8) -> Option<SelfTradePolicy> {
    match code {
        self_trade::DEFAULT => Some(SelfTradePolicy::Default),
        self_trade::CANCEL_RESTING => Some(SelfTradePolicy::CancelResting),
        self_trade::CANCEL_INCOMING => Some(SelfTradePolicy::CancelIncoming),
        self_trade::CANCEL_BOTH => Some(SelfTradePolicy::CancelBoth),
        self_trade::ALLOW => Some(SelfTradePolicy::Allow),
        _ => None,
    }
}

pub fn self_trade_code(value: SelfTradePolicy) -> u8 {
    match value {
        SelfTradePolicy::Default => self_trade::DEFAULT,
        SelfTradePolicy::CancelResting => self_trade::CANCEL_RESTING,
        SelfTradePolicy::CancelIncoming => self_trade::CANCEL_INCOMING,
        SelfTradePolicy::CancelBoth => self_trade::CANCEL_BOTH,
        SelfTradePolicy::Allow => self_trade::ALLOW,
    }
}

/// Whether a fixed text field is printable ASCII followed only by zero bytes.
pub fn is_padded_ascii(field: &[u8]) -> bool {
    let length = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field[..length].iter().all(|b| b.is_ascii_graphic()) && field[length..].iter().all(|&b| b == 0)
}

/// Text to a zero-padded fixed field, if it fits.
pub fn fixed_text<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() > N {
        return None;
    }
    let mut field = [0u8; N];
    field[..bytes.len()].copy_from_slice(bytes);
    Some(field)
}

/// A zero-padded fixed field back to text (up to the first zero byte), if it is ASCII.
pub fn text_of(field: &[u8]) -> Option<&str> {
    let length = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = std::str::from_utf8(&field[..length]).ok()?;
    text.is_ascii().then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [(usize, usize); 19] = [
        (size_of::<Login>(), 72),
        (size_of::<Logout>(), 8),
        (size_of::<Heartbeat>(), 8),
        (size_of::<NewOrder>(), 72),
        (size_of::<Cancel>(), 24),
        (size_of::<Replace>(), 40),
        (size_of::<MassCancel>(), 16),
        (size_of::<NewConditionalOrder>(), 88),
        (size_of::<NewBracket>(), 88),
        (size_of::<ResendRequest>(), 8),
        (size_of::<Subscription>(), 8),
        (size_of::<SymbolDirectoryRequest>(), 8),
        (size_of::<LoginAccepted>(), 24),
        (size_of::<LoginRejected>(), 8),
        (size_of::<RequestRejected>(), 8),
        (size_of::<ExecutionReport>(), 112),
        (size_of::<TopOfBook>(), 48),
        (size_of::<Trade>(), 48),
        (size_of::<SymbolDirectory>(), 64),
    ];

    #[test]
    fn body_sizes_are_the_documented_ones() {
        for (index, (actual, documented)) in SIZES.iter().enumerate() {
            assert_eq!(actual, documented, "body {index}");
        }
        assert_eq!(size_of::<FrameHeader>(), HEADER_LEN);
    }

    #[test]
    fn a_frame_round_trips_and_partial_bytes_wait() {
        let order = NewOrder {
            request_id: 7,
            client_order_id: fixed_text("abc").unwrap(),
            portfolio_id: 3,
            symbol_id: 1,
            side: side::SELL,
            order_kind: order_kind::LIMIT,
            price_ticks: 15_000,
            qty_lots: 10,
            time_in_force: time_in_force::IOC,
            ..NewOrder::default()
        };
        let mut bytes = Vec::new();
        encode(&Message::NewOrder(order), 42, &mut bytes);
        assert_eq!(bytes.len(), HEADER_LEN + 72);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let (frame, used) = decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(frame, Frame { sequence: 42, message: Message::NewOrder(order) });
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let mut bytes = Vec::new();
        encode(&Message::Heartbeat(Heartbeat { timestamp_ns: 1 }), 1, &mut bytes);
        let mut short = bytes.clone();
        short[..4].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(decode(&short), Err(DecodeError::TooShort { length: 8 }));
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&100_000u32.to_le_bytes());
        assert_eq!(decode(&huge[..4]), Err(DecodeError::Oversized { length: 100_000 }));
        let mut unknown = bytes.clone();
        unknown[4..6].copy_from_slice(&999u16.to_le_bytes());
        assert_eq!(decode(&unknown), Err(DecodeError::UnknownType { message_type: 999 }));
        let mut long = bytes.clone();
        long[..4].copy_from_slice(&32u32.to_le_bytes());
        long.extend_from_slice(&[0; 8]);
        assert_eq!(decode(&long), Err(DecodeError::BadLength { message_type: 3, length: 32, expected: 24 }));

        let order = NewOrder { request_id: 9, side: 7, order_kind: 1, time_in_force: 1, ..NewOrder::default() };
        let mut bad_side = Vec::new();
        encode(&Message::NewOrder(order), 1, &mut bad_side);
        let error = decode(&bad_side).unwrap_err();
        assert_eq!(
            error,
            DecodeError::BadValue { message_type: message_type::NEW_ORDER, field: "side", value: 7, request_id: 9 }
        );
        assert_eq!(error.frame_len(), Some(bad_side.len()));

        let stop = NewConditionalOrder {
            request_id: 11,
            side: side::BUY,
            order_kind: order_kind::MARKET,
            time_in_force: time_in_force::IOC,
            trigger: 0,
            ..NewConditionalOrder::default()
        };
        let mut no_trigger = Vec::new();
        encode(&Message::NewConditionalOrder(stop), 1, &mut no_trigger);
        let error = decode(&no_trigger).unwrap_err();
        let expected = DecodeError::BadValue {
            message_type: message_type::NEW_CONDITIONAL_ORDER,
            field: "trigger",
            value: 0,
            request_id: 11,
        };
        assert_eq!(error, expected);
        assert_eq!(error.frame_len(), Some(HEADER_LEN + 88));
        let mut stop_frame = Vec::new();
        encode(
            &Message::NewConditionalOrder(NewConditionalOrder { trigger: trigger::STOP, ..stop }),
            1,
            &mut stop_frame,
        );
        assert!(matches!(decode(&stop_frame), Ok(Some((Frame { message: Message::NewConditionalOrder(_), .. }, _)))));

        let bracket =
            NewBracket { request_id: 12, side: side::SELL, order_kind: 1, time_in_force: 9, ..NewBracket::default() };
        let mut bad_tif = Vec::new();
        encode(&Message::NewBracket(bracket), 1, &mut bad_tif);
        assert!(matches!(
            decode(&bad_tif),
            Err(DecodeError::BadValue { field: "time_in_force", value: 9, request_id: 12, .. })
        ));
    }

    #[test]
    fn codes_round_trip() {
        for value in [Side::Buy, Side::Sell] {
            assert_eq!(side_from_code(side_code(value)), Some(value));
        }
        for value in [OrderKind::Limit, OrderKind::Market] {
            assert_eq!(order_kind_from_code(order_kind_code(value)), Some(value));
        }
        for value in [TimeInForce::Gtc, TimeInForce::Day, TimeInForce::Gtd, TimeInForce::Ioc, TimeInForce::Fok] {
            assert_eq!(time_in_force_from_code(time_in_force_code(value)), Some(value));
        }
        for value in [
            SelfTradePolicy::Default,
            SelfTradePolicy::CancelResting,
            SelfTradePolicy::CancelIncoming,
            SelfTradePolicy::CancelBoth,
            SelfTradePolicy::Allow,
        ] {
            assert_eq!(self_trade_from_code(self_trade_code(value)), Some(value));
        }
        assert_eq!(side_from_code(0), None);
        assert_eq!(order_kind_from_code(3), None);
        assert_eq!(time_in_force_from_code(6), None);
        assert_eq!(self_trade_from_code(5), None);
        for (code, value) in [
            (trigger::STOP, TriggerKind::Stop),
            (trigger::TAKE_PROFIT, TriggerKind::TakeProfit),
            (trigger::TRAILING_STOP, TriggerKind::TrailingStop),
        ] {
            assert_eq!(trigger_from_code(code), Some(value));
        }
        assert_eq!(trigger_from_code(0), None);
        assert_eq!(trigger_from_code(4), None);
    }
}
