//! OCI subscribers (`subscriber get` / `list`) as Portcullis `[[subscribers]]`:
//! usage plan OCIDs mapped to the imported plans' names, and clients with
//! their tokens written as SHA-256 digests (or as given, with plain tokens).
//!
//! A client whose token the export lacks (`subscriber list` leaves tokens
//! out), or whose token another client already has, gets a placeholder
//! digest: a value no token is known to hash to, so nobody can call as it
//! until the operator writes the real digest there.

use super::json::{Obj, Result};
use super::model::{strings, SubscriberOut};
use super::names::{from_ocid, Names};
use super::report::{Finding, Loc};
use crate::config::digest::sha256_hex;
use crate::policy::usage::MIN_TOKEN_LEN;
use serde_json::Value;

/// How client tokens are written, and the digests given so far (Portcullis
/// wants each token once across all subscribers).
#[derive(Debug, Default)]
pub struct Tokens {
    pub plain: bool,
    given: Vec<(String, String)>,
    placeholders: u64,
}

impl Tokens {
    pub fn new(plain: bool) -> Tokens {
        Tokens {
            plain,
            ..Tokens::default()
        }
    }

    /// A digest that stands for a missing token.
    fn placeholder(&mut self) -> String {
        self.placeholders += 1;
        format!("{:064x}", self.placeholders)
    }
}

/// Translates one subscriber; `plans` are the imported plans' (OCID, name) pairs.
pub fn subscriber(
    loc: Loc,
    value: &Value,
    plans: &[(String, String)],
    names: &mut Names,
    tokens: &mut Tokens,
) -> Result<SubscriberOut> {
    let mut obj = Obj::new(value, loc, "a subscriber")?;
    let mut out = SubscriberOut::default();
    let mut findings = Vec::new();
    let id = obj.str_opt("id")?;
    let display = obj.str_opt("displayName")?;
    obj.report_inactive("the subscriber", &mut findings)?;
    obj.metadata(&super::json::RESOURCE_METADATA);
    let ocid_name = id.and_then(from_ocid);
    let name = names.unique(&[display, ocid_name.as_deref()], "subscriber");
    out.section
        .comment(format!("OCI subscriber {}", id.unwrap_or("(no id)")));
    out.section.set("name", name.as_str());
    let plans_loc = obj.at("usagePlans");
    let mut plan_names = Vec::new();
    for (i, ocid) in obj.strings("usagePlans")?.iter().enumerate() {
        match plans.iter().find(|(id, _)| id == ocid) {
            Some((_, plan)) if !plan_names.contains(plan) => plan_names.push(plan.clone()),
            Some(_) => {}
            None => findings.push(Finding::new(
                plans_loc.index(i),
                format!("usage plan {ocid} is not among the imported usage plans (give its `usage-plan get` export with --usage-plans)"),
            )),
        }
    }
    if plan_names.is_empty() {
        out.section.skipped = true;
        findings.push(Finding::new(
            plans_loc,
            "none of its usage plans was imported; the subscriber is not imported",
        ));
    }
    out.section.set("usage_plans", strings(&plan_names));
    let mut client_names = Names::default();
    for (client_loc, value) in obj.array("clients")? {
        let mut client = Obj::new(value, client_loc.clone(), "a client")?;
        let mut section = super::model::Section::default();
        let given = client.str_req("name")?;
        let client_name = client_names.unique(&[Some(given)], "client");
        section.set("name", client_name.as_str());
        let token = client.str_opt("token")?.filter(|t| !t.is_empty());
        client.finish("Client", &mut findings);
        let who = format!("{name}/{client_name}");
        let owner = token.and_then(|t| {
            let digest = sha256_hex(t);
            tokens
                .given
                .iter()
                .find(|(d, _)| *d == digest)
                .map(|(_, owner)| owner.clone())
        });
        match (token, owner) {
            (Some(token), None) => {
                let digest = sha256_hex(token);
                // A subscriber written commented out holds no token.
                if !out.section.skipped {
                    tokens.given.push((digest.clone(), who));
                }
                if tokens.plain && token.len() >= MIN_TOKEN_LEN {
                    section.set("token", token);
                } else {
                    if tokens.plain {
                        section.comment(format!("written as a digest: Portcullis takes plain tokens of at least {MIN_TOKEN_LEN} characters"));
                    }
                    section.set("token_sha256", digest);
                }
            }
            (Some(_), Some(owner)) => {
                findings.push(Finding::new(
                    client_loc.key("token"),
                    format!("client `{owner}` has the same token, and Portcullis wants each token once; a placeholder digest is written"),
                ));
                section.comment("PLACEHOLDER digest: no token is known to hash to it; write this client's token_sha256 here");
                section.set("token_sha256", tokens.placeholder());
            }
            (None, _) => {
                findings.push(Finding::new(
                    client_loc.key("token"),
                    "the export has no token for this client (`subscriber list` leaves tokens out; use `subscriber get`); a placeholder digest is written",
                ));
                section.comment("PLACEHOLDER digest: no token is known to hash to it; write this client's token_sha256 here (`portcullis token` makes a new token)");
                section.set("token_sha256", tokens.placeholder());
            }
        }
        out.clients.push(section);
    }
    obj.finish("Subscriber", &mut findings);
    out.section.findings = findings;
    Ok(out)
}
