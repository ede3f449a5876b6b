//! The durable account store: users, API keys and portfolio ownership, journaled with
//! `simex-journal` under `<data>/accounts/` and rebuilt from it on start.
//!
//! Each record is one journal record of type [`RECORD_TYPE_ACCOUNT`] whose payload is the JSON
//! encoding of an [`AccountRecord`]. These records are rare (a registration, a new portfolio) and
//! small, so a self-describing encoding costs nothing and lets fields be added later with serde
//! defaults. A record is appended and committed (`fdatasync`) before the in-memory state changes,
//! so what a client was told exists survives a crash.
//!
//! Secrets are never stored: an API key is kept as its SHA-256 (keys are 256 random bits, so a
//! fast hash is enough), a password as an argon2 PHC string.

use super::UserId;
use serde::{Deserialize, Serialize};
use simex_engine::PortfolioId;
use simex_journal::{Durability, JournalConfig, JournalReader, JournalWriter, RecoveryOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// The journal record type of every account record.
pub const RECORD_TYPE_ACCOUNT: u16 = 1;
/// The accounts journal is one log; the journal crate names it shard 0.
/// The accounts journal's one shard (its directory under the accounts root).
pub const ACCOUNTS_SHARD: u32 = 0;

/// One change to the account store, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountRecord {
    User {
        user_id: UserId,
        email: String,
        name: String,
        display_name: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password_phc: Option<String>,
    },
    ApiKey {
        user_id: UserId,
        key_sha256_hex: String,
    },
    /// A portfolio the user owns. `engine_portfolio_id` is the engine portfolio behind it.
    Portfolio {
        user_id: UserId,
        portfolio_id: PortfolioId,
        engine_portfolio_id: PortfolioId,
        name: String,
        starting_balance_micros: i64,
    },
    /// A reset: the portfolio now stands on a fresh engine portfolio.
    PortfolioReset {
        portfolio_id: PortfolioId,
        engine_portfolio_id: PortfolioId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub display_name: String,
    pub username: Option<String>,
    pub password_phc: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortfolioEntry {
    pub user_id: UserId,
    pub portfolio_id: PortfolioId,
    pub engine_portfolio_id: PortfolioId,
    pub name: String,
    pub starting_balance_micros: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("accounts journal: {0}")]
    Journal(String),
    #[error("accounts journal record {seq}: {message}")]
    Record { seq: u64, message: String },
    #[error("{0} is already registered")]
    Duplicate(&'static str),
}

/// The in-memory state the journal folds into.
#[derive(Default)]
pub struct Accounts {
    pub users: HashMap<UserId, User>,
    pub user_by_email: HashMap<String, UserId>,
    pub user_by_username: HashMap<String, UserId>,
    pub keys: HashMap<[u8; 32], UserId>,
    pub portfolios: HashMap<PortfolioId, PortfolioEntry>,
    /// The owner of each engine portfolio currently behind a portfolio: the binary gateway routes
    /// every fill report through it, so it is a lookup, not a scan of `portfolios`.
    pub owner_by_engine_id: HashMap<PortfolioId, UserId>,
    pub next_user_id: UserId,
}

impl Accounts {
    /// Checks a record against the state (duplicates), without changing anything.
    fn check(&self, record: &AccountRecord) -> Result<(), StoreError> {
        if let AccountRecord::User { email, username, .. } = record {
            if self.user_by_email.contains_key(&email.to_ascii_lowercase()) {
                return Err(StoreError::Duplicate("email"));
            }
            if username.as_ref().is_some_and(|u| self.user_by_username.contains_key(&u.to_ascii_lowercase())) {
                return Err(StoreError::Duplicate("username"));
            }
        }
        Ok(())
    }

    fn apply(&mut self, record: AccountRecord) -> Result<(), String> {
        match record {
            AccountRecord::User { user_id, email, name, display_name, username, password_phc } => {
                self.user_by_email.insert(email.to_ascii_lowercase(), user_id);
                if let Some(username) = &username {
                    self.user_by_username.insert(username.to_ascii_lowercase(), user_id);
                }
                self.next_user_id = self.next_user_id.max(user_id + 1);
                self.users.insert(user_id, User { user_id, email, name, display_name, username, password_phc });
            }
            AccountRecord::ApiKey { user_id, key_sha256_hex } => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&key_sha256_hex, &mut hash).map_err(|e| format!("key hash: {e}"))?;
                self.keys.insert(hash, user_id);
            }
            AccountRecord::Portfolio { user_id, portfolio_id, engine_portfolio_id, name, starting_balance_micros } => {
                self.owner_by_engine_id.insert(engine_portfolio_id, user_id);
                self.portfolios.insert(
                    portfolio_id,
                    PortfolioEntry { user_id, portfolio_id, engine_portfolio_id, name, starting_balance_micros },
                );
            }
            AccountRecord::PortfolioReset { portfolio_id, engine_portfolio_id } => {
                let entry =
                    self.portfolios.get_mut(&portfolio_id).ok_or_else(|| format!("reset of unknown {portfolio_id}"))?;
                self.owner_by_engine_id.remove(&entry.engine_portfolio_id);
                self.owner_by_engine_id.insert(engine_portfolio_id, entry.user_id);
                entry.engine_portfolio_id = engine_portfolio_id;
            }
        }
        Ok(())
    }
}

