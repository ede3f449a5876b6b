//! The binary gateway end to end: a real runtime, a real TCP socket, the real client.
//!
//! Reads carry a generous timeout only so that a broken gateway fails a test instead of hanging
//! it; nothing asserts on how long anything took.

use simex::binary::client::{Client, ClientError};
use simex::binary::protocol::{
    self, gateway_reject, login_reject, logout_reason, message_type, order_kind, report_flags, report_type, side,
    time_in_force, trigger, Cancel, ExecutionReport, Frame, Login, MassCancel, Message, NewBracket,
    NewConditionalOrder, NewOrder, Replace, ALL_SYMBOLS, FRAME_MAX,
};
use simex::binary::{spawn, BinaryConfig, BinaryHandle, MemoryKeys};
use simex::runtime::{Response, Runtime, RuntimeConfig, Submitter};
use simex_engine::{CancelReason, CommandBody, InstrumentTable, RejectReason};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const READ_TIMEOUT: Duration = Duration::from_secs(20);
const CASH_MICROS: i64 = 1_000_000_000_000;

struct Venue {
    runtime: Option<Runtime>,
    admin: Option<Submitter>,
    gateway: Option<BinaryHandle>,
    address: SocketAddr,
    aapl: u16,
    msft: u16,
}

impl Venue {
    fn start(config: BinaryConfig, keys: MemoryKeys, portfolios: &[u32]) -> Venue {
        let instruments = InstrumentTable::default_table();
        let runtime_config =
            RuntimeConfig { shards: 2, submitters: 2, taps: vec!["binary".into()], ..Default::default() };
        let started = Runtime::start(runtime_config, instruments.clone()).expect("runtime starts");
        let mut submitters = started.submitters;
        let mut admin = submitters.pop().expect("admin submitter");
        let gateway_submitter = submitters.pop().expect("gateway submitter");
        let tap = started.taps.into_iter().next();
        for &portfolio_id in portfolios {
            run(&mut admin, CommandBody::CreatePortfolio { portfolio_id, cash_micros: CASH_MICROS });
        }
        let aapl = instruments.by_symbol("AAPL").expect("AAPL").symbol_id;
        let msft = instruments.by_symbol("MSFT").expect("MSFT").symbol_id;
        let gateway = spawn(config, gateway_submitter, tap, Arc::new(keys), instruments).expect("gateway starts");
        Venue {
            address: gateway.local_addr(),
            runtime: Some(started.runtime),
            admin: Some(admin),
            gateway: Some(gateway),
            aapl,
            msft,
        }
    }

    fn standard(config: BinaryConfig) -> Venue {
        let keys = MemoryKeys::new().with_user("alpha-key", 1, &[1]).with_user("beta-key", 2, &[2]).with_user(
            "gamma-key",
            3,
            &[3],
        );
        Venue::start(config, keys, &[1, 2, 3])
    }

    fn client(&self) -> Client {
        let client = Client::connect(self.address).expect("connects");
        client.receiver.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        client
    }

    /// A logged-in client with a long heartbeat interval: the tests send no heartbeats, and a
    /// loaded machine must not time them out.
    fn logged_in(&self, key: &str) -> Client {
        let mut client = self.client();
        client.login(key, 30_000).expect("logs in");
        client
    }

    fn admin(&mut self) -> &mut Submitter {
        self.admin.as_mut().expect("admin")
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown();
        }
        self.admin.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown();
        }
    }
}

