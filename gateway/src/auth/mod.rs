//! Who is calling: API keys, passwords and JWTs, over the durable [`AccountStore`].
//!
//! This is the public API every gateway (HTTP, the binary protocol) authenticates through:
//! [`AccountStore::verify`] turns an API key into a [`UserId`], [`AccountStore::owns`] says whether
//! a user owns a portfolio (and which engine portfolio stands behind it), and [`JwtKeys::verify`]
//! turns a bearer token into a [`UserId`].
//!
//! - API keys are `<prefix><64 hex digits>` (256 random bits from the OS), shown once and stored
//!   only as their SHA-256. Lookup is by hash; the stored hash is then compared in constant time.
//! - Passwords are hashed with argon2id (PHC strings with their own salt and parameters).
//! - Tokens are HS256 JWTs signed with the venue's secret, `sub` = the user id.

mod external;
mod jwt;
mod store;

pub use external::{ExternalKeyError, ExternalTokens};
pub use jwt::{load_or_create_secret, JwtKeys};
pub use store::{
    AccountRecord, AccountStore, Accounts, PortfolioEntry, StoreError, User, ACCOUNTS_SHARD, RECORD_TYPE_ACCOUNT,
};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};
use simex_engine::PortfolioId;
use subtle::ConstantTimeEq;

/// A registered user.
pub type UserId = u64;

/// The name other gateways know the key verifier by.
pub type KeyStore = AccountStore;

/// A fresh API key: the prefix and 256 random bits in hex.
pub fn generate_api_key(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn key_sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Journal(format!("hashing a password: {e}")))
}

pub fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// The key an external identity is stored under, in the email index: no email can clash with it
/// (it has no `@`), and hex keeps case-sensitive subjects apart in an index that ignores case.
fn external_identity(issuer: &str, subject: &str) -> String {
    format!("external:{}:{}", hex::encode(issuer), hex::encode(subject))
}

/// What a registration hands back.
pub struct Registered {
    pub user_id: UserId,
    pub api_key: String,
}

/// A new user's details.
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub display_name: String,
    pub username: Option<String>,
    pub password_phc: Option<String>,
}

impl AccountStore {
    /// The user an API key belongs to, if any.
    pub fn verify(&self, key: &str) -> Option<UserId> {
        let hash = key_sha256(key);
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let (stored, user_id) = state.keys.get_key_value(&hash)?;
        bool::from(stored.ct_eq(&hash)).then_some(*user_id)
    }

