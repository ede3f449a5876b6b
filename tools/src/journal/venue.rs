//! The venue's journal directory: which shards it holds, their epochs, and how to build an engine
//! that can replay them.
//!
//! ```text
//! <root>/venue.toml                   optional: shard count, instrument file, symbol assignments
//! <root>/shard-<k>/*.seg              one journal per shard (simex-journal segments)
//! <root>/snapshots/shard-<k>/         engine snapshots of shard k
//! <root>/snapshots/shard-65535/       snapshots of the shared ledger (LEDGER_SNAPSHOT_SHARD)
//! ```
//!
//! Shards are discovered from the `shard-<k>` directories, so the tool works on a copy of a journal
//! without its configuration. The engines it builds need the instrument table (built in unless
//! `venue.toml` names a file), a shard id, and which symbols each shard owns. Ownership does not
//! matter for replaying correctly (a shard's events only touch the symbols it owned), but it does
//! matter for two things an operator relies on: the state hash covers exactly the owned symbols, so
//! only an engine that owns what the venue's owned reports the venue's hash; and an engine snapshot
//! records its owned symbols and refuses to restore into an engine that owns others. The tool
//! therefore assigns symbols exactly as the venue does, with the venue's own function
//! (`RuntimeConfig::shard_of_symbols`): the shard count and `assignments` of `venue.toml` when it
//! says so, else the venue's default, round-robin by symbol id over the shards found.

use super::ToolError;
use serde::Deserialize;
use simex::runtime::RuntimeConfig;
use simex_engine::{EngineConfig, InstrumentTable, SymbolId};
use simex_journal::segment::list_segments;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub use simex::runtime::LEDGER_SNAPSHOT_SHARD;
/// The configuration file the venue may leave in its journal root.
pub const VENUE_FILE: &str = "venue.toml";

/// What `venue.toml` may say. Other keys (the venue's own settings) are ignored.
#[derive(Debug, Default, Deserialize)]
struct VenueFile {
    #[serde(default, alias = "shard_count")]
    shards: Option<usize>,
    /// Instrument table (TOML), relative to the journal root unless absolute.
    #[serde(default, alias = "instrument_file", alias = "instruments_file")]
    instruments: Option<PathBuf>,
    /// Symbol -> shard, as in `RuntimeConfig::assignments`.
    #[serde(default)]
    assignments: BTreeMap<String, usize>,
}

/// A journal root, opened.
#[derive(Debug)]
pub struct Venue {
    pub root: PathBuf,
    /// Shard ids with a journal directory, ascending.
    pub shards: Vec<u32>,
    pub instruments: InstrumentTable,
    /// Where the instruments came from, for messages: "built-in table" or a path.
    pub instruments_source: String,
    /// The shard count `venue.toml` declares, if it exists and says so.
    pub declared_shards: Option<usize>,
    /// Where the symbol assignment came from, for messages.
    pub assignment_source: &'static str,
    /// The shard of every symbol (by symbol id), as the venue assigns them.
    shard_of_symbol: Vec<u16>,
}