/// Submits a command from the admin submitter and waits for it to be done.
fn run(submitter: &mut Submitter, command: CommandBody) {
    let ticket = submitter.submit(command).expect("admin submit");
    let mut done_shards = 0;
    let shards = match submitter.route(&command) {
        simex::runtime::Route::Shard(_) => 1,
        simex::runtime::Route::AllShards => submitter.shards(),
    };
    while done_shards < shards {
        match submitter.poll() {
            Some(Response::Done { ticket: t, .. }) if t == ticket => done_shards += 1,
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn limit(
    request_id: u64,
    portfolio_id: u32,
    symbol_id: u16,
    side_code: u8,
    price_ticks: i64,
    qty_lots: i64,
) -> NewOrder {
    NewOrder {
        request_id,
        client_order_id: protocol::fixed_text(&format!("c{request_id}")).unwrap(),
        portfolio_id,
        symbol_id,
        side: side_code,
        order_kind: order_kind::LIMIT,
        price_ticks,
        qty_lots,
        time_in_force: time_in_force::GTC,
        ..NewOrder::default()
    }
}

/// The next execution report, skipping heartbeats and market data.
fn next_report(client: &mut Client) -> ExecutionReport {
    loop {
        match client.recv().expect("a frame").message {
            Message::ExecutionReport(report) => return report,
            Message::Heartbeat(_) | Message::TopOfBook(_) | Message::Trade(_) => {}
            other => panic!("expected an execution report, got {other:?}"),
        }
    }
}

/// Frames up to and including the first one `until` accepts.
fn frames_until(client: &mut Client, until: impl Fn(&Message) -> bool) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        let frame = client.recv().expect("a frame");
        let last = until(&frame.message);
        frames.push(frame);
        if last {
            return frames;
        }
    }
}

fn expect_logout(client: &mut Client, reason: u16) {
    loop {
        match client.recv() {
            Ok(Frame { message: Message::Logout(logout), .. }) => {
                assert_eq!(logout.reason, reason, "logout reason");
                break;
            }
            Ok(_) => {}
            Err(error) => panic!("expected a logout with reason {reason}, got {error}"),
        }
    }
    assert!(matches!(client.recv(), Err(ClientError::Closed)), "the server closes after its logout");
}

#[test]
fn every_order_entry_message_gets_its_execution_report() {
    let mut venue = Venue::standard(BinaryConfig::default());
    let (aapl, msft) = (venue.aapl, venue.msft);
    let mut alpha = venue.logged_in("alpha-key");
    let mut beta = venue.logged_in("beta-key");

    // Symbol directory: one frame per instrument, with the tick of AAPL (0.01 = 1e-2).
    alpha.sender.request_symbols().unwrap();
    let count = InstrumentTable::default_table().len();
    let mut directory = Vec::new();
    while directory.len() < count {
        if let Message::SymbolDirectory(entry) = alpha.recv_skipping_heartbeats().unwrap().message {
            directory.push(entry);
        }
    }
    let entry = directory.iter().find(|e| e.symbol_id == aapl).expect("AAPL listed");
    assert_eq!(protocol::text_of(&entry.symbol), Some("AAPL"));
    assert_eq!((entry.tick_mantissa, entry.tick_scale), (1, 2));

    // New order, accepted.
    alpha.send(&Message::NewOrder(limit(1, 1, aapl, side::SELL, 15_000, 10))).unwrap();
    let accepted = next_report(&mut alpha);
    assert_eq!(accepted.report_type, report_type::ACCEPTED);
    assert_eq!((accepted.request_id, accepted.qty_lots, accepted.price_ticks), (1, 10, 15_000));
    assert_eq!(protocol::text_of(&accepted.client_order_id), Some("c1"));
    assert_eq!(accepted.report_seq, 1);
    assert!(accepted.engine_seq > 0);
    let order_id = accepted.order_id;

    // Replace: new price and quantity.
    let replace =
        Replace { request_id: 2, order_id, price_ticks: 15_010, qty_lots: 8, portfolio_id: 1, padding: [0; 4] };
    alpha.send(&Message::Replace(replace)).unwrap();
    let replaced = next_report(&mut alpha);
    assert_eq!((replaced.report_type, replaced.request_id), (report_type::REPLACED, 2));
    assert_eq!((replaced.price_ticks, replaced.qty_lots, replaced.report_seq), (15_010, 8, 2));

    // Beta takes 3 lots with an IOC: beta sees accepted, fill (taker), cancelled remainder;
    // alpha sees its maker fill.
    let take = NewOrder { time_in_force: time_in_force::IOC, ..limit(7, 2, aapl, side::BUY, 15_010, 5) };
    beta.send(&Message::NewOrder(take)).unwrap();
    assert_eq!(next_report(&mut beta).report_type, report_type::ACCEPTED);
    let taker = next_report(&mut beta);
    assert_eq!((taker.report_type, taker.request_id, taker.qty_lots, taker.liquidity), (report_type::FILL, 7, 5, 2));
    assert!(taker.fee_micros > 0, "AAPL charges takers");
    let maker = next_report(&mut alpha);
    assert_eq!((maker.report_type, maker.order_id, maker.qty_lots), (report_type::FILL, order_id, 5));
    assert_eq!((maker.request_id, maker.liquidity, maker.side), (0, 1, side::SELL));

    // Cancel: the 3 open lots are removed.
    alpha.send(&Message::Cancel(Cancel { request_id: 3, order_id, portfolio_id: 1, padding: [0; 4] })).unwrap();
    let cancelled = next_report(&mut alpha);
    assert_eq!((cancelled.report_type, cancelled.request_id, cancelled.qty_lots), (report_type::CANCELLED, 3, 3));
    assert_eq!(cancelled.reason, CancelReason::User.code());

    // Mass cancel across every symbol reaches both shards.
    alpha.send(&Message::NewOrder(limit(4, 1, aapl, side::BUY, 14_000, 1))).unwrap();
    alpha.send(&Message::NewOrder(limit(5, 1, msft, side::BUY, 30_000, 1))).unwrap();
    assert_eq!(next_report(&mut alpha).report_type, report_type::ACCEPTED);
    assert_eq!(next_report(&mut alpha).report_type, report_type::ACCEPTED);
    let mass = MassCancel { request_id: 6, portfolio_id: 1, symbol_id: ALL_SYMBOLS, padding: [0; 2] };
    alpha.send(&Message::MassCancel(mass)).unwrap();
    let mut symbols = [next_report(&mut alpha), next_report(&mut alpha)];
    symbols.sort_by_key(|r| r.symbol_id);
    assert!(symbols.iter().all(|r| r.report_type == report_type::CANCELLED && r.request_id == 6));
    assert_eq!(symbols.iter().map(|r| r.symbol_id).collect::<Vec<_>>(), {
        let mut ids = vec![aapl, msft];
        ids.sort();
        ids
    });

    // An engine reject carries the engine's reason code.
    alpha.send(&Message::NewOrder(limit(8, 1, aapl, side::BUY, 14_000, 0))).unwrap();
    let rejected = next_report(&mut alpha);
    assert_eq!((rejected.report_type, rejected.request_id), (report_type::REJECTED, 8));
    assert_eq!(rejected.reason, RejectReason::QuantityNotPositive.code());

    // A GTD order expires when time passes (the admin's time advance is someone else's command,
    // so the report reaches alpha through the tap).
    let expire_at_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let gtd = NewOrder {
        time_in_force: time_in_force::GTD,
        expire_at_ns: expire_at_ns + 50_000_000,
        ..limit(9, 1, aapl, side::BUY, 14_000, 2)
    };
    alpha.send(&Message::NewOrder(gtd)).unwrap();
    assert_eq!(next_report(&mut alpha).report_type, report_type::ACCEPTED);
    std::thread::sleep(Duration::from_millis(100));
    run(venue.admin(), CommandBody::AdvanceTime);
    let expired = next_report(&mut alpha);
    assert_eq!((expired.report_type, expired.request_id, expired.qty_lots), (report_type::EXPIRED, 0, 2));
    assert_eq!(expired.reason, CancelReason::Expired.code());

    // Heartbeat and logout.
    alpha.sender.heartbeat(1).unwrap();
    alpha.sender.logout().unwrap();
    expect_logout(&mut alpha, logout_reason::REQUESTED);
}

#[test]
fn orders_placed_by_others_reach_their_owner_through_the_tap() {
    let mut venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut gamma = venue.logged_in("gamma-key");
    let mut alpha = venue.logged_in("alpha-key");
    // Gamma's portfolio trades through another producer (as the HTTP gateway would).
    run(
        venue.admin(),
        CommandBody::NewOrder(simex_engine::NewOrder::limit(3, aapl, simex_engine::Side::Sell, 15_000, 4)),
    );
    let accepted = next_report(&mut gamma);
    assert_eq!((accepted.report_type, accepted.request_id, accepted.qty_lots), (report_type::ACCEPTED, 0, 4));
    alpha.send(&Message::NewOrder(limit(1, 1, aapl, side::BUY, 15_000, 4))).unwrap();
    assert_eq!(next_report(&mut alpha).report_type, report_type::ACCEPTED);
    assert_eq!(next_report(&mut alpha).report_type, report_type::FILL);
    let maker = next_report(&mut gamma);
    assert_eq!((maker.report_type, maker.order_id, maker.report_seq), (report_type::FILL, accepted.order_id, 2));
}

#[test]
fn login_failures_and_unowned_portfolios_are_refused() {
    let venue = Venue::standard(BinaryConfig::default());
    let mut client = venue.client();
    assert!(matches!(client.login("no-such-key", 0), Err(ClientError::LoginRejected(login_reject::UNKNOWN_KEY))));
    assert!(matches!(client.recv(), Err(ClientError::Closed)));

    let mut client = venue.client();
    let mut api_key = [0u8; 64];
    api_key[0] = 0xff;
    client.send(&Message::Login(Login { api_key, heartbeat_interval_ms: 0, padding: [0; 4] })).unwrap();
    match client.recv().unwrap().message {
        Message::LoginRejected(rejected) => assert_eq!(rejected.reason, login_reject::BAD_KEY_TEXT),
        other => panic!("expected a login reject, got {other:?}"),
    }

    let mut client = venue.client();
    client.send(&Message::NewOrder(limit(1, 1, venue.aapl, side::BUY, 100, 1))).unwrap();
    expect_logout(&mut client, logout_reason::NOT_LOGGED_IN);

    let mut alpha = venue.logged_in("alpha-key");
    alpha.send(&Message::NewOrder(limit(1, 2, venue.aapl, side::BUY, 100, 1))).unwrap();
    let rejected = next_report(&mut alpha);
    assert_eq!(
        (rejected.report_type, rejected.reason, rejected.request_id),
        (report_type::REJECTED, gateway_reject::PORTFOLIO_NOT_OWNED, 1)
    );
    alpha.send(&Message::Cancel(Cancel { request_id: 2, order_id: 1, portfolio_id: 3, padding: [0; 4] })).unwrap();
    assert_eq!(next_report(&mut alpha).reason, gateway_reject::PORTFOLIO_NOT_OWNED);
    let stop = NewOrder { trigger_price_ticks: 99, ..limit(3, 1, venue.aapl, side::BUY, 100, 1) };
    alpha.send(&Message::NewOrder(stop)).unwrap();
    assert_eq!(next_report(&mut alpha).reason, gateway_reject::UNSUPPORTED);
}

#[test]
fn a_reconnecting_client_gets_the_reports_it_missed() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut alpha = venue.logged_in("alpha-key");
    alpha.send(&Message::NewOrder(limit(1, 1, aapl, side::SELL, 15_000, 10))).unwrap();
    let accepted = next_report(&mut alpha);
    let last_seen = accepted.report_seq;
    alpha.sender.logout().unwrap();
    expect_logout(&mut alpha, logout_reason::REQUESTED);

    // While alpha is away, beta trades against its order twice.
    let mut beta = venue.logged_in("beta-key");
    for (request_id, qty_lots) in [(1, 3), (2, 4)] {
        beta.send(&Message::NewOrder(limit(request_id, 2, aapl, side::BUY, 15_000, qty_lots))).unwrap();
        assert_eq!(next_report(&mut beta).report_type, report_type::ACCEPTED);
        assert_eq!(next_report(&mut beta).report_type, report_type::FILL);
    }

    let mut alpha = venue.client();
    let login = alpha.login("alpha-key", 0).unwrap();
    assert_eq!(login.next_report_seq, last_seen + 3, "two fills happened while away");
    alpha.sender.resend(last_seen + 1).unwrap();
    let missed = [next_report(&mut alpha), next_report(&mut alpha)];
    assert_eq!(missed.map(|r| r.report_seq), [last_seen + 1, last_seen + 2]);
    assert_eq!(missed.map(|r| r.qty_lots), [3, 4]);
    assert!(missed.iter().all(|r| r.report_type == report_type::FILL && r.order_id == accepted.order_id));
    assert!(missed.iter().all(|r| r.flags & 1 == 1), "resent reports are flagged");

    // Live reports continue after the resend, with the next number and no flag.
    alpha
        .send(&Message::Cancel(Cancel { request_id: 9, order_id: accepted.order_id, portfolio_id: 1, padding: [0; 4] }))
        .unwrap();
    let cancelled = next_report(&mut alpha);
    assert_eq!(
        (cancelled.report_type, cancelled.report_seq, cancelled.flags, cancelled.qty_lots),
        (report_type::CANCELLED, last_seen + 3, 0, 3)
    );

    // A resend from 1 replays the whole history.
    alpha.sender.resend(1).unwrap();
    let all: Vec<u64> = (0..4).map(|_| next_report(&mut alpha).report_seq).collect();
    assert_eq!(all, vec![1, 2, 3, 4]);
}

