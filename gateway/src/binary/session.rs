//! One client connection: its socket, its buffers, where it is in its life, and its timers.
//!
//! Buffers are allocated once per connection and reused: the inbound buffer holds at most a few
//! partial frames (frames are at most `FRAME_MAX` bytes), and the outbound buffer is bounded. A
//! frame is appended only while the buffer is under its bound; a client that does not read lets
//! it fill, and the server then ends the session as a slow consumer instead of buffering without
//! limit or stalling the event loop.

use super::auth::UserId;
use super::protocol::{encode, Message, FRAME_MAX};
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Bytes of inbound buffer per session.
pub const INBOUND_BYTES: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connected; the first frame must be a login, before `deadline`.
    AwaitingLogin {
        deadline: Instant,
    },
    Active {
        user: UserId,
    },
}

/// What reading a socket found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Read until it would block; the socket is still open.
    Open,
    /// The peer closed its side (or the connection failed).
    Closed,
}

pub struct Session {
    pub socket: TcpStream,
    pub phase: Phase,
    inbound: Box<[u8]>,
    inbound_len: usize,
    inbound_start: usize,
    outbound: Vec<u8>,
    outbound_sent: usize,
    outbound_bytes_max: usize,
    next_sequence: u64,
    pub heartbeat_interval: Duration,
    pub last_received: Instant,
    pub last_sent: Instant,
    /// The `report_seq` of the next execution report to send (reports are pumped from the user's log).
    pub report_cursor: u64,
    /// Whether reports are being sent again in answer to a resend request.
    pub resending: bool,
    /// Symbols this session receives market data for, indexed by symbol id.
    pub subscribed: Vec<bool>,
    /// Set when the session must end; the server sends a logout with this reason and closes it.
    pub closing: Option<u16>,
    /// Whether the session is in the server's list of sessions to pump and flush.
    pub dirty: bool,
    /// The connection failed: close without a last logout.
    pub close_now: bool,
    /// Whether the session is in the server's list of sessions to read.
    pub read_pending: bool,
}

impl Session {
    pub fn new(
        socket: TcpStream,
        now: Instant,
        login_timeout: Duration,
        outbound_bytes_max: usize,
        symbols: usize,
    ) -> Session {
        Session {
            socket,
            phase: Phase::AwaitingLogin { deadline: now + login_timeout },
            inbound: vec![0u8; INBOUND_BYTES].into_boxed_slice(),
            inbound_len: 0,
            inbound_start: 0,
            outbound: Vec::with_capacity(outbound_bytes_max + 4 * FRAME_MAX),
            outbound_sent: 0,
            outbound_bytes_max,
            next_sequence: 1,
            heartbeat_interval: login_timeout,
            last_received: now,
            last_sent: now,
            report_cursor: 1,
            resending: false,
            subscribed: vec![false; symbols],
            closing: None,
            dirty: false,
            close_now: false,
            read_pending: false,
        }
    }

    pub fn user(&self) -> Option<UserId> {
        match self.phase {
            Phase::Active { user } => Some(user),
            Phase::AwaitingLogin { .. } => None,
        }
    }

    /// Bytes waiting to be written.
    pub fn outbound_pending(&self) -> usize {
        self.outbound.len() - self.outbound_sent
    }

    /// Whether one more frame fits under the bound.
    pub fn has_room(&self) -> bool {
        self.outbound_pending() + FRAME_MAX <= self.outbound_bytes_max
    }

    /// Appends a frame if it fits under the bound; `false` if the client has fallen behind.
    pub fn queue(&mut self, message: &Message) -> bool {
        if !self.has_room() {
            return false;
        }
        self.queue_unbounded(message);
        true
    }

    /// Appends a frame whatever the bound (the last logout; the buffer has slack for it).
    pub fn queue_unbounded(&mut self, message: &Message) {
        if self.outbound_sent > 0 && self.outbound.len() + FRAME_MAX > self.outbound.capacity() {
            self.compact_outbound();
        }
        encode(message, self.next_sequence, &mut self.outbound);
        self.next_sequence += 1;
    }

    fn compact_outbound(&mut self) {
        self.outbound.drain(..self.outbound_sent);
        self.outbound_sent = 0;
    }

    /// Writes until everything is sent or the socket would block.
    pub fn flush(&mut self, now: Instant) -> io::Result<()> {
        while self.outbound_sent < self.outbound.len() {
            match self.socket.write(&self.outbound[self.outbound_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    self.outbound_sent += written;
                    self.last_sent = now;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        if self.outbound_sent == self.outbound.len() {
            self.outbound.clear();
            self.outbound_sent = 0;
        } else if self.outbound_sent > self.outbound.len() / 2 {
            self.compact_outbound();
        }
        Ok(())
    }

    /// Reads what fits in the inbound buffer, until the socket would block or the buffer is full
    /// (the caller takes frames out with `next_frame_bytes` and calls again).
    pub fn read(&mut self, now: Instant) -> (ReadOutcome, bool) {
        if self.inbound_start > 0 {
            self.inbound.copy_within(self.inbound_start..self.inbound_len, 0);
            self.inbound_len -= self.inbound_start;
            self.inbound_start = 0;
        }
        loop {
            if self.inbound_len == self.inbound.len() {
                return (ReadOutcome::Open, true);
            }
            match self.socket.read(&mut self.inbound[self.inbound_len..]) {
                Ok(0) => return (ReadOutcome::Closed, false),
                Ok(read) => {
                    self.inbound_len += read;
                    self.last_received = now;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return (ReadOutcome::Open, false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return (ReadOutcome::Closed, false),
            }
        }
    }

    /// The unread inbound bytes.
    pub fn unread(&self) -> &[u8] {
        &self.inbound[self.inbound_start..self.inbound_len]
    }

    /// Marks `len` inbound bytes as used.
    pub fn consume(&mut self, len: usize) {
        self.inbound_start = (self.inbound_start + len).min(self.inbound_len);
    }

    /// Reads and drops whatever the peer sent and was not read, so that closing the socket does not
    /// reset the connection before the peer has read the last logout.
    pub fn discard_unread(&mut self) {
        let mut scratch = [0u8; 1024];
        for _ in 0..64 {
            match self.socket.read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Ends the session with a reason (the first reason given wins).
    pub fn close(&mut self, reason: u16) {
        self.closing.get_or_insert(reason);
    }
}