impl Venue {
    /// Opens `root`: checks it is a journal directory, reads `venue.toml` if present and discovers
    /// the shards.
    pub fn open(root: &Path) -> Result<Venue, ToolError> {
        let meta = fs::metadata(root).map_err(|e| ToolError::io("open journal directory", root, &e))?;
        if !meta.is_dir() {
            return Err(ToolError::usage(format!("{} is not a directory", root.display())));
        }
        let config_path = root.join(VENUE_FILE);
        let file = match fs::read_to_string(&config_path) {
            Ok(text) => toml::from_str::<VenueFile>(&text)
                .map_err(|e| ToolError::usage(format!("{}: {}", config_path.display(), e.message())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => VenueFile::default(),
            Err(e) => return Err(ToolError::io("read", &config_path, &e)),
        };
        let (instruments, instruments_source) = match &file.instruments {
            None => (InstrumentTable::default_table(), "built-in table".to_string()),
            Some(path) => {
                let path = if path.is_absolute() { path.clone() } else { root.join(path) };
                let text = fs::read_to_string(&path).map_err(|e| ToolError::io("read instruments", &path, &e))?;
                let table = InstrumentTable::from_toml(&text)
                    .map_err(|e| ToolError::usage(format!("instruments {}: {e}", path.display())))?;
                (table, path.display().to_string())
            }
        };
        let shards = discover_shards(root)?;
        if shards.is_empty() {
            return Err(ToolError::usage(format!(
                "{} holds no journal: no shard-<k> directories in it",
                root.display()
            )));
        }
        let highest = shards.last().copied().unwrap_or(0) as usize;
        let config = RuntimeConfig {
            shards: file.shards.unwrap_or(highest + 1),
            assignments: file.assignments.iter().map(|(s, k)| (s.clone(), *k)).collect(),
            ..RuntimeConfig::default()
        };
        let shard_of_symbol = config.shard_of_symbols(&instruments).map_err(|e| {
            ToolError::usage(format!("{}: {e} (found shards {})", config_path.display(), list(&shards)))
        })?;
        if let Some(&beyond) = shards.iter().find(|&&k| k as usize >= config.shards) {
            return Err(ToolError::usage(format!(
                "{} says {} shards, but {} holds shard-{beyond}",
                config_path.display(),
                config.shards,
                root.display()
            )));
        }
        Ok(Venue {
            root: root.to_path_buf(),
            shards,
            instruments,
            instruments_source,
            declared_shards: file.shards,
            assignment_source: if file.shards.is_some() || !file.assignments.is_empty() {
                "venue.toml"
            } else {
                "the venue's default, round-robin by symbol id"
            },
            shard_of_symbol,
        })
    }

    /// The configuration of the engine that replays shard `shard`: the venue's defaults, owning the
    /// symbols the venue gives that shard.
    pub fn engine_config(&self, shard: u32) -> EngineConfig {
        let owned = RuntimeConfig::symbols_of(&self.shard_of_symbol, shard as usize);
        EngineConfig { shard_id: shard as u16, owned_symbols: Some(owned), ..EngineConfig::default() }
    }

    /// The shard that owns `symbol_id` (shard 0 for an id outside the table, as the venue routes it).
    pub fn shard_of(&self, symbol_id: SymbolId) -> u32 {
        u32::from(self.shard_of_symbol.get(usize::from(symbol_id)).copied().unwrap_or(0))
    }

    /// The symbols a shard owns, by name, for messages.
    pub fn owned_symbols(&self, shard: u32) -> Vec<String> {
        RuntimeConfig::symbols_of(&self.shard_of_symbol, shard as usize)
            .into_iter()
            .filter_map(|id| self.instruments.get(id).map(|i| i.symbol.clone()))
            .collect()
    }

    /// The shards named in the command line, or all of them; an unknown shard is a usage error.
    pub fn select_shards(&self, only: Option<u32>) -> Result<Vec<u32>, ToolError> {
        match only {
            None => Ok(self.shards.clone()),
            Some(shard) if self.shards.contains(&shard) => Ok(vec![shard]),
            Some(shard) => Err(ToolError::usage(format!(
                "there is no shard {shard} in {} (shards: {})",
                self.root.display(),
                list(&self.shards)
            ))),
        }
    }

    /// Shard ids missing from the numbering (0..=highest, or 0..declared): journals that should exist.
    pub fn missing_shards(&self) -> Vec<u32> {
        let highest = self.shards.last().copied().unwrap_or(0);
        let count = self.declared_shards.map_or(highest + 1, |n| (n as u32).max(highest + 1));
        (0..count).filter(|k| !self.shards.contains(k)).collect()
    }

    /// The journal epoch of a shard: the one in its first segment's header, if that reads.
    pub fn epoch(&self, shard: u32) -> Option<u64> {
        simex_journal::segment::first_epoch(&self.root, shard)
    }

    /// Sizes of a shard's segment files in bytes (as allocated on disk: segments are preallocated).
    pub fn segment_bytes(&self, shard: u32) -> u64 {
        list_segments(&simex_journal::shard_dir(&self.root, shard))
            .map(|(segments, _)| segments.iter().filter_map(|s| fs::metadata(&s.path).ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }
}

/// `shard-<k>` directories of `root`, `k` a shard id (below the ledger's pseudo-shard).
fn discover_shards(root: &Path) -> Result<Vec<u32>, ToolError> {
    let mut shards = Vec::new();
    let entries = fs::read_dir(root).map_err(|e| ToolError::io("list", root, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ToolError::io("list", root, &e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let Some(id) = name.strip_prefix("shard-").and_then(|k| k.parse::<u32>().ok()) else { continue };
        if id < LEDGER_SNAPSHOT_SHARD && entry.path().is_dir() && format!("shard-{id}") == name {
            shards.push(id);
        }
    }
    shards.sort_unstable();
    Ok(shards)
}

/// `0, 1, 2` for messages.
pub fn list(shards: &[u32]) -> String {
    shards.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