#[test]
fn market_data_carries_top_of_book_and_trades_with_engine_sequences() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut watcher = venue.logged_in("gamma-key");
    watcher.sender.subscribe(aapl).unwrap();
    let first = frames_until(&mut watcher, |m| matches!(m, Message::TopOfBook(_)));
    let Message::TopOfBook(empty) = first.last().unwrap().message else { unreachable!() };
    assert_eq!((empty.bid_qty_lots, empty.ask_qty_lots), (0, 0));

    let mut alpha = venue.logged_in("alpha-key");
    let mut beta = venue.logged_in("beta-key");
    alpha.send(&Message::NewOrder(limit(1, 1, aapl, side::SELL, 15_000, 10))).unwrap();
    next_report(&mut alpha);
    let tops = frames_until(&mut watcher, |m| matches!(m, Message::TopOfBook(t) if t.ask_qty_lots == 10));
    let Message::TopOfBook(top) = tops.last().unwrap().message else { unreachable!() };
    assert_eq!((top.ask_price_ticks, top.bid_qty_lots, top.symbol_id), (15_000, 0, aapl));
    assert!(top.engine_seq > 0);

    beta.send(&Message::NewOrder(limit(1, 2, aapl, side::BUY, 15_000, 4))).unwrap();
    next_report(&mut beta);
    let fill = next_report(&mut beta);
    let frames = frames_until(&mut watcher, |m| matches!(m, Message::TopOfBook(t) if t.ask_qty_lots == 6));
    let trade = frames
        .iter()
        .find_map(|f| match f.message {
            Message::Trade(trade) => Some(trade),
            _ => None,
        })
        .expect("a trade before the new top");
    assert_eq!((trade.price_ticks, trade.qty_lots, trade.taker_side), (15_000, 4, side::BUY));
    assert_eq!((trade.engine_seq, trade.trade_id), (fill.engine_seq, fill.trade_id));
    let Message::TopOfBook(after) = frames.last().unwrap().message else { unreachable!() };
    assert!(after.engine_seq >= trade.engine_seq);

    watcher.sender.subscribe(9999).unwrap();
    match watcher.recv_skipping_heartbeats().unwrap().message {
        Message::RequestRejected(rejected) => {
            assert_eq!(
                (rejected.message_type, rejected.reason),
                (message_type::SUBSCRIBE, gateway_reject::UNKNOWN_SYMBOL)
            )
        }
        other => panic!("expected a request reject, got {other:?}"),
    }
}

