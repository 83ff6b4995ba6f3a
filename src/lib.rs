//! Portcullis: a thread-per-core io_uring API gateway.
//!
//! # The life of a request
//!
//! Data flows one way through these modules; nothing calls backwards.
//!
//! 1. **accept** — [`worker`]: one monoio runtime per core, one `SO_REUSEPORT`
//!    socket per listener per worker; [`accept`] takes connections off it.
//! 2. **connection** — [`tls`] handshake on TLS listeners, then [`conn`]: the
//!    keep-alive loop over one client socket
//!    ([`buffered`] holds its read buffer).
//! 3. **head** — [`http::request`]: httparse tokenises, we validate framing
//!    strictly; `Partial` means read more; hard caps on head, target, headers.
//! 4. **route** — [`router`] via the [`snapshot`]'s per-listener table, then
//!    method dispatch (404 / 405 + `Allow`).
//! 5. **policies** — network rules ([`dispatch`]), then [`policies`]: CORS
//!    ([`cors`], preflights answered here), authentication ([`auth`]), route
//!    authorization ([`authorization`]), then usage plans and rate limits
//!    ([`usage`]: token → subscriber → entitlement → rate limit → quota →
//!    deployment limit). Header transformations ([`headers`]) and security
//!    headers ([`security_headers`]) are applied when the heads are written.
//! 6. **upstream** — [`proxy::forward`]: pooled keep-alive connection per worker
//!    ([`proxy::pool`]), head rewritten ([`proxy::rewrite`]), body streamed with
//!    its framing checked ([`http::chunked`]).
//! 7. **response** — [`http::response`] parses the back end's head; body relayed,
//!    keep-alive decided for both connections.
//! 8. **telemetry** — (access log and metrics, per core, arrive here).
//!
//! # Where each concern lives
//!
//! | concern | file |
//! |---|---|
//! | config as written (serde data) | `config/mod.rs` |
//! | reading config, errors with line/column/key | `config/load.rs`, `config/locate.rs` |
//! | compiled immutable snapshot | `snapshot/mod.rs`, `snapshot/routes.rs`, `snapshot/backend.rs` |
//! | listening addresses that cannot be bound together | `snapshot/addresses.rs` |
//! | path routing table | `router.rs` |
//! | request head parsing and framing rules | `http/request.rs`, `http/fields.rs` |
//! | chunked coding | `http/chunked.rs` |
//! | Host / authority grammar, the path form routing sees, the `Date` field | `http/authority.rs`, `http/path.rs`, `http/date.rs` |
//! | response head parsing | `http/response.rs` |
//! | gateway's own answers | `http/respond.rs`, `http/status.rs` |
//! | socket + read buffer | `buffered.rs` |
//! | plain or TLS byte stream | `transport.rs` |
//! | TLS: handshakes, SNI, rotation, back-end trust | `tls/` |
//! | per-worker coarse clock, one timer per task | `deadline.rs` |
//! | accept-time network rule and per-address cap | `admission.rs`, `cidr.rs` |
//! | caller phases in order (CORS, authentication, authorization) | `policies.rs` |
//! | JWT: token, keys by kid, remote JWKS, claims, verified-token cache | `auth/` |
//! | route authorization by scope | `authorization.rs` |
//! | CORS preflight and response fields | `cors.rs` |
//! | header transformations, value templates | `headers/` |
//! | security response headers | `security_headers.rs` |
//! | per-connection request loop (I/O) | `conn.rs` |
//! | parse, route and plan a request head | `dispatch.rs` |
//! | request id, decision codes, outcome | `record.rs` |
//! | access log lines, writer thread | `access_log.rs` |
//! | client address, formatted once per connection | `peer.rs` |
//! | upstream exchange, pool, head rewriting | `proxy/forward.rs`, `proxy/pool.rs`, `proxy/rewrite.rs` |
//! | per-core worker, runtime, drain | `worker.rs` |
//! | accepting without losing a queued connection | `accept.rs` |
//! | process: bind, start workers, signals | `server.rs` |
//! | reload: recompile, publish, audit line | `reload.rs`, `snapshot/diff.rs` |
//! | control thread: config file watcher | `control.rs` |
//! | aggregated security events in the audit log | `audit.rs` |
//! | per-worker counters, published per tick | `telemetry.rs` |
//! | admin endpoint: health, readiness, config, usage, metrics | `admin/*.rs` |
//! | usage plans: tokens, buckets leased per worker, quotas, state_dir | `usage/*.rs`, `snapshot/usage.rs` |
//! | included config files (subscribers) | `config/load.rs` (`load_sources`) |
//! | command line | `cli.rs` |
//! | systemd notify, startup checks, zero-downtime takeover | `service/` |

#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod http;
pub mod io;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod route;
pub mod runtime;
pub mod service;
pub mod snapshot;
pub mod telemetry;
pub mod time;
pub mod tls;
