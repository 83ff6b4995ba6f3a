//! Keys and tokens for the authentication tests, generated inside the tests:
//! one RSA key (RS256/384/512, PS256), P-256 and P-384 keys (ES256, ES384), an
//! Ed25519 key (EdDSA) and an HMAC secret (HS256), published as a JWKS with
//! kids `rsa`, `ec256`, `ec384`, `ed` and `hs`. Signing uses `jsonwebtoken`;
//! key generation uses `rsa` and `ring`.

#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The HMAC secret of kid `hs`.
pub const HMAC_SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";

pub struct TestKeys {
    rsa_der: Vec<u8>,
    pub rsa_public_pem: String,
    rsa_n: String,
    rsa_e: String,
    ec256_pkcs8: Vec<u8>,
    ec256_xy: (String, String),
    ec384_pkcs8: Vec<u8>,
    ec384_xy: (String, String),
    ed_pkcs8: Vec<u8>,
    ed_x: String,
}

/// The keys of this test binary, generated once.
pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(generate)
}

fn generate() -> TestKeys {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa keygen");
    let public = private.to_public_key();
    let rng = SystemRandom::new();
    let ec = |alg: &'static ring::signature::EcdsaSigningAlgorithm, width: usize| {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("ec keygen");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let xy = (
            B64.encode(&point[1..1 + width]),
            B64.encode(&point[1 + width..]),
        );
        (pkcs8.as_ref().to_vec(), xy)
    };
    let (ec256_pkcs8, ec256_xy) = ec(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, 32);
    let (ec384_pkcs8, ec384_xy) = ec(&ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING, 48);
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).expect("ed keygen");
    let ed_pair = Ed25519KeyPair::from_pkcs8(ed.as_ref()).unwrap();
    TestKeys {
        rsa_der: private.to_pkcs1_der().unwrap().as_bytes().to_vec(),
        rsa_public_pem: public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap(),
        rsa_n: B64.encode(public.n().to_bytes_be()),
        rsa_e: B64.encode(public.e().to_bytes_be()),
        ec256_pkcs8,
        ec256_xy,
        ec384_pkcs8,
        ec384_xy,
        ed_x: B64.encode(ed_pair.public_key().as_ref()),
        ed_pkcs8: ed.as_ref().to_vec(),
    }
}

impl TestKeys {
    /// The JWKS holding every public key (and the HMAC secret as an `oct` key).
    pub fn jwks(&self) -> String {
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "n": self.rsa_n, "e": self.rsa_e},
            {"kty": "EC", "kid": "ec256", "crv": "P-256", "x": self.ec256_xy.0, "y": self.ec256_xy.1},
            {"kty": "EC", "kid": "ec384", "crv": "P-384", "x": self.ec384_xy.0, "y": self.ec384_xy.1},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": self.ed_x},
            {"kty": "oct", "kid": "hs", "k": B64.encode(HMAC_SECRET)},
        ]})
        .to_string()
    }

    /// The signing key and kid for `alg`.
    pub fn signer(&self, alg: Algorithm) -> (EncodingKey, &'static str) {
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => (EncodingKey::from_rsa_der(&self.rsa_der), "rsa"),
            Algorithm::ES256 => (EncodingKey::from_ec_der(&self.ec256_pkcs8), "ec256"),
            Algorithm::ES384 => (EncodingKey::from_ec_der(&self.ec384_pkcs8), "ec384"),
            Algorithm::EdDSA => (EncodingKey::from_ed_der(&self.ed_pkcs8), "ed"),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                (EncodingKey::from_secret(HMAC_SECRET).unwrap(), "hs")
            }
            other => panic!("no test key for {other:?}"),
        }
    }

    /// A token signed with `alg` under its usual kid.
    pub fn token(&self, alg: Algorithm, claims: &Value) -> String {
        let (key, kid) = self.signer(alg);
        sign(alg, Some(kid), &key, claims)
    }
}

/// Signs `claims` with `key` as `alg`, with `kid` in the header if given.
pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, claims, key).expect("sign")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims the test gateways accept: issuer `https://issuer.test`, audience
/// `orders-api`, valid for ten minutes, subject `alice`, with `scope`.
pub fn claims(scope: &str) -> Value {
    json!({
        "iss": "https://issuer.test",
        "aud": "orders-api",
        "sub": "alice",
        "exp": now() + 600,
        "iat": now(),
        "scope": scope,
    })
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The `authentication` table for a deployment using the JWKS file at `jwks_path`.
pub fn jwt_auth_table(jwks_path: &str, extra: &str) -> String {
    format!(
        r#"authentication = {{ type = "jwt", issuers = ["https://issuer.test"], audiences = ["orders-api"], max_clock_skew = "30s", public_keys = {{ type = "static_keys", jwks_file = "{jwks_path}" }}{extra} }}"#
    )
}

/// Writes the JWKS into `dir` and returns its path.
pub fn write_jwks(dir: &std::path::Path) -> String {
    let path = dir.join("jwks.json");
    std::fs::write(&path, keys().jwks()).unwrap();
    path.to_str().unwrap().to_string()
}

/// A JWKS server over HTTPS on 127.0.0.1 with a certificate from a CA made
/// for the test; the document it serves can be swapped while it runs.
pub struct JwksServer {
    pub port: u16,
    /// PEM of the CA that signed the server's certificate.
    pub ca_pem: String,
    pub document: std::sync::Arc<std::sync::Mutex<String>>,
    pub fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    pub fn start(document: String) -> JwksServer {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let document = Arc::new(Mutex::new(document));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut tcp) = stream else { continue };
                let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(n) if n > 0 => head.extend_from_slice(&byte[..n]),
                        _ => break,
                    }
                }
                let body = doc.lock().unwrap().clone();
                count.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                conn.send_close_notify();
                let _ = conn.complete_io(&mut tcp);
            }
        });
        JwksServer {
            port,
            ca_pem: ca.pem(),
            document,
            fetches,
        }
    }
}

/// A JWKS with only the RSA key.
pub fn rsa_only_jwks() -> String {
    let all: Value = serde_json::from_str(&keys().jwks()).unwrap();
    json!({"keys": [all["keys"][0].clone()]}).to_string()
}