    /// The portfolio, if `user_id` owns it; `None` for unknown and foreign portfolios alike.
    pub fn owns(&self, user_id: UserId, portfolio_id: PortfolioId) -> Option<PortfolioEntry> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.portfolios.get(&portfolio_id).filter(|p| p.user_id == user_id).cloned()
    }

    pub fn user(&self, user_id: UserId) -> Option<User> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).users.get(&user_id).cloned()
    }

    /// The user's portfolios, by id.
    pub fn portfolios_of(&self, user_id: UserId) -> Vec<PortfolioEntry> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let mut portfolios: Vec<_> = state.portfolios.values().filter(|p| p.user_id == user_id).cloned().collect();
        portfolios.sort_by_key(|p| p.portfolio_id);
        portfolios
    }

    /// The largest portfolio id (public or engine) the store knows.
    pub fn portfolio_id_max(&self) -> PortfolioId {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.portfolios.values().map(|p| p.portfolio_id.max(p.engine_portfolio_id)).max().unwrap_or(0)
    }

    /// Registers a user with a new API key (durably) and returns the key, which is not kept.
    pub fn register(&self, user: NewUser, key_prefix: &str) -> Result<Registered, StoreError> {
        let api_key = generate_api_key(key_prefix);
        let key_sha256_hex = hex::encode(key_sha256(&api_key));
        let user_id = self.append_with(|state| {
            let user_id = state.next_user_id;
            let records = vec![
                AccountRecord::User {
                    user_id,
                    email: user.email,
                    name: user.name,
                    display_name: user.display_name,
                    username: user.username,
                    password_phc: user.password_phc,
                },
                AccountRecord::ApiKey { user_id, key_sha256_hex },
            ];
            Ok((records, user_id))
        })?;
        Ok(Registered { user_id, api_key })
    }

    /// The user whose username (or email) and password match.
    pub fn login(&self, username_or_email: &str, password: &str) -> Option<UserId> {
        let user = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            let lower = username_or_email.to_ascii_lowercase();
            let user_id = state.user_by_username.get(&lower).or_else(|| state.user_by_email.get(&lower))?;
            state.users.get(user_id).cloned()?
        };
        let phc = user.password_phc.as_deref()?;
        password_matches(password, phc).then_some(user.user_id)
    }

    /// The user standing for an external identity, created (durably) on first sight.
    pub fn external_user(&self, issuer: &str, subject: &str) -> Result<UserId, StoreError> {
        let identity = external_identity(issuer, subject);
        if let Some(user_id) = self.state.read().unwrap_or_else(|p| p.into_inner()).user_by_email.get(&identity) {
            return Ok(*user_id);
        }
        self.append_with(|state| {
            if let Some(user_id) = state.user_by_email.get(&identity) {
                return Ok((Vec::new(), *user_id));
            }
            let user_id = state.next_user_id;
            let record = AccountRecord::User {
                user_id,
                email: identity.clone(),
                name: subject.to_string(),
                display_name: subject.to_string(),
                username: None,
                password_phc: None,
            };
            Ok((vec![record], user_id))
        })
    }

    /// Records a new portfolio of `user_id`.
    pub fn add_portfolio(&self, entry: PortfolioEntry) -> Result<(), StoreError> {
        self.append_with(|_| {
            Ok((
                vec![AccountRecord::Portfolio {
                    user_id: entry.user_id,
                    portfolio_id: entry.portfolio_id,
                    engine_portfolio_id: entry.engine_portfolio_id,
                    name: entry.name,
                    starting_balance_micros: entry.starting_balance_micros,
                }],
                (),
            ))
        })
    }

    /// Records that a portfolio now stands on `engine_portfolio_id`.
    pub fn reset_portfolio(
        &self,
        portfolio_id: PortfolioId,
        engine_portfolio_id: PortfolioId,
    ) -> Result<(), StoreError> {
        self.append_with(|_| Ok((vec![AccountRecord::PortfolioReset { portfolio_id, engine_portfolio_id }], ())))
    }
}

/// The binary gateway authenticates through the same store. It names portfolios by their engine
/// id (equal to the public id until a portfolio is reset).
impl crate::binary::ApiKeys for AccountStore {
    fn verify(&self, key: &str) -> Option<UserId> {
        AccountStore::verify(self, key)
    }

    fn owner(&self, portfolio_id: PortfolioId) -> Option<UserId> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.owner_by_engine_id.get(&portfolio_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user(email: &str) -> NewUser {
        NewUser { email: email.into(), name: "n".into(), display_name: "d".into(), username: None, password_phc: None }
    }

    #[test]
    fn keys_users_and_portfolios_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (key, user_id) = {
            let store = AccountStore::open(dir.path(), simex_journal::Durability::Sync).unwrap();
            let registered = store.register(new_user("a@example.com"), "st_").unwrap();
            assert!(registered.api_key.starts_with("st_") && registered.api_key.len() == 3 + 64);
            let entry = PortfolioEntry {
                user_id: registered.user_id,
                portfolio_id: 7,
                engine_portfolio_id: 7,
                name: "main".into(),
                starting_balance_micros: 5,
            };
            store.add_portfolio(entry).unwrap();
            store.reset_portfolio(7, 9).unwrap();
            assert!(matches!(store.register(new_user("A@example.com"), "st_"), Err(StoreError::Duplicate("email"))));
            (registered.api_key, registered.user_id)
        };
        let store = AccountStore::open(dir.path(), simex_journal::Durability::Sync).unwrap();
        assert_eq!(store.verify(&key), Some(user_id));
        assert_eq!(store.verify("st_forged"), None);
        assert_eq!(store.owns(user_id, 7).map(|p| p.engine_portfolio_id), Some(9));
        assert_eq!(store.owns(user_id + 1, 7), None);
        assert_eq!(store.portfolio_id_max(), 9);
        let second = store.register(new_user("b@example.com"), "st_").unwrap();
        assert_eq!(second.user_id, user_id + 1);
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(!phc.contains("correct"));
        assert!(password_matches("correct horse", &phc));
        assert!(!password_matches("wrong", &phc));
        assert!(!password_matches("correct horse", "not a phc string"));
    }
}
