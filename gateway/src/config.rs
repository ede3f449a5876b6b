//! The venue's configuration: command-line flags, each also read from an environment variable,
//! over an optional TOML file (`--config`), over built-in defaults. `simex --help` lists them.

use crate::runtime::Durability;
use anyhow::Context;
use serde::Deserialize;
use simex_engine::decimal::{Decimal, Step};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Flags of `simex` (serving the venue). Each may also come from the environment variable named.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment variables win).
    #[arg(long, env = "SIMEX_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP port [default: 8080].
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "BIND_ADDRESS")]
    pub bind: Option<IpAddr>,
    /// Directory for the journals, the account store and the token secret [default: ./simex-data].
    #[arg(long, env = "SIMEX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Allowed CORS origins, comma separated, or `*` [default: none].
    #[arg(long, env = "CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// Cash of a new portfolio when the request names none [default: 100000].
    #[arg(long, env = "DEFAULT_STARTING_BALANCE")]
    pub default_starting_balance: Option<String>,
    /// Prefix of issued API keys [default: st_].
    #[arg(long, env = "API_KEY_PREFIX")]
    pub api_key_prefix: Option<String>,
    /// Secret for signing tokens [default: generated once into <data-dir>/jwt_secret].
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// An external identity provider's RS256 public key (PEM) or JWKS file; its tokens are then
    /// accepted as bearer tokens [default: none].
    #[arg(long, env = "EXTERNAL_JWT_KEY_FILE")]
    pub external_jwt_key_file: Option<PathBuf>,
    /// The issuer (`iss`) external tokens must name [default: any].
    #[arg(long, env = "EXTERNAL_JWT_ISSUER")]
    pub external_jwt_issuer: Option<String>,
    /// The audience (`aud`) external tokens must name [default: not checked].
    #[arg(long, env = "EXTERNAL_JWT_AUDIENCE")]
    pub external_jwt_audience: Option<String>,
    /// Lifetime of issued tokens in seconds [default: 86400].
    #[arg(long, env = "JWT_TTL_SECONDS")]
    pub jwt_ttl_seconds: Option<u64>,
    /// Requests per second allowed per user [default: 50].
    #[arg(long, env = "RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<u32>,
    /// Requests a user may send at once above the rate [default: 100].
    #[arg(long, env = "RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Registrations, signups and logins per second per client IP [default: 5].
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_SECOND")]
    pub auth_rate_limit_per_second: Option<u32>,
    /// Registrations, signups and logins a client IP may send at once [default: 20].
    #[arg(long, env = "AUTH_RATE_LIMIT_BURST")]
    pub auth_rate_limit_burst: Option<u32>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "BODY_LIMIT_BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// Shard threads [default: 1].
    #[arg(long, env = "SIMEX_SHARDS")]
    pub shards: Option<usize>,
    /// Journal durability: sync, batch or none [default: sync].
    #[arg(long, env = "SIMEX_DURABILITY")]
    pub durability: Option<String>,
    /// Reference prices: a feeds TOML file (docs/prices.md), or `off` [default: the embedded
    /// synthetic prices for every symbol].
    #[arg(long, env = "SIMEX_FEEDS")]
    pub feeds: Option<String>,
    /// Port of the binary order-entry protocol (docs/protocol.md), on the same address; 0 picks a
    /// free one [default: 9001].
    #[arg(long, env = "SIMEX_BINARY_PORT")]
    pub binary_port: Option<u16>,
    /// PostgreSQL to project into and serve history from (docs/persistence.md) [default: none].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// The same settings in a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub port: Option<u16>,
    pub bind: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub cors_origins: Option<String>,
    pub default_starting_balance: Option<String>,
    pub api_key_prefix: Option<String>,
    pub jwt_secret: Option<String>,
    pub jwt_ttl_seconds: Option<u64>,
    pub external_jwt_key_file: Option<PathBuf>,
    pub external_jwt_issuer: Option<String>,
    pub external_jwt_audience: Option<String>,
    pub rate_limit_per_second: Option<u32>,
    pub rate_limit_burst: Option<u32>,
    pub auth_rate_limit_per_second: Option<u32>,
    pub auth_rate_limit_burst: Option<u32>,
    pub body_limit_bytes: Option<usize>,
    pub shards: Option<usize>,
    pub durability: Option<String>,
    pub feeds: Option<String>,
    pub binary_port: Option<u16>,
    pub database_url: Option<String>,
}

/// Where reference prices come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedsSetting {
    /// The embedded default: synthetic prices for every default symbol.
    Embedded,
    /// A feeds TOML file.
    File(PathBuf),
    /// No reference prices (only the book trades).
    Off,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct VenueConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub cors_origins: Vec<String>,
    pub default_starting_balance_micros: i64,
    pub api_key_prefix: String,
    pub jwt_secret: Option<String>,
    pub jwt_ttl_seconds: u64,
    pub external_jwt_key_file: Option<PathBuf>,
    pub external_jwt_issuer: Option<String>,
    pub external_jwt_audience: Option<String>,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub auth_rate_limit_per_second: u32,
    pub auth_rate_limit_burst: u32,
    pub body_limit_bytes: usize,
    pub shards: usize,
    pub durability: Durability,
    pub feeds: FeedsSetting,
    pub binary_listen: SocketAddr,
    /// Set: the PostgreSQL projection runs and serves history.
    pub database_url: Option<String>,
}