#[test]
fn malformed_frames_end_only_their_own_session() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut bystander = venue.logged_in("gamma-key");

    // Oversized length.
    let mut oversized = venue.logged_in("alpha-key");
    let mut header = [0u8; 16];
    header[..4].copy_from_slice(&((FRAME_MAX as u32) + 1).to_le_bytes());
    oversized.sender.send_raw(&header).unwrap();
    expect_logout(&mut oversized, logout_reason::MALFORMED_FRAME);

    // Unknown message type with a plausible length.
    let mut unknown = venue.logged_in("alpha-key");
    let mut frame = [0u8; 24];
    frame[..4].copy_from_slice(&24u32.to_le_bytes());
    frame[4..6].copy_from_slice(&77u16.to_le_bytes());
    unknown.sender.send_raw(&frame).unwrap();
    expect_logout(&mut unknown, logout_reason::MALFORMED_FRAME);

    // Length that does not match the type.
    let mut wrong_length = venue.logged_in("alpha-key");
    let mut frame = [0u8; 24];
    frame[..4].copy_from_slice(&24u32.to_le_bytes());
    frame[4..6].copy_from_slice(&message_type::NEW_ORDER.to_le_bytes());
    wrong_length.sender.send_raw(&frame).unwrap();
    expect_logout(&mut wrong_length, logout_reason::MALFORMED_FRAME);

    // A server-only message from a client.
    let mut backwards = venue.logged_in("alpha-key");
    backwards.send(&Message::ExecutionReport(ExecutionReport::default())).unwrap();
    expect_logout(&mut backwards, logout_reason::UNEXPECTED_MESSAGE);

    // A bad enum value is a reject, and the session goes on.
    let mut bad_side = venue.logged_in("alpha-key");
    bad_side.send(&Message::NewOrder(NewOrder { side: 9, ..limit(41, 1, aapl, side::BUY, 100, 1) })).unwrap();
    let rejected = next_report(&mut bad_side);
    assert_eq!(
        (rejected.report_type, rejected.reason, rejected.request_id),
        (report_type::REJECTED, gateway_reject::INVALID_FIELD, 41)
    );
    bad_side.send(&Message::NewOrder(limit(42, 1, aapl, side::BUY, 100, 1))).unwrap();
    let accepted = next_report(&mut bad_side);
    assert_eq!((accepted.report_type, accepted.request_id), (report_type::ACCEPTED, 42));

    // The bystander never noticed.
    bystander.send(&Message::NewOrder(limit(1, 3, aapl, side::BUY, 100, 1))).unwrap();
    assert_eq!(next_report(&mut bystander).report_type, report_type::ACCEPTED);
}

