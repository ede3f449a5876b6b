//! The binary gateway's event loop: one thread, one `mio::Poll`, every session.
//!
//! Each turn of the loop polls the sockets (zero timeout when busy-polling, while commands are
//! in flight or while sockets have bytes waiting, else a short blocking timeout), reads up to one
//! buffer's worth from each readable socket (until it would block, over as many turns as it takes;
//! a session whose answers are not being read is not read either, so TCP pushes back on it),
//! decodes its frames and submits orders into the runtime through the gateway's own `Submitter`,
//! then drains the submitter's responses and the market-data tap, and finally pumps execution
//! reports from each user's report log into the sessions and flushes them.
//!
//! # Execution reports and resend
//! Every report for a user is appended to that user's report log and numbered there
//! (`report_seq`, from 1, gapless). Sessions never receive reports directly: each has a cursor
//! into its user's log and is pumped from it while its outbound buffer has room. Live delivery and
//! resend are therefore the same mechanism: a resend request moves the cursor back. A session whose
//! cursor falls more than `report_lag_max` behind is a slow consumer and is ended. With a report
//! journal configured, every report is journaled and committed before sessions are pumped, and the
//! logs are read back on start, so resend survives a restart (`report_log`).
//!
//! Reports come from two sources. Commands this gateway submitted come back on its response ring
//! (held until durable when the journal is synchronous), with the request they answer. Events caused
//! by anyone else (a maker fill from another gateway's order, an expiry) are found on the tap. A tap
//! event is reported only once it is known not to be one of this gateway's own: per shard, the
//! engine sequences of the gateway's own events arrive on the response ring in order, so a tap event
//! below the next own sequence, or seen while nothing is in flight to its shard, is someone else's.

use super::auth::{ApiKeys, UserId};
use super::market::MarketMirror;
use super::protocol::{
    self, decode, gateway_reject, login_reject, logout_reason, message_type, report_type, text_of, Cancel, DecodeError,
    ExecutionReport, Heartbeat, Login, LoginAccepted, LoginRejected, Logout, MassCancel, Message, NewBracket,
    NewConditionalOrder, NewOrder, Replace, RequestRejected, Subscription, SymbolDirectory, ALL_SYMBOLS,
};
use super::report_log::{JournaledReport, ReportJournal};
use super::reports::reports_of;
use super::session::{Phase, ReadOutcome, Session};
use super::BinaryConfig;
use crate::runtime::{EventTap, Response, Route, SubmitError, Submitter, Ticket};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use rustc_hash::FxHashMap;
use simex_engine::{ClientOrderId, CommandBody, Event, InstrumentTable};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_SESSION: usize = 2;
/// How often heartbeat and login deadlines are checked.
const TIMER_PERIOD: Duration = Duration::from_millis(10);

/// A command submitted and not yet done.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    user: UserId,
    request_id: u64,
    shards_left: u16,
}

/// One user's report log and the sessions logged in as that user.
#[derive(Debug, Default)]
struct UserLog {
    reports: Vec<ExecutionReport>,
    sessions: Vec<usize>,
}

/// Per shard: what is needed to tell own events on the tap from others'.
#[derive(Debug, Default)]
struct ShardTap {
    own_seqs: VecDeque<u64>,
    waiting: VecDeque<Event>,
    in_flight: u32,
}

pub(super) struct Server {
    config: BinaryConfig,
    poll: Poll,
    listener: TcpListener,
    shutdown: Arc<AtomicBool>,
    submitter: Submitter,
    tap: Option<EventTap>,
    auth: Arc<dyn ApiKeys>,
    instruments: InstrumentTable,
    shard_of_symbol: Vec<u16>,
    sessions: Vec<Option<Session>>,
    free: Vec<usize>,
    dirty: Vec<usize>,
    users: FxHashMap<UserId, UserLog>,
    in_flight: FxHashMap<Ticket, InFlight>,
    shard_taps: Vec<ShardTap>,
    market: MarketMirror,
    subscribers: Vec<Vec<usize>>,
    tops: Vec<protocol::TopOfBook>,
    /// Sessions with bytes (possibly) waiting to be read.
    to_read: Vec<usize>,
    journal: Option<ReportJournal>,
    journal_pending: bool,
}

