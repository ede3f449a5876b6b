//! Who may trade what: the binary gateway's view of API keys.
//!
//! The gateway asks two questions: which user a key belongs to (at login) and which user owns a
//! portfolio (to check each order, and to route each execution report to its owner). [`ApiKeys`]
//! is that contract; the HTTP gateway's key store implements it for the venue, and [`MemoryKeys`]
//! is a fixed table for tests and tools.

use rustc_hash::FxHashMap;
use simex_engine::PortfolioId;

/// Identity of a user (the holder of one or more API keys).
pub type UserId = u64;

pub trait ApiKeys: Send + Sync {
    /// The user a key belongs to, if it is valid.
    fn verify(&self, key: &str) -> Option<UserId>;
    /// The user owning a portfolio, if any.
    fn owner(&self, portfolio_id: PortfolioId) -> Option<UserId>;
    /// Whether `user` may trade `portfolio_id`.
    fn owns(&self, user: UserId, portfolio_id: PortfolioId) -> bool {
        self.owner(portfolio_id) == Some(user)
    }
}

/// A fixed table of keys and portfolio owners.
#[derive(Clone, Debug, Default)]
pub struct MemoryKeys {
    users_by_key: FxHashMap<String, UserId>,
    owners: FxHashMap<PortfolioId, UserId>,
}

impl MemoryKeys {
    pub fn new() -> MemoryKeys {
        MemoryKeys::default()
    }

    /// Adds a key for `user`, owning `portfolios`.
    pub fn with_user(mut self, key: &str, user: UserId, portfolios: &[PortfolioId]) -> MemoryKeys {
        self.users_by_key.insert(key.to_string(), user);
        for &portfolio_id in portfolios {
            self.owners.insert(portfolio_id, user);
        }
        self
    }
}

impl ApiKeys for MemoryKeys {
    fn verify(&self, key: &str) -> Option<UserId> {
        self.users_by_key.get(key).copied()
    }

    fn owner(&self, portfolio_id: PortfolioId) -> Option<UserId> {
        self.owners.get(&portfolio_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_users_and_users_own_portfolios() {
        let keys = MemoryKeys::new().with_user("k1", 1, &[10, 11]).with_user("k2", 2, &[20]);
        assert_eq!(keys.verify("k1"), Some(1));
        assert_eq!(keys.verify("k3"), None);
        assert!(keys.owns(1, 11));
        assert!(!keys.owns(1, 20));
        assert_eq!(keys.owner(20), Some(2));
        assert_eq!(keys.owner(99), None);
    }
}
