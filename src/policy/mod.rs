//! Step 5 of a request's way: the policies, one module each, in OCI's order
//! (written once, in [`chain`]): network rules ([`network`]) → CORS ([`cors`]) →
//! authentication ([`auth`]) → route authorization ([`authorization`]) →
//! usage plans and rate limits ([`usage`]); header transformations
//! ([`headers`]) and security headers ([`security_headers`]) apply when the
//! heads are written.
//!
//! The back end's own credentials ([`credentials`]) are the one policy on
//! the back end's side: asked for while the upstream head is written.
//!
//! Each policy has two faces: how it compiles from config (called by
//! [`crate::snapshot`], which holds the result) and a plain function the
//! request path calls with the request's head and context. Nothing here
//! imports the snapshot, the runtime or the proxy.

pub mod auth;
pub mod authorization;
pub mod chain;
pub mod compile;
pub mod cors;
pub mod credentials;
pub mod headers;
pub mod network;
pub mod security_headers;
pub mod usage;
pub mod validation;
pub mod worker_cache;
use crate::http::request::RequestHead;
use crate::telemetry::record::Decision;
use auth::Claims;
use headers::edits::ResponseExtras;
use std::net::IpAddr;
use std::rc::Rc;

/// A deployment's request policies, compiled (OCI's `requestPolicies`).
#[derive(Debug)]
pub struct DeploymentPolicies {
    /// Who may call this deployment, and what the others get.
    pub network: Option<network::NetworkPolicy>,
    /// JWT authentication, if the deployment has it.
    pub authentication: Option<auth::Authenticator>,
    /// Remote authentication (HTTP authorizer, OAuth2 introspection), if
    /// the deployment has it.
    pub remote_auth: Option<auth::remote::RemoteAuth>,
    /// CORS for routes without their own.
    pub cors: Option<cors::CorsPolicy>,
    /// Requests need a subscriber's client token.
    pub usage: Option<usage::DeploymentUsage>,
    /// A deployment-wide or per-address rate limit.
    pub rate_limit: Option<usage::DeploymentLimit>,
}

/// A route's policies, compiled (OCI's route `requestPolicies` and
/// `responsePolicies`).
#[derive(Debug)]
pub struct RoutePolicies {
    /// Required fields, content types, body schema (last in the chain).
    pub validation: Option<validation::ValidationSpec>,
    /// Who may call the route.
    pub authorization: authorization::Authorization,
    /// The route's CORS policy (its own, else its deployment's).
    pub cors: Option<cors::CorsPolicy>,
    /// Changes to the back end's request head.
    pub request_headers: Option<headers::HeaderTransform>,
    /// Changes to the client's response head.
    pub response_headers: Option<headers::HeaderTransform>,
}

/// What the request carries through the chain; each step reads it and may
/// add what it learned (claims, CORS fields, the subscriber).
pub struct RequestCtx<'r, 'h, 'b> {
    pub head: &'r RequestHead<'h, 'b>,
    /// The client's address (the trusted proxy's `X-Forwarded-For` resolved).
    pub client: IpAddr,
    /// The deployment's index and name.
    pub deployment: usize,
    pub deployment_name: &'r str,
    /// The subject of the client's TLS certificate, if it presented one.
    pub tls_subject: Option<&'r str>,
    /// Verified claims (None: anonymous), for authorization, header
    /// transformations, usage plans and logs. A remote authenticator's
    /// answer lands here too: its principal as `sub`, its scopes as `scope`,
    /// its context values by name, so `request.auth[NAME]` reads any of them
    /// through [`Claims::text`].
    pub claims: Option<Rc<Claims>>,
    /// Fields the response will carry (CORS), rendered by the back-end step.
    pub extras: ResponseExtras,
    /// Which subscriber's client called, and whether over quota.
    pub usage: usage::Admitted,
}

impl<'r, 'h, 'b> RequestCtx<'r, 'h, 'b> {
    pub fn new(
        head: &'r RequestHead<'h, 'b>,
        client: IpAddr,
        deployment: usize,
        deployment_name: &'r str,
    ) -> Self {
        RequestCtx {
            head,
            client,
            deployment,
            deployment_name,
            tls_subject: None,
            claims: None,
            extras: ResponseExtras::default(),
            usage: usage::Admitted::default(),
        }
    }
}

/// What one policy decided.
#[derive(Debug)]
pub enum Step {
    /// On to the next policy (and, after the last, to the back end).
    Continue,
    /// Refused: answer with this.
    Reject(Refusal),
    /// The gateway answers the request itself.
    Answer(Answer),
    /// A remote service must be asked first (an HTTP authorizer): the
    /// connection loop makes the call, hands the outcome over and runs the
    /// chain again.
    Await(Question),
}

/// A call a policy waits for.
#[derive(Debug)]
pub struct Question {
    /// The deployment whose authenticator asks.
    pub deployment: usize,
    /// What identifies the answer in the cache (the question itself, or a
    /// digest of the token).
    pub key: Vec<u8>,
    /// The request body to send.
    pub body: Vec<u8>,
}

/// A refused request: what to answer.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    /// The reason code for the access log and the counters.
    pub decision: Decision,
    /// Field lines for the answer (challenge, limits, CORS).
    pub fields: Vec<u8>,
    /// Close the connection without answering (`on_deny = "close"`).
    pub silent: bool,
}

impl Refusal {
    pub fn new(status: u16, decision: Decision, fields: Vec<u8>) -> Self {
        Refusal {
            status,
            decision,
            fields,
            silent: false,
        }
    }
}

/// An answer a policy gives instead of the back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A CORS preflight: `204 No Content` with the CORS fields.
    Preflight,
}
