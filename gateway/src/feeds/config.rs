//! Which price sources run, read from TOML. The embedded default (`default_feeds.toml`) runs the
//! synthetic source for every default instrument, so `cargo run --release` has prices with no
//! configuration at all.

use super::eodhd::EodhdConfig;
use super::files::FileFeedConfig;
use super::pump::PumpConfig;
use super::synthetic::SyntheticConfig;
use serde::{Deserialize, Serialize};

/// The feed configuration compiled into simex, used when no file is given.
pub const DEFAULT_FEEDS_TOML: &str = include_str!("default_feeds.toml");

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The synthetic random walk (`[synthetic]`); absent: not run.
    #[serde(default)]
    pub synthetic: Option<SyntheticConfig>,
    /// Recorded files to replay (`[[files]]`).
    #[serde(default)]
    pub files: Vec<FileFeedConfig>,
    /// Live EODHD WebSocket connections (`[[eodhd]]`).
    #[serde(default)]
    pub eodhd: Vec<EodhdConfig>,
    #[serde(default)]
    pub pump: PumpConfig,
}

impl Default for FeedConfig {
    fn default() -> FeedConfig {
        FeedConfig::from_toml(DEFAULT_FEEDS_TOML).expect("the embedded feed configuration is valid")
    }
}

impl FeedConfig {
    pub fn from_toml(text: &str) -> Result<FeedConfig, FeedConfigError> {
        Ok(toml::from_str(text)?)
    }

    pub fn from_file(path: &std::path::Path) -> Result<FeedConfig, FeedConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| FeedConfigError::Invalid {
            source_name: "configuration",
            problem: format!("{}: {error}", path.display()),
        })?;
        FeedConfig::from_toml(&text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedConfigError {
    #[error("feed configuration is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("{source_name} feed: symbol {symbol}: {problem}")]
    Symbol { source_name: &'static str, symbol: String, problem: String },
    #[error("{source_name}: {problem}")]
    Invalid { source_name: &'static str, problem: String },
}
