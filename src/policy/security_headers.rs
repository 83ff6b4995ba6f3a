//! Optional security response headers per listener: `Strict-Transport-Security`
//! (TLS listeners only), `X-Content-Type-Options: nosniff`, and removal of the
//! back end's `Server` and `X-Powered-By`.
//!
//! Compiled once per snapshot into ready field lines; applied when a response
//! head is written (back-end answers and the gateway's own answers alike).

use crate::config::SecurityHeadersConfig;

/// A listener's compiled security headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityHeaders {
    /// Field lines added to every response.
    pub fields: Box<[u8]>,
    /// Drop `Server` and `X-Powered-By` from back-end answers.
    pub remove_server_headers: bool,
    pub hsts: bool,
    pub content_type_options: bool,
}

impl SecurityHeaders {
    /// Compiles a listener's `security_headers`; `tls` says whether the
    /// listener speaks TLS. HSTS on a plain listener is ignored with a warning
    /// (browsers ignore it over plain HTTP anyway).
    pub fn compile(
        config: Option<&SecurityHeadersConfig>,
        tls: bool,
        listener: &str,
        warnings: &mut Vec<String>,
    ) -> Result<SecurityHeaders, (String, String)> {
        let Some(config) = config else {
            return Ok(SecurityHeaders::default());
        };
        let mut fields = Vec::new();
        let mut hsts = false;
        if let Some(value) = &config.hsts {
            if value.is_empty() || !crate::http::fields::is_valid_value(value.as_bytes()) {
                return Err((
                    "hsts".into(),
                    "must be a header value like \"max-age=31536000\"".into(),
                ));
            }
            if tls {
                fields.extend_from_slice(b"Strict-Transport-Security: ");
                fields.extend_from_slice(value.as_bytes());
                fields.extend_from_slice(b"\r\n");
                hsts = true;
            } else {
                warnings.push(format!(
                    "listener `{listener}`: security_headers.hsts is ignored on a plain (non-TLS) listener"
                ));
            }
        }
        if config.content_type_options {
            fields.extend_from_slice(b"X-Content-Type-Options: nosniff\r\n");
        }
        Ok(SecurityHeaders {
            fields: fields.into(),
            remove_server_headers: config.remove_server_headers,
            hsts,
            content_type_options: config.content_type_options,
        })
    }

    /// Whether a back-end response field is dropped: server identification
    /// when asked, and the fields the gateway writes itself.
    pub fn drops(&self, name: &str) -> bool {
        (self.remove_server_headers
            && (name.eq_ignore_ascii_case("server") || name.eq_ignore_ascii_case("x-powered-by")))
            || (self.content_type_options && name.eq_ignore_ascii_case("x-content-type-options"))
            || (self.hsts && name.eq_ignore_ascii_case("strict-transport-security"))
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && !self.remove_server_headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // HSTS on a plain listener is a warning and no field; nosniff is a field.
    #[test]
    fn hsts_only_on_tls() {
        let config = SecurityHeadersConfig {
            hsts: Some("max-age=600".into()),
            content_type_options: true,
            remove_server_headers: true,
        };
        let mut warnings = Vec::new();
        let plain = SecurityHeaders::compile(Some(&config), false, "l", &mut warnings).unwrap();
        let tls = SecurityHeaders::compile(Some(&config), true, "l", &mut Vec::new()).unwrap();
        assert_eq!(
            (&*plain.fields, warnings.len(), &*tls.fields),
            (
                &b"X-Content-Type-Options: nosniff\r\n"[..],
                1,
                &b"Strict-Transport-Security: max-age=600\r\nX-Content-Type-Options: nosniff\r\n"[..]
            )
        );
    }
}
