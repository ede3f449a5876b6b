//! The binary order-entry gateway: a compact TCP protocol for latency-sensitive bots.
//!
//! - `protocol`: the frames (16-byte header, fixed-size `bytemuck` bodies), encode and decode.
//! - `session`: one connection's buffers, phase and timers.
//! - `server`: the mio event loop on its own thread, submitting into the runtime.
//! - `reports`: engine events to execution reports; `market`: the book mirror for market data.
//! - `report_log`: the journal of execution reports that makes resend survive a restart.
//! - `auth`: the API-key contract the gateway checks logins and portfolios against.
//! - `client`: a typed blocking client, used by tests and `simex-loadgen`.
//!
//! Start it with [`spawn`]; the protocol is specified in `docs/protocol.md`.

pub mod auth;
pub mod client;
pub mod market;
pub mod protocol;
pub mod report_log;
pub mod reports;
mod server;
pub mod session;

pub use auth::{ApiKeys, MemoryKeys, UserId};

use crate::runtime::{EventTap, Submitter};
use mio::net::TcpListener;
use mio::Poll;
use simex_engine::InstrumentTable;
use simex_journal::Durability;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How the binary gateway listens and treats its sessions.
#[derive(Clone, Debug)]
pub struct BinaryConfig {
    pub listen: SocketAddr,
    /// Poll with a zero timeout and never sleep (for a dedicated core); else block in `poll` for up
    /// to `idle_poll_timeout` while no command is in flight.
    pub busy_poll: bool,
    /// How long the loop blocks when idle. The runtime's rings cannot wake the loop, so this bounds
    /// how late market data and reports caused by others are picked up on an idle gateway.
    pub idle_poll_timeout: Duration,
    /// Bytes a session may have waiting to be written before it counts as a slow consumer.
    pub outbound_bytes_max: usize,
    /// Execution reports a live session may lag behind its user's log before it is ended. A
    /// session is no longer read once it lags by half of this; what it had sent before still
    /// produces reports (up to about 2 × 186 for one 16 KiB inbound buffer of orders), so this must
    /// stay well above that.
    pub report_lag_max: u64,
    /// Commands the gateway may have in the runtime at once; beyond it no session is read until
    /// some are answered. Keep it below the runtime's inbound ring size, so that clients are held
    /// back by TCP rather than refused with `busy`.
    pub in_flight_max: usize,
    /// The heartbeat interval when the client asks for none.
    pub heartbeat_interval: Duration,
    /// How long a connection may take to log in.
    pub login_timeout: Duration,
    pub sessions_max: usize,
    /// The kernel send buffer of each session's socket, if it should not be the system default.
    pub socket_send_buffer_bytes: Option<usize>,
    /// Where execution reports are journaled, so that resend survives a restart; `None` keeps them
    /// in memory only.
    pub report_journal: Option<ReportJournalSettings>,
}

#[derive(Clone, Debug)]
pub struct ReportJournalSettings {
    pub root: PathBuf,
    pub durability: Durability,
}

impl Default for BinaryConfig {
    fn default() -> BinaryConfig {
        BinaryConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            busy_poll: false,
            idle_poll_timeout: Duration::from_millis(1),
            outbound_bytes_max: 256 * 1024,
            report_lag_max: 65_536,
            in_flight_max: 1_024,
            heartbeat_interval: Duration::from_secs(1),
            login_timeout: Duration::from_secs(5),
            sessions_max: 1024,
            socket_send_buffer_bytes: None,
            report_journal: None,
        }
    }
}

/// The running gateway.
pub struct BinaryHandle {
    local_addr: SocketAddr,
    shutdown: Arc<AtomicBool>,
    waker: mio::Waker,
    thread: Option<JoinHandle<()>>,
}

impl BinaryHandle {
    /// The address it listens on (with the port the system chose, if the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Ends every session with a `shutdown` logout and stops the thread. The gateway's submitter
    /// and tap are dropped, so the runtime can then shut down.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BinaryHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the binary gateway on its own thread: it owns `submitter` (one of the runtime's) and,
/// if given, `tap` (a runtime tap, for market data and for reports of events other gateways
/// caused). Without a tap there is no market data, and only the gateway's own commands are reported.
pub fn spawn(
    config: BinaryConfig,
    submitter: Submitter,
    tap: Option<EventTap>,
    auth: Arc<dyn ApiKeys>,
    instruments: InstrumentTable,
) -> std::io::Result<BinaryHandle> {
    let poll = Poll::new()?;
    let mut listener = TcpListener::bind(config.listen)?;
    let local_addr = listener.local_addr()?;
    server::register_listener(&poll, &mut listener)?;
    let waker = server::waker(&poll)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let journal = match &config.report_journal {
        Some(settings) => {
            Some(report_log::ReportJournal::open(&settings.root, settings.durability).map_err(std::io::Error::other)?)
        }
        None => None,
    };
    let server =
        server::Server::new(config, poll, listener, shutdown.clone(), submitter, tap, auth, instruments, journal);
    let thread = std::thread::Builder::new().name("simex-binary".into()).spawn(move || server.run())?;
    Ok(BinaryHandle { local_addr, shutdown, waker, thread: Some(thread) })
}
