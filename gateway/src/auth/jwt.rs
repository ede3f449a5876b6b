//! HS256 JWTs for users who sign up with a password: issued at signup and login, accepted wherever
//! an API key is. The secret comes from the configuration, or is generated once and kept in
//! `<data>/jwt_secret` (mode 0600) so tokens survive restarts.

use super::UserId;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, in decimal.
    sub: String,
    iat: u64,
    exp: u64,
    iss: String,
}

const ISSUER: &str = "simex";

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: u64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_seconds: u64) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_seconds,
        }
    }

    /// A token for `user_id`, valid for the configured time.
    pub fn issue(&self, user_id: UserId) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims { sub: user_id.to_string(), iat: now, exp: now + self.ttl_seconds, iss: ISSUER.into() };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The user a valid, unexpired token of this venue names.
    pub fn verify(&self, token: &str) -> Option<UserId> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        data.claims.sub.parse().ok()
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }
}

/// The secret in `path` (hex), or a new random one written there.
pub fn load_or_create_secret(path: &Path) -> std::io::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return hex::decode(text.trim())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())));
    }
    let mut secret = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    std::io::Write::write_all(&mut file, hex::encode(&secret).as_bytes())?;
    file.sync_all()?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_secret() {
        let keys = JwtKeys::new(b"secret one", 60);
        let token = keys.issue(42).unwrap();
        assert_eq!(keys.verify(&token), Some(42));
        assert_eq!(JwtKeys::new(b"secret two", 60).verify(&token), None);
        assert_eq!(keys.verify("not.a.token"), None);
        let mut forged = token.clone();
        forged.pop();
        assert_eq!(keys.verify(&forged), None);
    }

    #[test]
    fn the_secret_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt_secret");
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        assert_eq!(first.len(), 32);
    }
}
