//! Verification keys by `kid`: compiled once (at snapshot compile, or when a
//! remote JWKS is fetched) from inline PEM or JWK keys, a JWKS file, or a
//! fetched JWKS document.
//!
//! Each key carries the algorithms it may verify, derived from its type (and
//! narrowed by its `alg`): an RSA key never verifies an HMAC token, so the
//! HS256-with-an-RSA-public-key confusion cannot happen; an HMAC secret
//! serves only the algorithms its length allows (RFC 7518 §3.2), and one
//! shorter than 32 bytes is refused. No I/O here except
//! reading the files the config names.

use crate::config::{KeyFormat, StaticKey};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::str::FromStr;

/// One key, ready to verify.
pub struct VerifyKey {
    pub decoding: DecodingKey,
    /// Signature check only, with the key's algorithms: claims are checked by
    /// [`super::claims`].
    pub validation: Validation,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

/// Keys by `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyKey>,
}

impl KeySet {
    pub fn get(&self, kid: &str) -> Option<&VerifyKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn insert(&mut self, kid: String, key: VerifyKey) -> Result<(), String> {
        if self.keys.contains_key(&kid) {
            return Err(format!("key id `{kid}` appears twice"));
        }
        self.keys.insert(kid, key);
        Ok(())
    }

    /// Adds every usable key of a JWKS document; keys without `kid`, of a
    /// type, curve or `alg` not understood, or meant for encryption (`use`,
    /// `key_ops`) are skipped (and named in the returned notes), as RFC 7517
    /// §5 asks: one key the gateway cannot read never costs it the others.
    pub fn add_jwks(&mut self, text: &str) -> Result<Vec<String>, String> {
        #[derive(serde::Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let set: RawSet = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut notes = Vec::new();
        for (i, member) in set.keys.into_iter().enumerate() {
            let kid = member
                .get("kid")
                .and_then(|k| k.as_str())
                .map(str::to_string);
            let Some(kid) = kid else {
                notes.push(format!("JWKS key {i} has no kid and is ignored"));
                continue;
            };
            let jwk = match serde_json::from_value::<Jwk>(member) {
                Ok(jwk) => jwk,
                Err(e) => {
                    notes.push(format!("JWKS key `{kid}` ignored: not understood ({e})"));
                    continue;
                }
            };
            match key_from_jwk(&jwk) {
                Ok(key) => self.insert(kid, key)?,
                Err(e) => notes.push(format!("JWKS key `{kid}` ignored: {e}")),
            }
        }
        Ok(notes)
    }

    /// Adds the inline keys of a `static_keys` config (a `key_file` path is
    /// used as it is: loading made it absolute).
    pub fn add_static(&mut self, keys: &[StaticKey]) -> Result<(), (usize, String)> {
        for (i, key) in keys.iter().enumerate() {
            let compiled = static_key(key).map_err(|e| (i, e))?;
            self.insert(key.kid.clone(), compiled).map_err(|e| (i, e))?;
        }
        Ok(())
    }
}

fn static_key(key: &StaticKey) -> Result<VerifyKey, String> {
    if key.kid.is_empty() {
        return Err("kid must not be empty".into());
    }
    let restrict = key
        .alg
        .as_deref()
        .map(|a| Algorithm::from_str(a).map_err(|_| format!("unknown alg `{a}`")))
        .transpose()?;
    match key.format {
        KeyFormat::Pem => {
            let text = match (&key.key, &key.key_file) {
                (Some(text), None) => text.clone(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read key_file `{file}`: {e}"))?,
                _ => return Err("a pem key needs exactly one of `key` or `key_file`".into()),
            };
            key_from_pem(text.as_bytes(), restrict)
        }
        KeyFormat::JsonWebKey => {
            let mut member = serde_json::Map::new();
            let fields = [
                ("kty", &key.kty),
                ("use", &key.use_),
                ("n", &key.n),
                ("e", &key.e),
                ("crv", &key.crv),
                ("x", &key.x),
                ("y", &key.y),
                ("k", &key.k),
                ("alg", &key.alg),
            ];
            for (name, value) in fields {
                if let Some(v) = value {
                    member.insert(name.into(), v.clone().into());
                }
            }
            if let Some(ops) = &key.key_ops {
                member.insert("key_ops".into(), ops.clone().into());
            }
            let jwk: Jwk = serde_json::from_value(member.into())
                .map_err(|e| format!("not a usable JWK: {e}"))?;
            key_from_jwk(&jwk)
        }
    }
}

/// A PEM public key (RSA, EC or Ed25519; SPKI or PKCS#1 for RSA).
fn key_from_pem(pem: &[u8], restrict: Option<Algorithm>) -> Result<VerifyKey, String> {
    let (decoding, family) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        (k, RSA)
    } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        (k, EC)
    } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        (k, ED)
    } else {
        return Err("not an RSA, EC or Ed25519 public key in PEM".into());
    };
    verify_key(decoding, family, restrict)
}

const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const EC: &[Algorithm] = &[Algorithm::ES256, Algorithm::ES384];
const ED: &[Algorithm] = &[Algorithm::EdDSA];
const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

