//! The run loop: one engine, one line at a time, events out as they happen.
//!
//! For each line the runner reads it ([`parse_line`]), moves the clock, converts it
//! ([`translate`]) and applies it. A conversion rejection (a price off the tick grid, an unknown
//! symbol name or client order id) is put into the engine's own event stream: the runner first lets
//! the engine reach the line's time (`AdvanceTime`, so orders due to expire do, exactly as they would
//! before any command), then hands it the `rejected` event through [`Engine::replay`], which for a
//! rejection changes nothing but the sequence number. The stream therefore stays one gap-free
//! sequence that replays into the same state, just as if the engine had checked the decimal itself.
//!
//! The engine asserts its own consistency and panics on a bug. The runner catches such a panic and
//! reports the script line that triggered it, which is what someone reproducing an incident needs;
//! `--check` adds [`Engine::check_invariants`] after every line and, at the end, a replay of every
//! event (after a round trip through its JSON journal form) into a fresh engine, whose state hash
//! must equal the live one.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::panic::{self, AssertUnwindSafe};

use simex_engine::{Command, CommandBody, Engine, EngineConfig, Event, EventBody, InstrumentTable, SymbolId};

use super::render::{self, Obj};
use super::state;
use super::time::Clock;
use super::{parse_line, translate, ClientIds, Input, ScriptError};

/// Why a run stopped early. Each kind has its own exit code (see `docs/script.md`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The script is wrong: a malformed line, or time going backwards. Exit code 2.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The engine failed: a panic, a broken invariant, or a replay that disagrees. Exit code 3.
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Engine { line: Option<usize>, message: String },
    /// Reading the script or writing the output failed. Exit code 1.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Io(_) => 1,
            RunError::Script(_) => 2,
            RunError::Engine { .. } => 3,
        }
    }
}

/// What a successful `--check` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub events: usize,
    pub state_hash: u64,
}

pub struct Runner {
    config: EngineConfig,
    engine: Engine,
    clock: Clock,
    client_ids: ClientIds,
    /// Halt flags as the events set them (the engine keeps them but has no query for them).
    halted: BTreeMap<SymbolId, bool>,
    check: bool,
    /// Every event so far, kept only under `check` for the final replay.
    journal: Vec<Event>,
    buffer: Vec<Event>,
    lines_run: usize,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Runs `work`, turning a panic into a [`RunError::Engine`] for `line`.
fn guarded<T>(line: Option<usize>, what: &str, work: impl FnOnce() -> T) -> Result<T, RunError> {
    panic::catch_unwind(AssertUnwindSafe(work))
        .map_err(|payload| RunError::Engine { line, message: format!("{what}: {}", panic_message(payload.as_ref())) })
}

impl Runner {
    /// A runner over a fresh engine. With `check`, invariants are checked after every line and
    /// [`Runner::verify_replay`] has the journal it needs.
    pub fn new(config: EngineConfig, instruments: InstrumentTable, check: bool) -> Runner {
        Runner {
            engine: Engine::new(config.clone(), instruments),
            config,
            clock: Clock::new(),
            client_ids: ClientIds::default(),
            halted: BTreeMap::new(),
            check,
            journal: Vec::new(),
            buffer: Vec::new(),
            lines_run: 0,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Script lines that were commands (not blank, not comments).
    pub fn lines_run(&self) -> usize {
        self.lines_run
    }

    /// Runs every line of `input`, writing one JSON line per event to `out`.
    pub fn run(&mut self, input: impl BufRead, out: &mut dyn Write) -> Result<(), RunError> {
        let mut input = input;
        let mut bytes = Vec::new();
        let mut number = 0;
        loop {
            bytes.clear();
            if input.read_until(b'\n', &mut bytes)? == 0 {
                return Ok(());
            }
            number += 1;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| ScriptError { line: number, message: "the line is not valid UTF-8".to_string() })?;
            self.run_line(number, text, out)?;
        }
    }

    /// Runs one script line numbered `number`.
    pub fn run_line(&mut self, number: usize, text: &str, out: &mut dyn Write) -> Result<(), RunError> {
        let Some(line) = parse_line(number, text)? else {
            return Ok(());
        };
        let timestamp_ns =
            self.clock.advance(line.when).map_err(|e| ScriptError { line: number, message: e.to_string() })?;
        self.lines_run += 1;
        let input = translate(&line.action, &self.engine, &self.client_ids);
        self.buffer.clear();
        let engine = &mut self.engine;
        let buffer = &mut self.buffer;
        let applied = guarded(Some(number), "the engine panicked", || match input {
            Input::Command(body) => engine.apply(&Command { timestamp_ns, body }, buffer),
            Input::Reject { portfolio_id, order_id, client_order_id, reason } => {
                engine.apply(&Command { timestamp_ns, body: CommandBody::AdvanceTime }, buffer);
                let event = Event {
                    seq: engine.last_seq() + 1,
                    timestamp_ns,
                    body: EventBody::Rejected { portfolio_id, order_id, client_order_id, reason },
                };
                engine.replay(&event);
                buffer.push(event);
            }
        });
        // Events from before a panic are printed too: they are what led up to it.
        for event in &self.buffer {
            self.client_ids.record(event);
            if let EventBody::HaltedSet { symbol_id, halted } = event.body {
                self.halted.insert(symbol_id, halted);
            }
            let line = render::event(self.engine.instruments(), number, event);
            writeln!(out, "{}", line.to_line())?;
        }
        applied?;
        if self.check {
            self.journal.extend_from_slice(&self.buffer);
            let engine = &self.engine;
            guarded(Some(number), "invariant violated", || engine.check_invariants())?;
        }
        Ok(())
    }

    /// Replays the journal into a fresh engine and compares state hashes. Needs `check`.
    pub fn verify_replay(&self) -> Result<ReplayReport, RunError> {
        assert!(self.check, "verify_replay needs a runner made with check");
        let fail = |message: String| RunError::Engine { line: None, message: format!("replay: {message}") };
        let mut replayed = Engine::new(self.config.clone(), self.engine.instruments().clone());
        for event in &self.journal {
            let text = serde_json::to_string(event)
                .map_err(|e| fail(format!("event {} does not serialize: {e}", event.seq)))?;
            let decoded: Event = serde_json::from_str(&text)
                .map_err(|e| fail(format!("event {} does not deserialize: {e}: {text}", event.seq)))?;
            if decoded != *event {
                return Err(fail(format!("event {} changes in its JSON round trip: {text}", event.seq)));
            }
            guarded(None, "replay: the engine panicked", || replayed.replay(&decoded))?;
        }
        guarded(None, "replay: invariant violated", || replayed.check_invariants())?;
        let live = self.engine.state_hash();
        let again = replayed.state_hash();
        if live != again {
            return Err(fail(format!("state hash differs: live {live:016x}, replayed {again:016x}")));
        }
        Ok(ReplayReport { events: self.journal.len(), state_hash: live })
    }

    /// The final state document (`--state`).
    pub fn state(&self) -> Obj {
        state::document(&self.engine, &self.halted, self.clock.now_ns())
    }
}
