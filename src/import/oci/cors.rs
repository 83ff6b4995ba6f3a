//! OCI's CorsPolicy (deployment-wide or per route) as a Portcullis `cors`
//! table: the same six fields in snake_case, checked with the gateway's own
//! CORS compiler so that what is written is what `check` accepts.

use super::json::{Obj, Result};
use super::model::{parse_as, strings, table};
use super::report::Finding;
use toml_edit::Value;

/// The `cors` value, or `None` (with a finding) when Portcullis would refuse it.
pub fn cors(mut obj: Obj<'_>, findings: &mut Vec<Finding>) -> Result<Option<Value>> {
    let loc = obj.loc().clone();
    let origins = obj.strings("allowedOrigins")?;
    let methods = obj.strings("allowedMethods")?;
    let headers = obj.strings("allowedHeaders")?;
    let exposed = obj.strings("exposedHeaders")?;
    let credentials = obj.bool_opt("isAllowCredentialsEnabled")?;
    let max_age_loc = obj.at("maxAgeInSeconds");
    let max_age = obj.int_opt("maxAgeInSeconds")?;
    obj.finish("CorsPolicy", findings);
    let mut pairs: Vec<(&str, Value)> = vec![("allowed_origins", strings(&origins))];
    for (key, list) in [
        ("allowed_methods", methods),
        ("allowed_headers", headers),
        ("exposed_headers", exposed),
    ] {
        if !list.is_empty() {
            pairs.push((key, strings(&list)));
        }
    }
    if let Some(credentials) = credentials {
        pairs.push(("is_allow_credentials_enabled", credentials.into()));
    }
    match max_age.map(u32::try_from) {
        Some(Ok(seconds)) => pairs.push(("max_age_in_seconds", i64::from(seconds).into())),
        Some(Err(_)) => findings.push(Finding::new(
            max_age_loc,
            "not a number of seconds Portcullis accepts (0 to 4294967295); browsers use their default",
        )),
        None => {}
    }
    let value = table(pairs);
    let checked = parse_as::<crate::config::Cors>(&value).and_then(|config| {
        crate::policy::cors::CorsPolicy::compile(&config)
            .map(|_| ())
            .map_err(|(key, message)| format!("{key}: {message}"))
    });
    match checked {
        Ok(()) => Ok(Some(value)),
        Err(why) => {
            findings.push(Finding::new(
                loc,
                format!("Portcullis refuses this CORS policy ({why}); no CORS fields are sent, so browsers block cross-origin calls"),
            ));
            Ok(None)
        }
    }
}
