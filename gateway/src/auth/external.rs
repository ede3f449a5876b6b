//! Tokens from an external identity provider (RS256), so that a frontend with its own login can
//! call the API. Configured with the provider's public key (PEM) or a JWKS file; optionally the
//! issuer and audience the tokens must name.
//!
//! A valid external token's `(iss, sub)` is mapped to a simex user, created (and journaled) the
//! first time it is seen. Nothing else from the token is trusted: in particular no email claim is
//! used to link to an existing user.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    iss: Option<String>,
}

/// The provider's verification keys and what its tokens must say.
pub struct ExternalTokens {
    /// (key id, key); a key without id matches any token.
    keys: Vec<(Option<String>, DecodingKey)>,
    validation: Validation,
}

#[derive(Debug, thiserror::Error)]
pub enum ExternalKeyError {
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} holds no usable RS256 key: {message}")]
    Key { path: String, message: String },
}

impl ExternalTokens {
    /// Keys from a PEM public key file or a JWKS (JSON) file, told apart by their content.
    pub fn from_file(
        path: &Path,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<ExternalTokens, ExternalKeyError> {
        let name = path.display().to_string();
        let bytes =
            std::fs::read(path).map_err(|e| ExternalKeyError::Read { path: name.clone(), message: e.to_string() })?;
        let key_error = |message: String| ExternalKeyError::Key { path: name.clone(), message };
        let keys = if bytes.trim_ascii_start().starts_with(b"{") {
            let set: JwkSet = serde_json::from_slice(&bytes).map_err(|e| key_error(e.to_string()))?;
            set.keys
                .iter()
                .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok().map(|key| (jwk.common.key_id.clone(), key)))
                .collect()
        } else {
            vec![(None, DecodingKey::from_rsa_pem(&bytes).map_err(|e| key_error(e.to_string()))?)]
        };
        if keys.is_empty() {
            return Err(key_error("no key".into()));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
        }
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(ExternalTokens { keys, validation })
    }

    /// The `(issuer, subject)` of a valid token.
    pub fn verify(&self, token: &str) -> Option<(String, String)> {
        let header = decode_header(token).ok()?;
        if header.alg != Algorithm::RS256 {
            return None;
        }
        self.keys
            .iter()
            .filter(|(kid, _)| kid.is_none() || header.kid.is_none() || *kid == header.kid)
            .find_map(|(_, key)| decode::<Claims>(token, key, &self.validation).ok())
            .map(|data| (data.claims.iss.unwrap_or_default(), data.claims.sub))
    }
}
