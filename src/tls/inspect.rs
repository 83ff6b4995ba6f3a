//! What the gateway reads out of an X.509 certificate: the DNS names SNI is
//! matched against, the subject (of a verified client certificate, for logs
//! and policies) and the expiry date (for `portcullis check`).

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The certificate's DNS names, lowercase: its subjectAltName entries, or
/// its common name when it has none. Wildcards keep their `*.`.
pub fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(text) = cn.as_str() {
                names.push(text.to_ascii_lowercase());
            }
        }
    }
    names
}

/// The subject distinguished name, RFC 4514 style (`CN=client,O=Example`).
pub fn subject(der: &[u8]) -> Option<String> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, cert)| cert.subject().to_string())
}

/// Seconds since the Unix epoch at which the certificate expires.
pub fn not_after(der: &[u8]) -> Option<i64> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, cert)| cert.validity().not_after.timestamp())
}

/// A warning when the certificate in `path` expires within `days` days of
/// `now` (Unix seconds) or has already expired.
pub fn expiry_warning(path: &str, der: &[u8], now: i64, days: i64) -> Option<String> {
    let expires = not_after(der)?;
    let left = expires - now;
    if left <= 0 {
        Some(format!("certificate `{path}` has expired"))
    } else if left < days * 86_400 {
        Some(format!(
            "certificate `{path}` expires in {} day(s)",
            left / 86_400
        ))
    } else {
        None
    }
}