#[test]
fn a_client_that_does_not_read_is_disconnected_as_a_slow_consumer() {
    let config =
        BinaryConfig { outbound_bytes_max: 8 * 1024, socket_send_buffer_bytes: Some(4096), ..Default::default() };
    let keys = MemoryKeys::new().with_user("trader-key", 1, &[1, 2]).with_user("gamma-key", 3, &[3]);
    let venue = Venue::start(config, keys, &[1, 2, 3]);
    let aapl = venue.aapl;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&venue.address.into()).unwrap();
    let mut slow = Client::from_stream(socket.into()).unwrap();
    slow.receiver.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    slow.login("gamma-key", 60_000).unwrap();
    slow.sender.subscribe(aapl).unwrap();

    // One trader rests an order from one portfolio and takes it from another, a few thousand
    // times without reading in between: each trade is a trade and a top-of-book frame for the
    // subscriber that never reads.
    let mut trader = venue.logged_in("trader-key");
    let trades = 2_000;
    for round in 0..trades {
        let price_ticks = 15_000 + (round % 50) as i64;
        trader.sender.queue(&Message::NewOrder(limit(round, 1, aapl, side::SELL, price_ticks, 1)));
        trader.sender.queue(&Message::NewOrder(limit(round, 2, aapl, side::BUY, price_ticks, 1)));
        if round % 100 == 99 {
            trader.sender.flush().unwrap();
            // Read what the trader was sent, so that only the subscriber falls behind.
            for _ in 0..400 {
                next_report(&mut trader);
            }
        }
    }
    // The subscriber reads now: what was buffered, then the end of its session.
    let mut frames = 0u64;
    let ended = loop {
        match slow.recv() {
            Ok(Frame { message: Message::Logout(logout), .. }) => break Some(logout.reason),
            Ok(_) => frames += 1,
            Err(ClientError::Closed) => break None,
            Err(error) => panic!("the slow consumer was not disconnected after {frames} frames: {error}"),
        }
    };
    assert!(ended.is_none_or(|reason| reason == logout_reason::SLOW_CONSUMER), "{ended:?}");
    assert!(frames < 2 * trades, "it was cut off before receiving everything ({frames} frames)");

    // The trader is unaffected.
    trader.send(&Message::NewOrder(limit(99_999, 1, aapl, side::SELL, 16_000, 1))).unwrap();
    assert_eq!(next_report(&mut trader).report_type, report_type::ACCEPTED);
}

#[test]
fn a_silent_client_gets_heartbeats_then_is_timed_out() {
    let venue = Venue::standard(BinaryConfig::default());
    let mut client = venue.client();
    let login = client.login("alpha-key", 50).unwrap();
    assert_eq!(login.heartbeat_interval_ms, 50);
    let frames = frames_until(&mut client, |m| matches!(m, Message::Logout(_)));
    assert!(frames.iter().any(|f| matches!(f.message, Message::Heartbeat(_))), "the server sent heartbeats");
    let Message::Logout(logout) = frames.last().unwrap().message else { unreachable!() };
    assert_eq!(logout.reason, logout_reason::HEARTBEAT_TIMEOUT);
    // Server frames are numbered from 1 without gaps.
    let sequences: Vec<u64> = std::iter::once(1).chain(frames.iter().map(|f| f.sequence)).collect();
    assert!(sequences.windows(2).all(|w| w[1] == w[0] + 1), "{sequences:?}");
}

#[test]
fn fifty_sessions_trade_at_once() {
    let sessions = 50u32;
    let mut keys = MemoryKeys::new();
    let portfolios: Vec<u32> = (0..sessions).map(|i| 100 + i).collect();
    for (index, &portfolio_id) in portfolios.iter().enumerate() {
        keys = keys.with_user(&format!("key-{index}"), 100 + index as u64, &[portfolio_id]);
    }
    let venue = Venue::start(BinaryConfig::default(), keys, &portfolios);
    let aapl = venue.aapl;
    let clients: Vec<Client> = (0..sessions).map(|index| venue.logged_in(&format!("key-{index}"))).collect();
    std::thread::scope(|scope| {
        for (index, mut client) in clients.into_iter().enumerate() {
            scope.spawn(move || {
                let portfolio_id = 100 + index as u32;
                for round in 0..10u64 {
                    let order = limit(round, portfolio_id, aapl, side::BUY, 10_000 + index as i64, 1);
                    client.send(&Message::NewOrder(order)).unwrap();
                    let accepted = next_report(&mut client);
                    assert_eq!((accepted.report_type, accepted.request_id), (report_type::ACCEPTED, round));
                    let cancel =
                        Cancel { request_id: 1000 + round, order_id: accepted.order_id, portfolio_id, padding: [0; 4] };
                    client.send(&Message::Cancel(cancel)).unwrap();
                    let cancelled = next_report(&mut client);
                    assert_eq!((cancelled.report_type, cancelled.request_id), (report_type::CANCELLED, 1000 + round));
                }
                client.sender.logout().unwrap();
                expect_logout(&mut client, logout_reason::REQUESTED);
            });
        }
    });
}

