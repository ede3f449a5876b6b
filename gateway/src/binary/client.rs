//! A typed, blocking client for the binary protocol: connect, log in, send requests, receive
//! frames. Used by the end-to-end tests and by `simex-loadgen`.
//!
//! Sending and receiving are independent: [`Client::split`] gives a [`ClientSender`] and a
//! [`ClientReceiver`] on the same connection for use from two threads (an open-loop load
//! generator sends on a schedule while another thread reads). Frames are encoded into a buffer
//! owned by the sender and reused, so sending does not allocate.

use super::protocol::{
    self, decode, fixed_text, DecodeError, Frame, Heartbeat, Login, LoginAccepted, Logout, Message, ResendRequest,
    Subscription, SymbolDirectoryRequest, FRAME_MAX,
};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("the server sent a malformed frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("the connection was closed")]
    Closed,
    #[error("login rejected with reason {0}")]
    LoginRejected(u16),
    #[error("the server ended the session with reason {0}")]
    LoggedOut(u16),
    #[error("the API key does not fit the 64-byte field")]
    KeyTooLong,
    #[error("unexpected message {0:?}")]
    Unexpected(Box<Message>),
}

/// The sending half.
pub struct ClientSender {
    stream: TcpStream,
    buffer: Vec<u8>,
    next_sequence: u64,
}

/// The receiving half.
pub struct ClientReceiver {
    stream: TcpStream,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
}

/// Both halves on one thread.
pub struct Client {
    pub sender: ClientSender,
    pub receiver: ClientReceiver,
}

impl Client {
    pub fn connect(address: SocketAddr) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(address)?;
        Client::from_stream(stream)
    }

    /// Wraps a connected stream (to set socket options before use).
    pub fn from_stream(stream: TcpStream) -> Result<Client, ClientError> {
        stream.set_nodelay(true)?;
        let receive = stream.try_clone()?;
        Ok(Client {
            sender: ClientSender { stream, buffer: Vec::with_capacity(64 * FRAME_MAX), next_sequence: 1 },
            receiver: ClientReceiver {
                stream: receive,
                buffer: vec![0u8; 64 * 1024].into_boxed_slice(),
                start: 0,
                end: 0,
            },
        })
    }

    /// Logs in and waits for the answer.
    pub fn login(&mut self, api_key: &str, heartbeat_interval_ms: u32) -> Result<LoginAccepted, ClientError> {
        let api_key = fixed_text(api_key).ok_or(ClientError::KeyTooLong)?;
        self.sender.send(&Message::Login(Login { api_key, heartbeat_interval_ms, padding: [0; 4] }))?;
        match self.receiver.recv()?.message {
            Message::LoginAccepted(accepted) => Ok(accepted),
            Message::LoginRejected(rejected) => Err(ClientError::LoginRejected(rejected.reason)),
            Message::Logout(logout) => Err(ClientError::LoggedOut(logout.reason)),
            other => Err(ClientError::Unexpected(Box::new(other))),
        }
    }

    pub fn send(&mut self, message: &Message) -> Result<(), ClientError> {
        self.sender.send(message)
    }

    pub fn recv(&mut self) -> Result<Frame, ClientError> {
        self.receiver.recv()
    }

    /// The next frame that is not a heartbeat.
    pub fn recv_skipping_heartbeats(&mut self) -> Result<Frame, ClientError> {
        loop {
            let frame = self.receiver.recv()?;
            if !matches!(frame.message, Message::Heartbeat(_)) {
                return Ok(frame);
            }
        }
    }

    pub fn split(self) -> (ClientSender, ClientReceiver) {
        (self.sender, self.receiver)
    }
}

impl ClientSender {
    /// Encodes and writes one frame.
    pub fn send(&mut self, message: &Message) -> Result<(), ClientError> {
        self.queue(message);
        self.flush()
    }

    /// Encodes one frame without writing it (pipelining: queue several, then `flush`).
    pub fn queue(&mut self, message: &Message) {
        protocol::encode(message, self.next_sequence, &mut self.buffer);
        self.next_sequence += 1;
    }

    /// Writes every queued frame.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.stream.write_all(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes raw bytes (for tests of malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    pub fn heartbeat(&mut self, timestamp_ns: i64) -> Result<(), ClientError> {
        self.send(&Message::Heartbeat(Heartbeat { timestamp_ns }))
    }

    pub fn logout(&mut self) -> Result<(), ClientError> {
        self.send(&Message::Logout(Logout::default()))
    }

    pub fn resend(&mut self, from_report_seq: u64) -> Result<(), ClientError> {
        self.send(&Message::ResendRequest(ResendRequest { from_report_seq }))
    }

    pub fn subscribe(&mut self, symbol_id: u16) -> Result<(), ClientError> {
        self.send(&Message::Subscribe(Subscription { symbol_id, padding: [0; 6] }))
    }

    pub fn unsubscribe(&mut self, symbol_id: u16) -> Result<(), ClientError> {
        self.send(&Message::Unsubscribe(Subscription { symbol_id, padding: [0; 6] }))
    }

    pub fn request_symbols(&mut self) -> Result<(), ClientError> {
        self.send(&Message::SymbolDirectoryRequest(SymbolDirectoryRequest::default()))
    }
}

impl ClientReceiver {
    /// Blocks until one whole frame has arrived (or the read timeout passes: an `Io` error).
    /// A logout from the server is returned as a frame; end of stream is `Closed`.
    pub fn recv(&mut self) -> Result<Frame, ClientError> {
        loop {
            if let Some((frame, len)) = decode(&self.buffer[self.start..self.end])? {
                self.start += len;
                return Ok(frame);
            }
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let read = self.stream.read(&mut self.buffer[self.end..])?;
            if read == 0 {
                return Err(ClientError::Closed);
            }
            self.end += read;
        }
    }

    /// Limits how long `recv` blocks.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.stream.set_read_timeout(timeout)?;
        Ok(())
    }
}
