//! The byte-level examples in `docs/protocol.md` are the codec's output: each example block in the
//! document is compared with the encoding of the same message here, so the document cannot drift
//! from the code. After a deliberate change to the wire format, run with
//! `SIMEX_BLESS_PROTOCOL_DOC=1` to rewrite the blocks, and review the diff.

use simex::binary::protocol::{
    encode, fixed_text, gateway_reject, login_reject, logout_reason, message_type, order_kind, report_flags,
    report_type, self_trade, side, time_in_force, trigger, Cancel, ExecutionReport, Heartbeat, Login, LoginAccepted,
    LoginRejected, Logout, MassCancel, Message, NewBracket, NewConditionalOrder, NewOrder, Replace, RequestRejected,
    ResendRequest, Subscription, SymbolDirectory, SymbolDirectoryRequest, TopOfBook, Trade, ALL_SYMBOLS,
};
use std::path::PathBuf;

const TIMESTAMP_NS: i64 = 1_767_623_400_000_000_000;

fn examples() -> Vec<(&'static str, Message)> {
    vec![
        (
            "login",
            Message::Login(Login {
                api_key: fixed_text("sk-demo").unwrap(),
                heartbeat_interval_ms: 1_000,
                padding: [0; 4],
            }),
        ),
        ("logout", Message::Logout(Logout { reason: logout_reason::REQUESTED, padding: [0; 6] })),
        ("heartbeat", Message::Heartbeat(Heartbeat { timestamp_ns: TIMESTAMP_NS })),
        (
            "new_order",
            Message::NewOrder(NewOrder {
                request_id: 1,
                client_order_id: fixed_text("bot-1").unwrap(),
                portfolio_id: 7,
                symbol_id: 0,
                side: side::BUY,
                order_kind: order_kind::LIMIT,
                price_ticks: 15_025,
                qty_lots: 10,
                expire_at_ns: 0,
                trigger_price_ticks: 0,
                time_in_force: time_in_force::GTC,
                post_only: 0,
                self_trade_policy: self_trade::DEFAULT,
                padding: [0; 5],
            }),
        ),
        (
            "new_conditional_order",
            Message::NewConditionalOrder(NewConditionalOrder {
                request_id: 5,
                client_order_id: fixed_text("stop-1").unwrap(),
                portfolio_id: 7,
                symbol_id: 0,
                side: side::SELL,
                order_kind: order_kind::MARKET,
                price_ticks: 0,
                qty_lots: 10,
                expire_at_ns: 0,
                trigger_price_ticks: 14_900,
                trail_ticks: 0,
                oco_order_id: 41,
                trail_bps: 0,
                trigger: trigger::STOP,
                time_in_force: time_in_force::IOC,
                self_trade_policy: self_trade::DEFAULT,
                padding: [0; 3],
            }),
        ),
        (
            "new_bracket",
            Message::NewBracket(NewBracket {
                request_id: 6,
                client_order_id: fixed_text("entry-1").unwrap(),
                portfolio_id: 7,
                symbol_id: 0,
                side: side::BUY,
                order_kind: order_kind::LIMIT,
                price_ticks: 15_025,
                qty_lots: 10,
                expire_at_ns: 0,
                take_profit_price_ticks: 15_500,
                stop_loss_trigger_ticks: 14_700,
                stop_loss_limit_ticks: 0,
                time_in_force: time_in_force::GTC,
                post_only: 0,
                self_trade_policy: self_trade::DEFAULT,
                padding: [0; 5],
            }),
        ),
        (
            "cancel",
            Message::Cancel(Cancel {
                request_id: 2,
                order_id: 0x0000_0000_0000_0001,
                portfolio_id: 7,
                padding: [0; 4],
            }),
        ),
        (
            "replace",
            Message::Replace(Replace {
                request_id: 3,
                order_id: 1,
                price_ticks: 15_030,
                qty_lots: 8,
                portfolio_id: 7,
                padding: [0; 4],
            }),
        ),
        (
            "mass_cancel",
            Message::MassCancel(MassCancel { request_id: 4, portfolio_id: 7, symbol_id: ALL_SYMBOLS, padding: [0; 2] }),
        ),
        ("resend_request", Message::ResendRequest(ResendRequest { from_report_seq: 42 })),
        ("subscribe", Message::Subscribe(Subscription { symbol_id: 0, padding: [0; 6] })),
        ("unsubscribe", Message::Unsubscribe(Subscription { symbol_id: 0, padding: [0; 6] })),
        ("symbol_directory_request", Message::SymbolDirectoryRequest(SymbolDirectoryRequest { reserved: 0 })),
        (
            "login_accepted",
            Message::LoginAccepted(LoginAccepted {
                user_id: 1,
                next_report_seq: 43,
                heartbeat_interval_ms: 1_000,
                symbol_count: 6,
            }),
        ),
        (
            "login_rejected",
            Message::LoginRejected(LoginRejected { reason: login_reject::UNKNOWN_KEY, padding: [0; 6] }),
        ),
        (
            "request_rejected",
            Message::RequestRejected(RequestRejected {
                message_type: message_type::SUBSCRIBE,
                reason: gateway_reject::UNKNOWN_SYMBOL,
                padding: [0; 4],
            }),
        ),
        (
            "execution_report",
            Message::ExecutionReport(ExecutionReport {
                report_seq: 43,
                request_id: 1,
                engine_seq: 1_001,
                timestamp_ns: TIMESTAMP_NS,
                order_id: 1,
                trade_id: 5,
                price_ticks: 15_025,
                qty_lots: 4,
                notional_micros: 601_000_000,
                fee_micros: 60_100,
                client_order_id: fixed_text("bot-1").unwrap(),
                portfolio_id: 7,
                symbol_id: 0,
                reason: 0,
                report_type: report_type::FILL,
                side: side::BUY,
                order_kind: 0,
                time_in_force: 0,
                liquidity: 2,
                flags: 0,
                shard: 0,
            }),
        ),
        (
            "execution_report_waiting",
            Message::ExecutionReport(ExecutionReport {
                report_seq: 44,
                request_id: 5,
                engine_seq: 1_002,
                timestamp_ns: TIMESTAMP_NS,
                order_id: 42,
                trade_id: 0,
                price_ticks: 0,
                qty_lots: 10,
                notional_micros: 0,
                fee_micros: 0,
                client_order_id: fixed_text("stop-1").unwrap(),
                portfolio_id: 7,
                symbol_id: 0,
                reason: 0,
                report_type: report_type::ACCEPTED,
                side: side::SELL,
                order_kind: order_kind::MARKET,
                time_in_force: time_in_force::IOC,
                liquidity: 0,
                flags: report_flags::WAITING,
                shard: 0,
            }),
        ),
        (
            "top_of_book",
            Message::TopOfBook(TopOfBook {
                engine_seq: 1_001,
                bid_price_ticks: 15_020,
                bid_qty_lots: 30,
                ask_price_ticks: 15_025,
                ask_qty_lots: 6,
                symbol_id: 0,
                shard: 0,
                padding: [0; 4],
            }),
        ),
        (
            "trade",
            Message::Trade(Trade {
                engine_seq: 1_001,
                trade_id: 5,
                timestamp_ns: TIMESTAMP_NS,
                price_ticks: 15_025,
                qty_lots: 4,
                symbol_id: 0,
                shard: 0,
                taker_side: side::BUY,
                padding: [0; 3],
            }),
        ),
        (
            "symbol_directory",
            Message::SymbolDirectory(SymbolDirectory {
                symbol: fixed_text("AAPL").unwrap(),
                tick_mantissa: 1,
                lot_mantissa: 1,
                tick_scale: 2,
                lot_scale: 0,
                qty_min_lots: 1,
                qty_max_lots: 100_000,
                symbol_id: 0,
                shard: 0,
                padding: [0; 4],
            }),
        ),
    ]
}