impl VenueConfig {
    /// Flags and environment over the file over the defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<VenueConfig> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let balance = args.default_starting_balance.or(file.default_starting_balance).unwrap_or("100000".into());
        let default_starting_balance_micros = Decimal::parse(&balance)
            .and_then(|d| d.to_steps(Step { mantissa: 1, scale: 6 }))
            .ok()
            .filter(|micros| *micros > 0)
            .with_context(|| format!("DEFAULT_STARTING_BALANCE {balance:?} is not a positive amount"))?;
        let durability = match args.durability.or(file.durability).as_deref().unwrap_or("sync") {
            "sync" => Durability::Sync,
            "batch" => Durability::Batch,
            "none" => Durability::None,
            other => anyhow::bail!("durability {other:?}: expected sync, batch or none"),
        };
        let cors = args.cors_origins.or(file.cors_origins).unwrap_or_default();
        let shards = args.shards.or(file.shards).unwrap_or(1);
        let bind = args.bind.or(file.bind).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let binary_listen = SocketAddr::new(bind, args.binary_port.or(file.binary_port).unwrap_or(9001));
        anyhow::ensure!((1..=64).contains(&shards), "shards must be between 1 and 64");
        Ok(VenueConfig {
            listen: SocketAddr::new(
                args.bind.or(file.bind).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                args.port.or(file.port).unwrap_or(8080),
            ),
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("simex-data")),
            cors_origins: cors.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect(),
            default_starting_balance_micros,
            api_key_prefix: args.api_key_prefix.or(file.api_key_prefix).unwrap_or_else(|| "st_".into()),
            jwt_secret: args.jwt_secret.or(file.jwt_secret),
            jwt_ttl_seconds: args.jwt_ttl_seconds.or(file.jwt_ttl_seconds).unwrap_or(86_400),
            external_jwt_key_file: args.external_jwt_key_file.or(file.external_jwt_key_file),
            external_jwt_issuer: args.external_jwt_issuer.or(file.external_jwt_issuer),
            external_jwt_audience: args.external_jwt_audience.or(file.external_jwt_audience),
            rate_limit_per_second: args.rate_limit_per_second.or(file.rate_limit_per_second).unwrap_or(50),
            rate_limit_burst: args.rate_limit_burst.or(file.rate_limit_burst).unwrap_or(100),
            auth_rate_limit_per_second: args
                .auth_rate_limit_per_second
                .or(file.auth_rate_limit_per_second)
                .unwrap_or(5),
            auth_rate_limit_burst: args.auth_rate_limit_burst.or(file.auth_rate_limit_burst).unwrap_or(20),
            body_limit_bytes: args.body_limit_bytes.or(file.body_limit_bytes).unwrap_or(1 << 20),
            shards,
            durability,
            binary_listen,
            database_url: args.database_url.or(file.database_url).filter(|url| !url.is_empty()),
            feeds: match args.feeds.or(file.feeds).as_deref() {
                None | Some("") => FeedsSetting::Embedded,
                Some("off") => FeedsSetting::Off,
                Some(path) => FeedsSetting::File(PathBuf::from(path)),
            },
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a valid configuration", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("simex.toml");
        std::fs::write(&path, "port = 9000\napi_key_prefix = \"bot_\"\ndefault_starting_balance = \"2500.50\"\n")
            .unwrap();
        let args = ServeArgs { config: Some(path.clone()), port: Some(9100), ..ServeArgs::default() };
        let config = VenueConfig::resolve(args).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.api_key_prefix, "bot_");
        assert_eq!(config.default_starting_balance_micros, 2_500_500_000);
        assert_eq!(config.rate_limit_per_second, 50);
        std::fs::write(&path, "prot = 1\n").unwrap();
        assert!(VenueConfig::resolve(ServeArgs { config: Some(path), ..ServeArgs::default() }).is_err());
        assert_eq!(config.database_url, None);
        let url = ServeArgs { database_url: Some("postgresql://simex@127.0.0.1/x".into()), ..ServeArgs::default() };
        assert_eq!(VenueConfig::resolve(url).unwrap().database_url.as_deref(), Some("postgresql://simex@127.0.0.1/x"));
        let empty = ServeArgs { database_url: Some(String::new()), ..ServeArgs::default() };
        assert_eq!(VenueConfig::resolve(empty).unwrap().database_url, None);
        let bad = ServeArgs { default_starting_balance: Some("-5".into()), ..ServeArgs::default() };
        assert!(VenueConfig::resolve(bad).is_err());
    }
}