#[test]
fn resend_survives_a_restart_with_the_report_journal() {
    let root = std::env::temp_dir().join(format!("simex-binary-reports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let settings =
        simex::binary::ReportJournalSettings { root: root.clone(), durability: simex_journal::Durability::Sync };
    let config = BinaryConfig { report_journal: Some(settings), ..Default::default() };
    let before = {
        let venue = Venue::standard(config.clone());
        let mut alpha = venue.logged_in("alpha-key");
        let mut beta = venue.logged_in("beta-key");
        alpha.send(&Message::NewOrder(limit(1, 1, venue.aapl, side::SELL, 15_000, 5))).unwrap();
        let accepted = next_report(&mut alpha);
        beta.send(&Message::NewOrder(limit(1, 2, venue.aapl, side::BUY, 15_000, 2))).unwrap();
        next_report(&mut beta);
        next_report(&mut beta);
        let fill = next_report(&mut alpha);
        assert_eq!((fill.report_type, fill.report_seq), (report_type::FILL, 2));
        [accepted, fill]
    };

    let venue = Venue::standard(config);
    let mut alpha = venue.client();
    let login = alpha.login("alpha-key", 0).unwrap();
    assert_eq!(login.next_report_seq, 3, "the journal brought back alpha's two reports");
    alpha.sender.resend(1).unwrap();
    let again = [next_report(&mut alpha), next_report(&mut alpha)];
    for (old, new) in before.iter().zip(&again) {
        assert_eq!(ExecutionReport { flags: 1, ..*old }, *new);
    }
    drop(venue);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_pipelining_client_that_reads_is_held_back_not_disconnected() {
    // A small outbound buffer and a short report lag (a few inbound buffers' worth of answers), so
    // that the gateway must hold the client back.
    let config = BinaryConfig { outbound_bytes_max: 16 * 1024, report_lag_max: 4_000, ..Default::default() };
    let venue = Venue::standard(config);
    let client = venue.logged_in("alpha-key");
    let (mut sender, mut receiver) = client.split();
    let orders = 20_000u64;
    let aapl = venue.aapl;
    let reader = std::thread::spawn(move || {
        let mut done = 0u64;
        while done < orders {
            match receiver.recv().expect("a frame").message {
                Message::ExecutionReport(report) if report.report_type == report_type::CANCELLED => done += 1,
                Message::ExecutionReport(report) if report.report_type == report_type::REJECTED => {
                    panic!("rejected: {report:?}")
                }
                Message::Logout(logout) => panic!("logged out with reason {} after {done} orders", logout.reason),
                _ => {}
            }
        }
        done
    });
    for request_id in 1..=orders {
        let order = NewOrder { time_in_force: time_in_force::IOC, ..limit(request_id, 1, aapl, side::BUY, 100, 1) };
        sender.queue(&Message::NewOrder(order));
        if request_id % 256 == 0 {
            sender.flush().unwrap();
        }
    }
    sender.flush().unwrap();
    assert_eq!(reader.join().expect("reader"), orders);
}

// Conditional and linked orders. Prices move by trades between alpha (who sells) and gamma (who
// buys); beta holds the conditional orders, so beta's reports of a fired order reach it through the
// gateway whoever caused the print.

fn conditional(
    request_id: u64,
    side_code: u8,
    trigger_code: u8,
    trigger_price_ticks: i64,
    qty_lots: i64,
) -> NewConditionalOrder {
    NewConditionalOrder {
        request_id,
        client_order_id: protocol::fixed_text(&format!("s{request_id}")).unwrap(),
        portfolio_id: 2,
        symbol_id: 0,
        side: side_code,
        order_kind: order_kind::MARKET,
        qty_lots,
        trigger_price_ticks,
        trigger: trigger_code,
        time_in_force: time_in_force::IOC,
        ..NewConditionalOrder::default()
    }
}

/// A trade at `price_ticks` in `symbol_id`: gamma rests a bid of one lot and alpha sells into it.
fn print_trade(alpha: &mut Client, gamma: &mut Client, symbol_id: u16, price_ticks: i64, request_id: u64) {
    gamma.send(&Message::NewOrder(limit(request_id, 3, symbol_id, side::BUY, price_ticks, 1))).unwrap();
    assert_eq!(next_report(gamma).report_type, report_type::ACCEPTED);
    let sell =
        NewOrder { time_in_force: time_in_force::IOC, ..limit(request_id, 1, symbol_id, side::SELL, price_ticks, 1) };
    alpha.send(&Message::NewOrder(sell)).unwrap();
    assert_eq!(next_report(alpha).report_type, report_type::ACCEPTED);
    let fill = next_report(alpha);
    assert_eq!((fill.report_type, fill.price_ticks), (report_type::FILL, price_ticks));
    assert_eq!(next_report(gamma).report_type, report_type::FILL);
}

fn is_waiting(report: &ExecutionReport) -> bool {
    report.report_type == report_type::ACCEPTED && report.flags & report_flags::WAITING != 0
}

#[test]
fn a_stop_waits_off_book_then_triggers_on_a_trade_and_fills() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut alpha = venue.logged_in("alpha-key");
    let mut beta = venue.logged_in("beta-key");
    let mut gamma = venue.logged_in("gamma-key");
    alpha.send(&Message::NewOrder(limit(1, 1, aapl, side::SELL, 15_100, 5))).unwrap();
    assert_eq!(next_report(&mut alpha).report_type, report_type::ACCEPTED);

    let stop = NewConditionalOrder { symbol_id: aapl, ..conditional(1, side::BUY, trigger::STOP, 15_050, 3) };
    beta.send(&Message::NewConditionalOrder(stop)).unwrap();
    let waiting = next_report(&mut beta);
    assert!(is_waiting(&waiting), "{waiting:?}");
    assert_eq!((waiting.request_id, waiting.qty_lots, waiting.order_kind), (1, 3, order_kind::MARKET));
    assert_eq!(protocol::text_of(&waiting.client_order_id), Some("s1"));

    // A print below the trigger fires nothing; one at 15,060 fires the stop, which buys at 15,100.
    print_trade(&mut alpha, &mut gamma, aapl, 15_000, 10);
    print_trade(&mut alpha, &mut gamma, aapl, 15_060, 11);
    let triggered = next_report(&mut beta);
    assert_eq!((triggered.report_type, triggered.order_id), (report_type::TRIGGERED, waiting.order_id));
    assert_eq!((triggered.price_ticks, triggered.request_id), (15_060, 0));
    let accepted = next_report(&mut beta);
    assert_eq!((accepted.report_type, accepted.order_id, accepted.flags), (report_type::ACCEPTED, waiting.order_id, 0));
    let fill = next_report(&mut beta);
    assert_eq!((fill.report_type, fill.order_id), (report_type::FILL, waiting.order_id));
    assert_eq!((fill.price_ticks, fill.qty_lots, fill.liquidity), (15_100, 3, 2));
}

#[test]
fn a_trailing_stop_follows_the_high_and_fires_on_the_pullback() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut alpha = venue.logged_in("alpha-key");
    let mut beta = venue.logged_in("beta-key");
    let mut gamma = venue.logged_in("gamma-key");
    print_trade(&mut alpha, &mut gamma, aapl, 15_000, 1);
    // The liquidity the fired stop sells into.
    gamma.send(&Message::NewOrder(limit(2, 3, aapl, side::BUY, 14_950, 5))).unwrap();
    assert_eq!(next_report(&mut gamma).report_type, report_type::ACCEPTED);

    let trail = NewConditionalOrder {
        symbol_id: aapl,
        trail_ticks: 100,
        ..conditional(1, side::SELL, trigger::TRAILING_STOP, 0, 2)
    };
    beta.send(&Message::NewConditionalOrder(trail)).unwrap();
    let waiting = next_report(&mut beta);
    assert!(is_waiting(&waiting), "{waiting:?}");

    // The high goes to 15,200 (stop 15,100); 15,150 fires nothing, 15,100 fires it.
    print_trade(&mut alpha, &mut gamma, aapl, 15_200, 3);
    print_trade(&mut alpha, &mut gamma, aapl, 15_150, 4);
    print_trade(&mut alpha, &mut gamma, aapl, 15_100, 5);
    let triggered = next_report(&mut beta);
    assert_eq!(
        (triggered.report_type, triggered.order_id, triggered.price_ticks),
        (report_type::TRIGGERED, waiting.order_id, 15_100)
    );
    assert_eq!(next_report(&mut beta).report_type, report_type::ACCEPTED);
    let fill = next_report(&mut beta);
    assert_eq!((fill.report_type, fill.price_ticks, fill.qty_lots), (report_type::FILL, 14_950, 2));

    // A trail in basis points is accepted too.
    let bps = NewConditionalOrder {
        symbol_id: aapl,
        trail_bps: 50,
        ..conditional(2, side::SELL, trigger::TRAILING_STOP, 0, 1)
    };
    beta.send(&Message::NewConditionalOrder(bps)).unwrap();
    assert!(is_waiting(&next_report(&mut beta)));
}

#[test]
fn when_one_order_of_an_oco_pair_fires_the_other_is_cancelled_linked() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut alpha = venue.logged_in("alpha-key");
    let mut beta = venue.logged_in("beta-key");
    let mut gamma = venue.logged_in("gamma-key");
    gamma.send(&Message::NewOrder(limit(1, 3, aapl, side::BUY, 14_700, 5))).unwrap();
    assert_eq!(next_report(&mut gamma).report_type, report_type::ACCEPTED);

    let take_profit = NewConditionalOrder {
        symbol_id: aapl,
        order_kind: order_kind::LIMIT,
        price_ticks: 15_200,
        time_in_force: time_in_force::GTC,
        ..conditional(1, side::SELL, trigger::TAKE_PROFIT, 15_200, 1)
    };
    beta.send(&Message::NewConditionalOrder(take_profit)).unwrap();
    let take_profit = next_report(&mut beta);
    assert!(is_waiting(&take_profit), "{take_profit:?}");
    let stop = NewConditionalOrder {
        symbol_id: aapl,
        oco_order_id: take_profit.order_id,
        ..conditional(2, side::SELL, trigger::STOP, 14_800, 1)
    };
    beta.send(&Message::NewConditionalOrder(stop)).unwrap();
    let stop = next_report(&mut beta);
    assert!(is_waiting(&stop), "{stop:?}");

    print_trade(&mut alpha, &mut gamma, aapl, 14_800, 2);
    let reports: Vec<ExecutionReport> = (0..4).map(|_| next_report(&mut beta)).collect();
    let kinds: Vec<(u8, u64)> = reports.iter().map(|r| (r.report_type, r.order_id)).collect();
    assert!(kinds.contains(&(report_type::TRIGGERED, stop.order_id)), "{reports:?}");
    assert!(kinds.contains(&(report_type::ACCEPTED, stop.order_id)), "{reports:?}");
    assert!(kinds.contains(&(report_type::FILL, stop.order_id)), "{reports:?}");
    let cancelled = reports.iter().find(|r| r.report_type == report_type::CANCELLED).expect("the peer is cancelled");
    assert_eq!((cancelled.order_id, cancelled.reason), (take_profit.order_id, CancelReason::Linked.code()));
}