/// Sixteen bytes per line, each line prefixed with its offset.
fn hex_lines(bytes: &[u8]) -> String {
    let mut text = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let bytes: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("{:04x}: {}\n", line * 16, bytes.join(" ")));
    }
    text
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md")
}

/// The text between `<!-- example: NAME -->\n```text\n` and the closing fence.
fn block_range(doc: &str, name: &str) -> Option<(usize, usize)> {
    let marker = format!("<!-- example: {name} -->\n```text\n");
    let start = doc.find(&marker)? + marker.len();
    let end = start + doc[start..].find("```")?;
    Some((start, end))
}

#[test]
fn every_message_has_a_byte_example_in_the_protocol_doc_that_matches_the_codec() {
    let mut doc = std::fs::read_to_string(doc_path()).expect("docs/protocol.md exists");
    let bless = std::env::var_os("SIMEX_BLESS_PROTOCOL_DOC").is_some();
    let mut problems = Vec::new();
    for (name, message) in examples() {
        let mut bytes = Vec::new();
        encode(&message, 1, &mut bytes);
        let expected = hex_lines(&bytes);
        match block_range(&doc, name) {
            None => problems.push(format!("no example block for {name}")),
            Some((start, end)) if doc[start..end] != expected => {
                if bless {
                    doc.replace_range(start..end, &expected);
                } else {
                    problems.push(format!("example {name} differs from the codec; it is:\n{expected}"));
                }
            }
            Some(_) => {}
        }
    }
    if bless {
        std::fs::write(doc_path(), doc).expect("rewrite docs/protocol.md");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_message_type_has_an_example() {
    let mut covered: Vec<u16> = examples().iter().map(|(_, m)| m.message_type()).collect();
    covered.sort();
    covered.dedup();
    let all = [1u16, 2, 3, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 101, 102, 103, 110, 120, 121, 122];
    assert_eq!(covered, all);
    for code in 0..=u16::MAX {
        assert_eq!(simex::binary::protocol::body_len(code).is_some(), all.contains(&code), "type {code}");
    }
}

fn field_size(type_text: &str) -> Option<usize> {
    match type_text {
        "u8" => Some(1),
        "u16" => Some(2),
        "u32" => Some(4),
        "u64" | "i64" => Some(8),
        _ => type_text.strip_prefix("[u8; ")?.strip_suffix(']')?.parse().ok(),
    }
}

/// The field tables are written by hand: each must list contiguous fields that add up to the
/// body size the codec uses for that message type.
#[test]
fn every_field_table_in_the_protocol_doc_adds_up_to_its_body() {
    let doc = std::fs::read_to_string(doc_path()).expect("docs/protocol.md exists");
    let mut checked = Vec::new();
    let mut lines = doc.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(heading) = line.strip_prefix("### `") else { continue };
        let Some(code) = heading.split(['(', ')']).nth(1).and_then(|c| c.parse::<u16>().ok()) else { continue };
        let mut next_offset = 0usize;
        let mut rows = 0;
        let mut in_field_table = false;
        while let Some(&row) = lines.peek() {
            if row.starts_with("### ") || row.starts_with("## ") {
                break;
            }
            lines.next();
            if row.starts_with("| offset |") {
                in_field_table = true;
            } else if row.trim().is_empty() {
                in_field_table = false;
            }
            if !in_field_table {
                continue;
            }
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let Some(offset) = cells.get(1).and_then(|c| c.parse::<usize>().ok()) else { continue };
            let size =
                cells.get(3).and_then(|t| field_size(t.trim_matches('`'))).unwrap_or_else(|| panic!("type in {row}"));
            assert_eq!(offset, next_offset, "message {code}: field at {offset} should start at {next_offset}: {row}");
            next_offset = offset + size;
            rows += 1;
        }
        if rows > 0 {
            let expected = simex::binary::protocol::body_len(code).expect("a known type");
            assert_eq!(next_offset, expected, "message {code}: fields add up to {next_offset}, body is {expected}");
            checked.push(code);
        }
    }
    checked.sort();
    assert_eq!(checked, [1, 2, 3, 10, 11, 12, 13, 14, 15, 20, 21, 23, 101, 102, 103, 110, 120, 121, 122]);
}