/// Users, keys and portfolios, durable in their own journal.
pub struct AccountStore {
    pub(super) state: RwLock<Accounts>,
    writer: Mutex<JournalWriter>,
    pub root: PathBuf,
}

impl AccountStore {
    /// Opens (recovering) or creates the accounts journal under `root`.
    pub fn open(root: &Path, durability: Durability) -> Result<AccountStore, StoreError> {
        let fail = |e: &dyn std::fmt::Display| StoreError::Journal(e.to_string());
        let config = JournalConfig { segment_size_bytes: 4 << 20, durability, ..JournalConfig::default() };
        let shard_dir = simex_journal::shard_dir(root, ACCOUNTS_SHARD);
        let has_segments = std::fs::read_dir(&shard_dir)
            .map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "seg")))
            .unwrap_or(false);
        let mut state = Accounts { next_user_id: 1, ..Accounts::default() };
        let writer = if has_segments {
            let options = RecoveryOptions { epoch: None, allow_corruption: false, scan_from_seq: None };
            let report = simex_journal::recover(root, ACCOUNTS_SHARD, &options).map_err(|e| fail(&e))?;
            if let Some(torn) = &report.torn_tail {
                tracing::warn!("accounts journal: truncated a torn tail: {torn}");
            }
            let mut reader = JournalReader::open(root, ACCOUNTS_SHARD, report.epoch).map_err(|e| fail(&e))?;
            while let Some(record) = reader.next_record().map_err(|e| fail(&e))? {
                let seq = record.seq;
                let parsed: AccountRecord = serde_json::from_slice(record.payload)
                    .map_err(|e| StoreError::Record { seq, message: e.to_string() })?;
                state.apply(parsed).map_err(|message| StoreError::Record { seq, message })?;
            }
            JournalWriter::open_for_append(&report, config).map_err(|e| fail(&e))?
        } else {
            let epoch =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
            JournalWriter::create(root, ACCOUNTS_SHARD, epoch, config).map_err(|e| fail(&e))?
        };
        Ok(AccountStore { state: RwLock::new(state), writer: Mutex::new(writer), root: root.to_path_buf() })
    }

    /// Builds records from the current state and journals them (one commit), then applies them.
    /// The writer lock is held throughout, so ids allocated by `build` cannot clash.
    pub fn append_with<T>(
        &self,
        build: impl FnOnce(&Accounts) -> Result<(Vec<AccountRecord>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let (records, value) = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            let (records, value) = build(&state)?;
            for record in &records {
                state.check(record)?;
            }
            (records, value)
        };
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        for record in &records {
            let payload = serde_json::to_vec(record).map_err(|e| StoreError::Journal(e.to_string()))?;
            let seq = writer.next_seq();
            writer
                .append(RECORD_TYPE_ACCOUNT, seq, now_ns, &payload)
                .map_err(|e| StoreError::Journal(e.to_string()))?;
        }
        writer.commit().map_err(|e| StoreError::Journal(e.to_string()))?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for record in records {
            state.apply(record).map_err(StoreError::Journal)?;
        }
        Ok(value)
    }
}
