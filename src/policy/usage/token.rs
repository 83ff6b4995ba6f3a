//! Client tokens for `portcullis token`: 32 random bytes from the kernel,
//! URL-safe base64 without padding (43 characters, fits a header and a query
//! parameter unescaped), and the SHA-256 the config may hold instead.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A fresh random token.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64_url(&bytes))
}

/// Hex SHA-256 of a token, as `token_sha256` wants it.
pub fn sha256_hex(token: &str) -> String {
    crate::config::digest::sha256_hex(token)
}

fn base64_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The encoding is RFC 4648 §5 without padding.
    #[test]
    fn base64_url_without_padding() {
        assert_eq!(
            [
                base64_url(b"f"),
                base64_url(b"fo"),
                base64_url(b"foo"),
                base64_url(&[0xfb, 0xff])
            ],
            ["Zg", "Zm8", "Zm9v", "-_8"]
        );
    }

    // Tokens are long enough for the config's minimum and differ each time.
    #[test]
    fn tokens_are_fresh() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert!(a.len() == 43 && a != b);
    }
}
