//! Load-test helper: generates an ES256 key, writes its JWKS (kid `bench`) to
//! `DIR/jwks.json`, and prints a token valid for a day (issuer
//! `https://issuer.bench`, audience `bench`), for `loadtest/jwt-throughput.sh`.
//!
//! `cargo run --release --example mint_jwt -- DIR`

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: mint_jwt DIR")?;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| "key generation failed")?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| "key parse failed")?;
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "kid": "bench", "crv": "P-256",
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])}]});
    std::fs::write(format!("{dir}/jwks.json"), jwks.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("bench".into());
    let claims = json!({"iss": "https://issuer.bench", "aud": "bench", "sub": "load",
        "exp": now + 86_400, "iat": now, "scope": "bench"});
    let token = encode(&header, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref()))?;
    println!("{token}");
    Ok(())
}