impl Server {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: BinaryConfig,
        poll: Poll,
        listener: TcpListener,
        shutdown: Arc<AtomicBool>,
        submitter: Submitter,
        tap: Option<EventTap>,
        auth: Arc<dyn ApiKeys>,
        instruments: InstrumentTable,
        journal: Option<(ReportJournal, Vec<JournaledReport>)>,
    ) -> Server {
        let symbols = instruments.len();
        let shard_of_symbol = (0..symbols)
            .map(|id| {
                let probe = CommandBody::SetHalted { symbol_id: id as u16, halted: false };
                match submitter.route(&probe) {
                    Route::Shard(shard) => shard as u16,
                    Route::AllShards => 0,
                }
            })
            .collect();
        let shards = submitter.shards();
        let mut users: FxHashMap<UserId, UserLog> = FxHashMap::default();
        let journal = journal.map(|(journal, reports)| {
            for journaled in reports {
                users.entry(journaled.user_id).or_default().reports.push(journaled.report);
            }
            journal
        });
        Server {
            config,
            poll,
            listener,
            shutdown,
            submitter,
            tap,
            auth,
            instruments,
            shard_of_symbol,
            sessions: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            users,
            in_flight: FxHashMap::default(),
            shard_taps: (0..shards).map(|_| ShardTap::default()).collect(),
            market: MarketMirror::new(symbols),
            subscribers: vec![Vec::new(); symbols],
            tops: Vec::with_capacity(symbols),
            to_read: Vec::new(),
            journal,
            journal_pending: false,
        }
    }

    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_timer = Instant::now() + TIMER_PERIOD;
        while !self.shutdown.load(Ordering::Acquire) {
            let hurry = self.config.busy_poll || !self.in_flight.is_empty() || self.reads_ready();
            let timeout = if hurry { Duration::ZERO } else { self.config.idle_poll_timeout };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != std::io::ErrorKind::Interrupted {
                    tracing::warn!(%error, "binary gateway poll failed");
                }
            }
            let now = Instant::now();
            let mut worked = !events.is_empty();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => {}
                    Token(token) => {
                        let index = token - FIRST_SESSION;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.want_read(index);
                        }
                        self.mark_dirty(index);
                    }
                }
            }
            worked |= self.read_sessions(now);
            worked |= self.drain_responses();
            worked |= self.drain_tap();
            if now >= next_timer {
                next_timer = now + TIMER_PERIOD;
                self.check_timers(now);
            }
            self.commit_journal();
            self.pump_dirty(now);
            if hurry && !worked && !self.config.busy_poll {
                std::thread::yield_now();
            }
        }
        for index in 0..self.sessions.len() {
            if let Some(session) = self.sessions[index].as_mut() {
                session.close(logout_reason::SHUTDOWN);
                self.mark_dirty(index);
            }
        }
        self.commit_journal();
        self.pump_dirty(Instant::now());
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut socket, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    tracing::warn!(%error, "binary gateway accept failed");
                    return;
                }
            };
            let live = self.sessions.len() - self.free.len();
            if live >= self.config.sessions_max {
                continue;
            }
            let _ = socket.set_nodelay(true);
            if let Some(bytes) = self.config.socket_send_buffer_bytes {
                let _ = socket2::SockRef::from(&socket).set_send_buffer_size(bytes);
            }
            let index = self.free.pop().unwrap_or_else(|| {
                self.sessions.push(None);
                self.sessions.len() - 1
            });
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self.poll.registry().register(&mut socket, Token(index + FIRST_SESSION), interest).is_err() {
                self.free.push(index);
                continue;
            }
            let session = Session::new(
                socket,
                now,
                self.config.login_timeout,
                self.config.outbound_bytes_max,
                self.instruments.len(),
            );
            self.sessions[index] = Some(session);
        }
    }

    fn mark_dirty(&mut self, index: usize) {
        if let Some(session) = self.sessions.get_mut(index).and_then(Option::as_mut) {
            if !session.dirty {
                session.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    fn want_read(&mut self, index: usize) {
        if let Some(session) = self.sessions.get_mut(index).and_then(Option::as_mut) {
            if !session.read_pending {
                session.read_pending = true;
                self.to_read.push(index);
            }
        }
    }

    /// Whether a session must not be read for now: its answers are not being read fast enough, so
    /// its requests wait in the kernel (TCP flow control pushes back on the client) until they are.
    fn throttled(&self, index: usize) -> bool {
        let Some(session) = self.sessions[index].as_ref() else { return false };
        let lag = match session.user() {
            Some(user) => {
                let available = self.users.get(&user).map_or(0, |log| log.reports.len() as u64);
                (available + 1).saturating_sub(session.report_cursor)
            }
            None => 0,
        };
        !session.has_room() || lag > self.config.report_lag_max / 2
    }

    /// Whether some session has bytes waiting and may be read.
    fn reads_ready(&self) -> bool {
        self.in_flight.len() < self.config.in_flight_max && self.to_read.iter().any(|&index| !self.throttled(index))
    }

    /// Reads at most one buffer's worth from each session that has bytes waiting, so that one busy
    /// client cannot hold the loop, and answers are pumped between reads.
    fn read_sessions(&mut self, now: Instant) -> bool {
        if self.in_flight.len() >= self.config.in_flight_max {
            return false;
        }
        let mut pending = std::mem::take(&mut self.to_read);
        let mut worked = false;
        for index in pending.drain(..) {
            if self.sessions[index].is_none() {
                continue;
            }
            if self.throttled(index) {
                self.to_read.push(index);
                continue;
            }
            if let Some(session) = self.sessions[index].as_mut() {
                session.read_pending = false;
            }
            worked = true;
            if self.read_session(index, now) {
                self.want_read(index);
            }
        }
        if self.to_read.is_empty() {
            self.to_read = pending;
        } else {
            self.to_read.append(&mut pending);
        }
        worked
    }

    /// Reads one buffer's worth and handles its frames; `true` if there may be more to read.
    fn read_session(&mut self, index: usize, now: Instant) -> bool {
        let Some(session) = self.sessions[index].as_mut() else { return false };
        if session.closing.is_some() {
            return false;
        }
        let (outcome, full) = session.read(now);
        self.handle_frames(index, now);
        if outcome == ReadOutcome::Closed {
            if let Some(session) = self.sessions[index].as_mut() {
                session.close(logout_reason::REQUESTED);
            }
            return false;
        }
        full
    }

    fn handle_frames(&mut self, index: usize, now: Instant) {
        loop {
            let Some(session) = self.sessions[index].as_mut() else { return };
            if session.closing.is_some() {
                return;
            }
            match decode(session.unread()) {
                Ok(None) => return,
                Ok(Some((frame, len))) => {
                    session.consume(len);
                    self.handle_message(index, frame.message, now);
                }
                Err(error) => match error.frame_len() {
                    Some(len) => {
                        session.consume(len);
                        self.handle_bad_value(index, error);
                    }
                    None => {
                        tracing::debug!(%error, "binary session sent a malformed frame");
                        session.close(logout_reason::MALFORMED_FRAME);
                        return;
                    }
                },
            }
        }
    }

    fn handle_bad_value(&mut self, index: usize, error: DecodeError) {
        let Some(session) = self.sessions[index].as_mut() else { return };
        let Some(user) = session.user() else {
            session.close(logout_reason::NOT_LOGGED_IN);
            return;
        };
        if let DecodeError::BadValue { request_id, .. } = error {
            let report = ExecutionReport { request_id, ..gateway_reject_report(gateway_reject::INVALID_FIELD) };
            self.append_report(user, report);
        }
    }

    fn handle_message(&mut self, index: usize, message: Message, now: Instant) {
        let Some(session) = self.sessions[index].as_mut() else { return };
        let user = match (session.phase, &message) {
            (Phase::AwaitingLogin { .. }, Message::Login(login)) => {
                let login = *login;
                self.login(index, &login);
                return;
            }
            (Phase::AwaitingLogin { .. }, _) => {
                session.close(logout_reason::NOT_LOGGED_IN);
                return;
            }
            (Phase::Active { user }, _) => user,
        };
        match message {
            Message::Login(_) => session.close(logout_reason::ALREADY_LOGGED_IN),
            Message::Logout(_) => session.close(logout_reason::REQUESTED),
            Message::Heartbeat(_) => {}
            Message::NewOrder(order) => self.new_order(user, &order),
            Message::NewConditionalOrder(order) => self.new_conditional_order(user, &order),
            Message::NewBracket(bracket) => self.new_bracket(user, &bracket),
            Message::Cancel(Cancel { request_id, order_id, portfolio_id, .. }) => {
                self.submit(user, request_id, portfolio_id, CommandBody::Cancel { portfolio_id, order_id })
            }
            Message::Replace(Replace { request_id, order_id, price_ticks, qty_lots, portfolio_id, .. }) => {
                let command = CommandBody::Replace { portfolio_id, order_id, price_ticks, qty_lots };
                self.submit(user, request_id, portfolio_id, command)
            }
            Message::MassCancel(MassCancel { request_id, portfolio_id, symbol_id, .. }) => {
                let symbol_id = (symbol_id != ALL_SYMBOLS).then_some(symbol_id);
                self.submit(user, request_id, portfolio_id, CommandBody::MassCancel { portfolio_id, symbol_id })
            }
            Message::ResendRequest(request) => {
                let available = self.users.get(&user).map_or(0, |log| log.reports.len() as u64);
                session.report_cursor = request.from_report_seq.clamp(1, available + 1);
                session.resending = session.report_cursor <= available;
                self.mark_dirty(index);
            }
            Message::Subscribe(Subscription { symbol_id, .. }) => self.subscribe(index, symbol_id, true, now),
            Message::Unsubscribe(Subscription { symbol_id, .. }) => self.subscribe(index, symbol_id, false, now),
            Message::SymbolDirectoryRequest(_) => self.send_directory(index),
            Message::LoginAccepted(_)
            | Message::LoginRejected(_)
            | Message::RequestRejected(_)
            | Message::ExecutionReport(_)
            | Message::TopOfBook(_)
            | Message::Trade(_)
            | Message::SymbolDirectory(_) => session.close(logout_reason::UNEXPECTED_MESSAGE),
        }
    }

    fn login(&mut self, index: usize, login: &Login) {
        let Some(session) = self.sessions[index].as_mut() else { return };
        let verdict = match text_of(&login.api_key) {
            None => Err(login_reject::BAD_KEY_TEXT),
            Some(key) => self.auth.verify(key).ok_or(login_reject::UNKNOWN_KEY),
        };
        let user = match verdict {
            Ok(user) => user,
            Err(reason) => {
                session.queue_unbounded(&Message::LoginRejected(LoginRejected { reason, ..Default::default() }));
                session.close(0);
                self.mark_dirty(index);
                return;
            }
        };
        let interval_ms = match login.heartbeat_interval_ms {
            0 => self.config.heartbeat_interval.as_millis() as u32,
            requested => requested.clamp(50, 60_000),
        };
        session.heartbeat_interval = Duration::from_millis(u64::from(interval_ms));
        session.phase = Phase::Active { user };
        let log = self.users.entry(user).or_default();
        log.sessions.push(index);
        let next_report_seq = log.reports.len() as u64 + 1;
        session.report_cursor = next_report_seq;
        session.queue_unbounded(&Message::LoginAccepted(LoginAccepted {
            user_id: user,
            next_report_seq,
            heartbeat_interval_ms: interval_ms,
            symbol_count: self.instruments.len() as u32,
        }));
        self.mark_dirty(index);
    }

    fn new_order(&mut self, user: UserId, order: &NewOrder) {
        let fields = OrderFields {
            request_id: order.request_id,
            client_order_id: order.client_order_id,
            portfolio_id: order.portfolio_id,
            symbol_id: order.symbol_id,
            side: order.side,
            order_kind: order.order_kind,
            time_in_force: order.time_in_force,
            self_trade_policy: order.self_trade_policy,
        };
        if order.trigger_price_ticks != 0 {
            self.append_report(user, fields.reject(gateway_reject::UNSUPPORTED));
            return;
        }
        let Some(base) = fields.engine_order() else {
            self.append_report(user, fields.reject(gateway_reject::INVALID_FIELD));
            return;
        };
        let command = CommandBody::NewOrder(simex_engine::NewOrder {
            price_ticks: order.price_ticks,
            qty_lots: order.qty_lots,
            expire_at_ns: order.expire_at_ns,
            post_only: order.post_only == 1,
            ..base
        });
        self.submit_order(user, &fields, command);
    }

    fn new_conditional_order(&mut self, user: UserId, order: &NewConditionalOrder) {
        let fields = OrderFields {
            request_id: order.request_id,
            client_order_id: order.client_order_id,
            portfolio_id: order.portfolio_id,
            symbol_id: order.symbol_id,
            side: order.side,
            order_kind: order.order_kind,
            time_in_force: order.time_in_force,
            self_trade_policy: order.self_trade_policy,
        };
        // A trigger of 0 would make this a book order; the decoder refuses it, and so does this.
        let (Some(base), Some(trigger)) = (fields.engine_order(), protocol::trigger_from_code(order.trigger)) else {
            self.append_report(user, fields.reject(gateway_reject::INVALID_FIELD));
            return;
        };
        let command = CommandBody::NewOrder(simex_engine::NewOrder {
            price_ticks: order.price_ticks,
            qty_lots: order.qty_lots,
            expire_at_ns: order.expire_at_ns,
            trigger,
            trigger_price_ticks: order.trigger_price_ticks,
            trail_ticks: order.trail_ticks,
            trail_bps: i64::from(order.trail_bps),
            oco_order_id: order.oco_order_id,
            ..base
        });
        self.submit_order(user, &fields, command);
    }

    fn new_bracket(&mut self, user: UserId, bracket: &NewBracket) {
        let fields = OrderFields {
            request_id: bracket.request_id,
            client_order_id: bracket.client_order_id,
            portfolio_id: bracket.portfolio_id,
            symbol_id: bracket.symbol_id,
            side: bracket.side,
            order_kind: bracket.order_kind,
            time_in_force: bracket.time_in_force,
            self_trade_policy: bracket.self_trade_policy,
        };
        let Some(base) = fields.engine_order() else {
            self.append_report(user, fields.reject(gateway_reject::INVALID_FIELD));
            return;
        };
        let entry = simex_engine::NewOrder {
            price_ticks: bracket.price_ticks,
            qty_lots: bracket.qty_lots,
            expire_at_ns: bracket.expire_at_ns,
            post_only: bracket.post_only == 1,
            ..base
        };
        let command = CommandBody::NewBracket {
            entry,
            take_profit_price_ticks: bracket.take_profit_price_ticks,
            stop_loss_trigger_ticks: bracket.stop_loss_trigger_ticks,
            stop_loss_limit_ticks: bracket.stop_loss_limit_ticks,
        };
        self.submit_order(user, &fields, command);
    }

    /// Submits a new order or bracket once the portfolio is known to be the user's.
    fn submit_order(&mut self, user: UserId, fields: &OrderFields, command: CommandBody) {
        if !self.auth.owns(user, fields.portfolio_id) {
            self.append_report(user, fields.reject(gateway_reject::PORTFOLIO_NOT_OWNED));
            return;
        }
        match self.submitter.submit(command) {
            Ok(ticket) => self.track(ticket, user, fields.request_id, &command),
            Err(SubmitError::Busy) => self.append_report(user, fields.reject(gateway_reject::BUSY)),
        }
    }

    fn submit(&mut self, user: UserId, request_id: u64, portfolio_id: u32, command: CommandBody) {
        let reject = |reason: u16| ExecutionReport { request_id, portfolio_id, ..gateway_reject_report(reason) };
        if !self.auth.owns(user, portfolio_id) {
            self.append_report(user, reject(gateway_reject::PORTFOLIO_NOT_OWNED));
            return;
        }
        match self.submitter.submit(command) {
            Ok(ticket) => self.track(ticket, user, request_id, &command),
            Err(SubmitError::Busy) => self.append_report(user, reject(gateway_reject::BUSY)),
        }
    }

    fn track(&mut self, ticket: Ticket, user: UserId, request_id: u64, command: &CommandBody) {
        let shards_left = match self.submitter.route(command) {
            Route::Shard(shard) => {
                self.shard_taps[shard].in_flight += 1;
                1
            }
            Route::AllShards => {
                for shard in self.shard_taps.iter_mut() {
                    shard.in_flight += 1;
                }
                self.shard_taps.len() as u16
            }
        };
        self.in_flight.insert(ticket, InFlight { user, request_id, shards_left });
    }

    fn drain_responses(&mut self) -> bool {
        let mut worked = false;
        while let Some(response) = self.submitter.poll() {
            worked = true;
            match response {
                Response::Event { ticket, shard, event } => {
                    let origin = self.in_flight.get(&ticket).copied();
                    self.report_event(&event, shard, origin);
                    if self.tap.is_some() {
                        self.shard_taps[usize::from(shard)].own_seqs.push_back(event.seq);
                        self.resolve_tap(usize::from(shard));
                    }
                }
                Response::Done { ticket, shard, .. } => {
                    if let Some(in_flight) = self.in_flight.get_mut(&ticket) {
                        in_flight.shards_left = in_flight.shards_left.saturating_sub(1);
                        if in_flight.shards_left == 0 {
                            self.in_flight.remove(&ticket);
                        }
                    }
                    let shard = usize::from(shard);
                    self.shard_taps[shard].in_flight = self.shard_taps[shard].in_flight.saturating_sub(1);
                    if self.tap.is_some() {
                        self.resolve_tap(shard);
                    }
                }
            }
        }
        worked
    }

    fn drain_tap(&mut self) -> bool {
        let mut worked = false;
        while let Some(tapped) = self.tap.as_mut().and_then(EventTap::poll) {
            worked = true;
            if let Some(trade) = self.market.apply(tapped.shard, tapped.event.seq, &tapped.event.body) {
                let trade = protocol::Trade { timestamp_ns: tapped.event.timestamp_ns, ..trade };
                self.publish(trade.symbol_id, &Message::Trade(trade));
            }
            let shard = usize::from(tapped.shard);
            self.shard_taps[shard].waiting.push_back(tapped.event);
            self.resolve_tap(shard);
        }
        if worked {
            let mut tops = std::mem::take(&mut self.tops);
            self.market.changed_tops(|top| tops.push(top));
            for top in tops.drain(..) {
                self.publish(top.symbol_id, &Message::TopOfBook(top));
            }
            self.tops = tops;
        }
        worked
    }

    /// Reports the tap events of a shard that are known to be someone else's.
    fn resolve_tap(&mut self, shard: usize) {
        loop {
            let state = &mut self.shard_taps[shard];
            let Some(front) = state.waiting.front() else { return };
            let seq = front.seq;
            match state.own_seqs.front().copied() {
                Some(own) if own == seq => {
                    state.own_seqs.pop_front();
                    state.waiting.pop_front();
                }
                Some(own) if own < seq => {
                    state.own_seqs.pop_front();
                }
                Some(_) => {
                    let event = state.waiting.pop_front().expect("front exists");
                    self.report_event(&event, shard as u16, None);
                }
                None if state.in_flight == 0 => {
                    let event = state.waiting.pop_front().expect("front exists");
                    self.report_event(&event, shard as u16, None);
                }
                None => return,
            }
        }
    }

    fn report_event(&mut self, event: &Event, shard: u16, origin: Option<InFlight>) {
        let auth = self.auth.clone();
        reports_of(event, shard, |portfolio_id, report, primary| {
            let Some(owner) = auth.owner(portfolio_id) else { return };
            let request_id = match origin {
                Some(origin) if primary && origin.user == owner => origin.request_id,
                _ => 0,
            };
            self.append_report(owner, ExecutionReport { request_id, ..report });
        });
    }

    fn append_report(&mut self, user: UserId, report: ExecutionReport) {
        let log = self.users.entry(user).or_default();
        let report_seq = log.reports.len() as u64 + 1;
        let report = ExecutionReport { report_seq, ..report };
        log.reports.push(report);
        if let Some(journal) = self.journal.as_mut() {
            if let Err(error) = journal.append(user, &report, report.timestamp_ns) {
                // Crash-only, like the shards' journals: a report that cannot be journaled must not
                // be sent, and the venue cannot go on without sending it.
                tracing::error!(%error, "the report journal failed: aborting");
                std::process::abort();
            }
            self.journal_pending = true;
        }
        for &index in &log.sessions {
            if let Some(session) = self.sessions[index].as_mut() {
                if !session.dirty {
                    session.dirty = true;
                    self.dirty.push(index);
                }
            }
        }
    }

    fn subscribe(&mut self, index: usize, symbol_id: u16, on: bool, _now: Instant) {
        let Some(session) = self.sessions[index].as_mut() else { return };
        let Some(flag) = session.subscribed.get_mut(usize::from(symbol_id)) else {
            let message_type = if on { message_type::SUBSCRIBE } else { message_type::UNSUBSCRIBE };
            let rejected =
                RequestRejected { message_type, reason: gateway_reject::UNKNOWN_SYMBOL, ..Default::default() };
            if !session.queue(&Message::RequestRejected(rejected)) {
                session.close(logout_reason::SLOW_CONSUMER);
            }
            self.mark_dirty(index);
            return;
        };
        let subscribers = &mut self.subscribers[usize::from(symbol_id)];
        if on && !*flag {
            *flag = true;
            subscribers.push(index);
            let top = self.market.top_of(symbol_id).unwrap_or_default();
            if !session.queue(&Message::TopOfBook(top)) {
                session.close(logout_reason::SLOW_CONSUMER);
            }
        } else if !on && *flag {
            *flag = false;
            subscribers.retain(|&s| s != index);
        }
        self.mark_dirty(index);
    }

    fn send_directory(&mut self, index: usize) {
        let Some(session) = self.sessions[index].as_mut() else { return };
        for instrument in self.instruments.iter() {
            let entry = SymbolDirectory {
                symbol: protocol::fixed_text(&instrument.symbol).unwrap_or_default(),
                tick_mantissa: instrument.tick.mantissa,
                lot_mantissa: instrument.lot.mantissa,
                tick_scale: instrument.tick.scale,
                lot_scale: instrument.lot.scale,
                qty_min_lots: instrument.qty_min_lots,
                qty_max_lots: instrument.qty_max_lots,
                symbol_id: instrument.symbol_id,
                shard: self.shard_of_symbol.get(usize::from(instrument.symbol_id)).copied().unwrap_or(0),
                ..SymbolDirectory::default()
            };
            if !session.queue(&Message::SymbolDirectory(entry)) {
                session.close(logout_reason::SLOW_CONSUMER);
                break;
            }
        }
        self.mark_dirty(index);
    }

    fn publish(&mut self, symbol_id: u16, message: &Message) {
        let Some(subscribers) = self.subscribers.get(usize::from(symbol_id)) else { return };
        for &index in subscribers {
            let Some(session) = self.sessions[index].as_mut() else { continue };
            if !session.queue(message) {
                session.close(logout_reason::SLOW_CONSUMER);
            }
            if !session.dirty {
                session.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    fn check_timers(&mut self, now: Instant) {
        for index in 0..self.sessions.len() {
            let Some(session) = self.sessions[index].as_mut() else { continue };
            match session.phase {
                Phase::AwaitingLogin { deadline } if now >= deadline => session.close(logout_reason::LOGIN_TIMEOUT),
                Phase::AwaitingLogin { .. } => {}
                Phase::Active { .. } => {
                    if now.duration_since(session.last_received) >= 3 * session.heartbeat_interval {
                        // A session held back because it does not read is not read either: its
                        // silence is its own backlog.
                        let reason = if session.has_room() {
                            logout_reason::HEARTBEAT_TIMEOUT
                        } else {
                            logout_reason::SLOW_CONSUMER
                        };
                        session.close(reason);
                    } else if now.duration_since(session.last_sent) >= session.heartbeat_interval
                        && session.outbound_pending() == 0
                        && !session.queue(&Message::Heartbeat(Heartbeat { timestamp_ns: wall_clock_ns() }))
                    {
                        session.close(logout_reason::SLOW_CONSUMER);
                    }
                }
            }
            if session.closing.is_some() || session.outbound_pending() > 0 {
                self.mark_dirty(index);
            }
        }
    }

    /// Makes the reports appended since the last call durable, before any session is pumped.
    fn commit_journal(&mut self) {
        if !self.journal_pending {
            return;
        }
        self.journal_pending = false;
        if let Some(journal) = self.journal.as_mut() {
            if let Err(error) = journal.commit() {
                tracing::error!(%error, "the report journal failed: aborting");
                std::process::abort();
            }
        }
    }

    /// Pumps reports into every dirty session, flushes it, and closes those that must end.
    fn pump_dirty(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &index in &dirty {
            let Some(session) = self.sessions[index].as_mut() else { continue };
            session.dirty = false;
            // Pump and flush until the log is sent or the socket would block (a writable event
            // marks the session dirty again then).
            loop {
                let mut more = false;
                if let (Some(user), None) = (session.user(), session.closing) {
                    let reports = self.users.get(&user).map_or(&[][..], |log| &log.reports[..]);
                    let available = reports.len() as u64;
                    if !session.resending && available + 1 - session.report_cursor > self.config.report_lag_max {
                        session.close(logout_reason::SLOW_CONSUMER);
                    }
                    while session.closing.is_none() && session.report_cursor <= available && session.has_room() {
                        let mut report = reports[(session.report_cursor - 1) as usize];
                        if session.resending {
                            report.flags |= protocol::report_flags::RESENT;
                        }
                        session.queue(&Message::ExecutionReport(report));
                        session.report_cursor += 1;
                    }
                    if session.report_cursor > available {
                        session.resending = false;
                    }
                    more = session.report_cursor <= available;
                }
                if let Err(error) = session.flush(now) {
                    tracing::debug!(%error, "binary session write failed");
                    session.closing.get_or_insert(logout_reason::REQUESTED);
                    session.close_now = true;
                }
                if !more || session.closing.is_some() || session.outbound_pending() > 0 {
                    break;
                }
            }
            if session.closing.is_some() {
                self.end_session(index, now);
            }
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        } else {
            let added = std::mem::take(&mut self.dirty);
            self.dirty = dirty;
            self.dirty.extend(added);
        }
    }

    fn end_session(&mut self, index: usize, now: Instant) {
        let Some(mut session) = self.sessions[index].take() else { return };
        let reason = session.closing.unwrap_or(logout_reason::REQUESTED);
        if reason != 0 && !session.close_now {
            session.queue_unbounded(&Message::Logout(Logout { reason, ..Default::default() }));
        }
        let _ = session.flush(now);
        session.discard_unread();
        let _ = self.poll.registry().deregister(&mut session.socket);
        let _ = session.socket.shutdown(std::net::Shutdown::Write);
        if let Some(user) = session.user() {
            if let Some(log) = self.users.get_mut(&user) {
                log.sessions.retain(|&s| s != index);
            }
        }
        for (symbol_id, &on) in session.subscribed.iter().enumerate() {
            if on {
                self.subscribers[symbol_id].retain(|&s| s != index);
            }
        }
        self.free.push(index);
    }
}

/// The fields every order-carrying request has, as sent: what a gateway reject echoes, and the
/// engine order they make.
struct OrderFields {
    request_id: u64,
    client_order_id: [u8; 16],
    portfolio_id: u32,
    symbol_id: u16,
    side: u8,
    order_kind: u8,
    time_in_force: u8,
    self_trade_policy: u8,
}

impl OrderFields {
    fn reject(&self, reason: u16) -> ExecutionReport {
        ExecutionReport {
            request_id: self.request_id,
            portfolio_id: self.portfolio_id,
            symbol_id: self.symbol_id,
            side: self.side,
            order_kind: self.order_kind,
            time_in_force: self.time_in_force,
            client_order_id: self.client_order_id,
            ..gateway_reject_report(reason)
        }
    }

    /// The engine order these fields make, with price, quantity and expiry 0 and no trigger. `None` if
    /// a code is outside its table (the decoder has refused that already; this refuses it again).
    fn engine_order(&self) -> Option<simex_engine::NewOrder> {
        let side = protocol::side_from_code(self.side)?;
        let kind = protocol::order_kind_from_code(self.order_kind)?;
        let time_in_force = protocol::time_in_force_from_code(self.time_in_force)?;
        let self_trade_policy = protocol::self_trade_from_code(self.self_trade_policy)?;
        Some(simex_engine::NewOrder {
            kind,
            time_in_force,
            client_order_id: ClientOrderId(self.client_order_id),
            self_trade_policy,
            ..simex_engine::NewOrder::limit(self.portfolio_id, self.symbol_id, side, 0, 0)
        })
    }
}

/// An execution report for a request the gateway refused itself.
fn gateway_reject_report(reason: u16) -> ExecutionReport {
    ExecutionReport { report_type: report_type::REJECTED, reason, timestamp_ns: wall_clock_ns(), ..Default::default() }
}

fn wall_clock_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Wakes the event loop (for shutdown).
pub(super) fn waker(poll: &Poll) -> std::io::Result<Waker> {
    Waker::new(poll.registry(), WAKER)
}

pub(super) fn register_listener(poll: &Poll, listener: &mut TcpListener) -> std::io::Result<()> {
    poll.registry().register(listener, LISTENER, Interest::READABLE)
}