fn key_from_jwk(jwk: &Jwk) -> Result<VerifyKey, String> {
    if let Some(usage) = &jwk.common.public_key_use {
        if *usage != jsonwebtoken::jwk::PublicKeyUse::Signature {
            return Err("not a signature key (`use`)".into());
        }
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&jsonwebtoken::jwk::KeyOperations::Verify) {
            return Err("not a verification key (`key_ops` lacks `verify`)".into());
        }
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &EC[..1],
            EllipticCurve::P384 => &EC[1..],
            _ => return Err("unsupported curve (P-256 and P-384 are)".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => ED,
        AlgorithmParameters::OctetKeyPair(_) => return Err("unsupported OKP curve".into()),
        AlgorithmParameters::OctetKey(p) => hmac_algorithms(&p.value)?,
        // Key kinds a later version of the JWK model adds are not understood.
        _ => return Err("unsupported key type".into()),
    };
    let restrict = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(algorithm(alg).ok_or_else(|| format!("alg {alg} cannot sign"))?),
    };
    let decoding = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key material: {e}"))?;
    verify_key(decoding, family, restrict)
}

/// The HMAC algorithms a secret of this size may serve: RFC 7518 §3.2 wants a
/// key at least as long as the hash output (32 bytes for HS256, 48 for
/// HS384, 64 for HS512); a shorter secret is refused outright.
fn hmac_algorithms(k: &str) -> Result<&'static [Algorithm], String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let bytes = URL_SAFE_NO_PAD
        .decode(k.trim_end_matches('='))
        .map_err(|_| "`k` is not base64url".to_string())?
        .len();
    match bytes {
        0..=31 => Err(format!(
            "an HMAC key of {bytes} bytes is too short: HS256 needs at least 32 (RFC 7518 §3.2)"
        )),
        32..=47 => Ok(&HMAC[..1]),
        48..=63 => Ok(&HMAC[..2]),
        _ => Ok(HMAC),
    }
}

fn algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Algorithm::from_str(&alg.to_string()).ok()
}

fn verify_key(
    decoding: DecodingKey,
    family: &[Algorithm],
    restrict: Option<Algorithm>,
) -> Result<VerifyKey, String> {
    let algorithms = match restrict {
        Some(alg) if family.contains(&alg) => vec![alg],
        Some(alg) => return Err(format!("alg {alg:?} does not fit this key's type or size")),
        None => family.to_vec(),
    };
    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms;
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    Ok(VerifyKey {
        decoding,
        validation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // An RSA JWK may verify RS*/PS* only: never HS256 (algorithm confusion).
    #[test]
    fn rsa_key_never_hmac() {
        let mut set = KeySet::default();
        let jwks = r#"{"keys":[{"kty":"RSA","kid":"r","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#;
        assert!(set.add_jwks(jwks).unwrap().is_empty());
        assert!(!set
            .get("r")
            .unwrap()
            .validation
            .algorithms
            .contains(&Algorithm::HS256));
    }

    // HMAC secrets shorter than the hash output are refused or narrowed (RFC 7518 §3.2).
    #[test]
    fn hmac_key_size_decides_algorithms() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let algorithms = |len: usize| {
            let mut set = KeySet::default();
            let k = URL_SAFE_NO_PAD.encode(vec![7u8; len]);
            let notes = set
                .add_jwks(&format!(
                    r#"{{"keys":[{{"kty":"oct","kid":"h","k":"{k}"}}]}}"#
                ))
                .unwrap();
            (
                set.get("h").map(|key| key.validation.algorithms.len()),
                notes.len(),
            )
        };
        assert_eq!(
            [
                algorithms(16),
                algorithms(32),
                algorithms(48),
                algorithms(64)
            ],
            [(None, 1), (Some(1), 0), (Some(2), 0), (Some(3), 0)]
        );
    }

    // RFC 7517 §5: keys of a type, curve or alg not understood are skipped,
    // not a reason to refuse the whole set (an IdP publishing a new key type
    // must not lock every caller out); §4.3: a key whose `key_ops` lacks
    // `verify` is not used to verify.
    #[test]
    fn unknown_key_kinds_skipped() {
        let mut set = KeySet::default();
        let jwks = r#"{"keys":[
            {"kty":"AKP","kid":"pq","alg":"ML-DSA-44","pub":"AAAA"},
            {"kty":"EC","kid":"k1","crv":"secp256k1","x":"AAAA","y":"AAAA"},
            {"kty":"RSA","kid":"enc","alg":"RSA-OAEP-384","n":"AQAB","e":"AQAB"},
            "not an object",
            {"kty":"oct","kid":"wrap","key_ops":["wrapKey"],"k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},
            {"kty":"oct","kid":"v","key_ops":["sign","verify"],"k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},
            {"kty":"oct","kid":"h","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}
        ]}"#;
        let notes = set.add_jwks(jwks).unwrap();
        assert_eq!((set.len(), notes.len()), (2, 5), "{notes:?}");
        assert!(set.get("wrap").is_none() && set.get("v").is_some());
        assert!(set.add_jwks(r#"{"keys":{}}"#).is_err());
    }

    // A key that is not PEM at all is refused with a clear message.
    #[test]
    fn garbage_pem_refused() {
        assert!(key_from_pem(b"not a key", None).is_err());
    }
}