#[test]
fn a_bracket_entry_fills_and_its_exits_appear_then_one_exit_fires() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut alpha = venue.logged_in("alpha-key");
    let mut beta = venue.logged_in("beta-key");
    let mut gamma = venue.logged_in("gamma-key");
    alpha.send(&Message::NewOrder(limit(1, 1, aapl, side::SELL, 15_000, 2))).unwrap();
    assert_eq!(next_report(&mut alpha).report_type, report_type::ACCEPTED);
    gamma.send(&Message::NewOrder(limit(1, 3, aapl, side::BUY, 14_600, 5))).unwrap();
    assert_eq!(next_report(&mut gamma).report_type, report_type::ACCEPTED);

    let bracket = NewBracket {
        request_id: 7,
        client_order_id: protocol::fixed_text("entry").unwrap(),
        portfolio_id: 2,
        symbol_id: aapl,
        side: side::BUY,
        order_kind: order_kind::LIMIT,
        price_ticks: 15_000,
        qty_lots: 2,
        take_profit_price_ticks: 15_300,
        stop_loss_trigger_ticks: 14_700,
        time_in_force: time_in_force::GTC,
        ..NewBracket::default()
    };
    beta.send(&Message::NewBracket(bracket)).unwrap();
    let entry = next_report(&mut beta);
    assert_eq!((entry.report_type, entry.flags, entry.request_id, entry.qty_lots), (report_type::ACCEPTED, 0, 7, 2));
    let take_profit = next_report(&mut beta);
    assert!(is_waiting(&take_profit), "{take_profit:?}");
    assert_eq!(
        (take_profit.side, take_profit.order_kind, take_profit.price_ticks),
        (side::SELL, order_kind::LIMIT, 15_300)
    );
    let stop_loss = next_report(&mut beta);
    assert!(is_waiting(&stop_loss), "{stop_loss:?}");
    assert_eq!((stop_loss.side, stop_loss.order_kind, stop_loss.request_id), (side::SELL, order_kind::MARKET, 7));
    let fill = next_report(&mut beta);
    assert_eq!((fill.report_type, fill.order_id, fill.qty_lots), (report_type::FILL, entry.order_id, 2));
    assert_eq!(next_report(&mut alpha).report_type, report_type::FILL, "alpha's maker fill");

    // A print at 14,700 fires the stop-loss for the 2 lots bought; the take-profit goes with it.
    print_trade(&mut alpha, &mut gamma, aapl, 14_700, 2);
    let reports: Vec<ExecutionReport> = (0..4).map(|_| next_report(&mut beta)).collect();
    let kinds: Vec<(u8, u64)> = reports.iter().map(|r| (r.report_type, r.order_id)).collect();
    assert!(kinds.contains(&(report_type::TRIGGERED, stop_loss.order_id)), "{reports:?}");
    assert!(kinds.contains(&(report_type::CANCELLED, take_profit.order_id)), "{reports:?}");
    let exit_fill = reports.iter().find(|r| r.report_type == report_type::FILL).expect("the stop-loss sells");
    assert_eq!((exit_fill.order_id, exit_fill.qty_lots, exit_fill.price_ticks), (stop_loss.order_id, 2, 14_600));
}

