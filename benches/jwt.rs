//! JWT verification cost per request: `Verifier::verify` (header decode, key
//! by kid, signature, claim checks) for an RS256 (2048-bit) and an ES256
//! token, and `Authenticator::authenticate` on a parsed request head (token
//! taken from `Authorization: Bearer`), with the verified-token cache off and
//! on (a client repeating its token). Keys are generated at start.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use portcullis::http::request::{header_storage, parse_request, HeadLimits, Parsed};
use portcullis::policy::auth::claims::ClaimChecks;
use portcullis::policy::auth::jwt::{KeySource, Verifier};
use portcullis::policy::auth::keys::KeySet;
use portcullis::policy::auth::{now_seconds, Authenticator, TokenLocation};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use std::hint::black_box;

struct Fixture {
    verifier: Verifier,
    rs256: String,
    es256: String,
}

fn fixture() -> Fixture {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa keygen");
    let rng = ring::rand::SystemRandom::new();
    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref(), &rng)
        .unwrap();
    let point = ec.public_key().as_ref();
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": B64.encode(rsa.n().to_bytes_be()), "e": B64.encode(rsa.e().to_bytes_be())},
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])},
    ]});
    let mut keys = KeySet::default();
    keys.add_jwks(&jwks.to_string()).unwrap();
    let claims = json!({
        "iss": "https://issuer.test", "aud": "orders-api", "sub": "alice",
        "exp": now_seconds() + 3600, "scope": "orders:read orders:write",
    });
    let sign = |alg, kid: &str, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        encode(&header, &claims, key).unwrap()
    };
    let rsa_der = rsa.to_pkcs1_der().unwrap();
    Fixture {
        rs256: sign(
            Algorithm::RS256,
            "rsa",
            &EncodingKey::from_rsa_der(rsa_der.as_bytes()),
        ),
        es256: sign(
            Algorithm::ES256,
            "ec",
            &EncodingKey::from_ec_der(ec_pkcs8.as_ref()),
        ),
        verifier: Verifier {
            keys: KeySource::Static(keys),
            checks: ClaimChecks {
                issuers: vec!["https://issuer.test".into()],
                audiences: vec!["orders-api".into()],
                skew: 30,
                rules: vec![],
            },
        },
    }
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let now = now_seconds();
    assert!(f.verifier.verify(&f.rs256, now).is_ok());
    assert!(f.verifier.verify(&f.es256, now).is_ok());
    let mut group = c.benchmark_group("jwt_verify");
    group.bench_function("rs256", |b| {
        b.iter(|| f.verifier.verify(black_box(&f.rs256), now))
    });
    group.bench_function("es256", |b| {
        b.iter(|| f.verifier.verify(black_box(&f.es256), now))
    });
    group.finish();

    let mut authenticator = Authenticator {
        location: TokenLocation::Header {
            name: "Authorization".into(),
            scheme: "Bearer".into(),
        },
        verifier: f.verifier,
        anonymous_allowed: false,
        id: portcullis::policy::auth::next_id(),
        cache_capacity: 0,
    };
    let raw = format!(
        "GET /api/orders HTTP/1.1\r\nHost: gw.test\r\nAccept: */*\r\nAuthorization: Bearer {}\r\n\r\n",
        f.es256
    );
    let limits = HeadLimits {
        max_head_bytes: 8192,
        max_uri_bytes: 4096,
        max_headers: 100,
    };
    let mut group = c.benchmark_group("authenticate_request_es256");
    for (name, capacity) in [
        ("every_request_verified", 0),
        ("verified_token_cache", 1024),
    ] {
        authenticator.cache_capacity = capacity;
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut storage = header_storage();
                let Ok(Parsed::Complete(head)) =
                    parse_request(raw.as_bytes(), &limits, &mut storage)
                else {
                    panic!("bench request does not parse");
                };
                authenticator.authenticate(black_box(&head), now).is_ok()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
