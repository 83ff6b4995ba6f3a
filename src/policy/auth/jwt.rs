//! Verifying one JWT: header decoded, key chosen by `kid`, signature checked
//! by `jsonwebtoken` (ring underneath) with only the algorithms the key allows,
//! then the claims checked by [`super::claims`].
//!
//! `alg: none` does not parse, an HMAC token never meets an RSA/EC/Ed key
//! (the key's algorithm family decides), a missing or unknown `kid` is refused
//! (with a remote JWKS, an unknown `kid` asks its fetcher for an early
//! refresh: the key may just have been rotated in). A header with `crit` is
//! refused, since no extension is understood (RFC 7515 §4.1.11), and a header
//! or claims set naming a member twice is refused ([`super::json_object`]).
//! No I/O: remote keys are read from their cache.

use super::claims::{ClaimChecks, Claims};
use super::json_object::UniqueObject;
use super::keys::{KeySet, VerifyKey};
use super::remote_jwks::RemoteJwks;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Longest token accepted (bytes): larger ones are refused unparsed.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Where a deployment's keys are.
#[derive(Debug)]
pub enum KeySource {
    Static(KeySet),
    Remote(Arc<RemoteJwks>),
}

/// Why a token was refused (for the debug log; the client sees `invalid_token`).
pub type JwtError = &'static str;

/// Signature and claim verification for one deployment.
#[derive(Debug)]
pub struct Verifier {
    pub keys: KeySource,
    pub checks: ClaimChecks,
}

impl Verifier {
    /// Verifies `token` at `now` (seconds since the epoch) and returns its claims.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err("token too large");
        }
        check_header_members(token)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        let kid = header.kid.as_deref().ok_or("token has no kid")?;
        let map = match &self.keys {
            KeySource::Static(keys) => verify_with(keys, kid, token)?,
            KeySource::Remote(remote) => {
                let keys = remote.current().ok_or("remote JWKS not fetched yet")?;
                verify_with(&keys, kid, token).inspect_err(|&e| {
                    if e == UNKNOWN_KID {
                        remote.request_refresh();
                    }
                })?
            }
        };
        self.checks.check(&map, now)?;
        Ok(Claims { map })
    }
}

const UNKNOWN_KID: JwtError = "unknown kid";

/// Refuses a JOSE header that names a member twice or carries `crit`.
fn check_header_members(token: &str) -> Result<(), JwtError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (encoded, _) = token.split_once('.').ok_or("malformed token")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| "malformed token")?;
    let UniqueObject(header) =
        serde_json::from_slice(&bytes).map_err(|_| "malformed header (or a member twice)")?;
    if header.contains_key("crit") {
        return Err("crit header names extensions not understood");
    }
    Ok(())
}

fn verify_with(keys: &KeySet, kid: &str, token: &str) -> Result<Map<String, Value>, JwtError> {
    let VerifyKey {
        decoding,
        validation,
    } = keys.get(kid).ok_or(UNKNOWN_KID)?;
    jsonwebtoken::decode::<UniqueObject>(token, decoding, validation)
        .map(|data| data.claims.0)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => "algorithm not allowed for key",
            _ => "malformed token",
        })
}