#[test]
fn bad_conditional_orders_are_rejected_with_their_codes() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut beta = venue.logged_in("beta-key");
    let mut reject_of = |message: Message| {
        beta.send(&message).unwrap();
        let report = next_report(&mut beta);
        assert_eq!(report.report_type, report_type::REJECTED, "{message:?}");
        (report.request_id, report.reason)
    };
    let invalid_trigger = RejectReason::InvalidTrigger.code();
    // A trigger code outside its table, decided by the gateway.
    let unknown = NewConditionalOrder { symbol_id: aapl, ..conditional(1, side::BUY, 9, 15_000, 1) };
    assert_eq!(reject_of(Message::NewConditionalOrder(unknown)), (1, gateway_reject::INVALID_FIELD));
    // A stop without a trigger price, a trailing stop with two distances: the engine's code.
    let no_price = NewConditionalOrder { symbol_id: aapl, ..conditional(2, side::BUY, trigger::STOP, 0, 1) };
    assert_eq!(reject_of(Message::NewConditionalOrder(no_price)), (2, invalid_trigger));
    let two_trails = NewConditionalOrder {
        symbol_id: aapl,
        trail_ticks: 10,
        trail_bps: 10,
        ..conditional(3, side::SELL, trigger::TRAILING_STOP, 0, 1)
    };
    assert_eq!(reject_of(Message::NewConditionalOrder(two_trails)), (3, invalid_trigger));
    // An OCO link to an order that does not wait.
    let orphan = NewConditionalOrder {
        symbol_id: aapl,
        oco_order_id: 999,
        ..conditional(4, side::BUY, trigger::STOP, 15_100, 1)
    };
    assert_eq!(reject_of(Message::NewConditionalOrder(orphan)), (4, invalid_trigger));
    // A buy bracket whose take-profit is below its stop-loss.
    let bracket = NewBracket {
        request_id: 5,
        portfolio_id: 2,
        symbol_id: aapl,
        side: side::BUY,
        order_kind: order_kind::LIMIT,
        price_ticks: 15_000,
        qty_lots: 1,
        take_profit_price_ticks: 14_000,
        stop_loss_trigger_ticks: 14_500,
        time_in_force: time_in_force::GTC,
        ..NewBracket::default()
    };
    assert_eq!(reject_of(Message::NewBracket(bracket)), (5, invalid_trigger));
    // A trigger price on a plain new order is a reserved field.
    let plain = NewOrder { trigger_price_ticks: 15_000, ..limit(6, 2, aapl, side::BUY, 15_000, 1) };
    assert_eq!(reject_of(Message::NewOrder(plain)), (6, gateway_reject::UNSUPPORTED));
    // Another user's portfolio.
    let unowned =
        NewConditionalOrder { portfolio_id: 1, symbol_id: aapl, ..conditional(7, side::BUY, trigger::STOP, 15_100, 1) };
    assert_eq!(reject_of(Message::NewConditionalOrder(unowned)), (7, gateway_reject::PORTFOLIO_NOT_OWNED));
}

#[test]
fn a_waiting_stop_can_be_cancelled_but_not_replaced() {
    let venue = Venue::standard(BinaryConfig::default());
    let aapl = venue.aapl;
    let mut beta = venue.logged_in("beta-key");
    let stop = NewConditionalOrder { symbol_id: aapl, ..conditional(1, side::BUY, trigger::STOP, 15_100, 3) };
    beta.send(&Message::NewConditionalOrder(stop)).unwrap();
    let waiting = next_report(&mut beta);
    assert!(is_waiting(&waiting), "{waiting:?}");

    let replace = Replace {
        request_id: 2,
        order_id: waiting.order_id,
        price_ticks: 15_000,
        qty_lots: 2,
        portfolio_id: 2,
        padding: [0; 4],
    };
    beta.send(&Message::Replace(replace)).unwrap();
    let refused = next_report(&mut beta);
    assert_eq!((refused.report_type, refused.request_id), (report_type::REJECTED, 2));
    assert_eq!(refused.reason, RejectReason::NotReplaceable.code());

    beta.send(&Message::Cancel(Cancel { request_id: 3, order_id: waiting.order_id, portfolio_id: 2, padding: [0; 4] }))
        .unwrap();
    let cancelled = next_report(&mut beta);
    assert_eq!(
        (cancelled.report_type, cancelled.request_id, cancelled.order_id),
        (report_type::CANCELLED, 3, waiting.order_id)
    );
    assert_eq!((cancelled.qty_lots, cancelled.reason), (3, CancelReason::User.code()));
}
