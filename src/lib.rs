//! Portcullis: a thread-per-core io_uring API gateway.
//!
//! # The life of a request
//!
//! One folder per stage; imports point down the way or into the shared
//! leaves ([`http`], [`net`], [`time`]); nothing calls backwards and no two
//! modules import each other.
//!
//! 1. **accept** — [`runtime::worker`]: one monoio runtime per core, one
//!    `SO_REUSEPORT` socket per listener per worker; [`runtime::accept`]
//!    takes connections off it after [`runtime::admission`]'s network rule.
//! 2. **connection** — [`tls`] handshake on TLS listeners, then
//!    [`runtime::conn`]: the keep-alive loop over one client socket
//!    ([`io::buffered`] holds its read buffer, [`io::transport`] hides TLS).
//! 3. **head** — [`runtime::dispatch`] drives steps 3–5 while the head borrows
//!    the read buffer; [`http::request`] tokenises with httparse and validates
//!    framing strictly; `Partial` means read more.
//! 4. **route** — [`route::table`] via the [`snapshot`]'s per-listener table,
//!    then method dispatch (404 / 405 + `Allow`).
//! 5. **policies** — [`policy::chain`] runs them in OCI's order: network rule
//!    ([`policy::network`]), CORS ([`policy::cors`], preflights answered),
//!    authentication ([`policy::auth`]), authorization
//!    ([`policy::authorization`]), usage plans and rate limits
//!    ([`policy::usage`]). Each compiles in [`policy::compile`] and answers
//!    with a [`policy::Step`]. Header transformations ([`policy::headers`])
//!    and security headers ([`policy::security_headers`]) apply as heads are
//!    written; the gateway's own answers are [`runtime::answer`].
//! 6. **upstream** — [`runtime::relay`] → [`proxy::forward`]: pooled
//!    keep-alive connection per worker ([`proxy::pool`]), head rewritten
//!    ([`proxy::rewrite`]), body streamed with its framing checked
//!    ([`http::chunked`]).
//! 7. **response** — [`http::response`] parses the back end's head; body
//!    relayed, keep-alive decided for both connections.
//! 8. **telemetry** — [`telemetry`]: request records, access log, counters
//!    and audit lines, per core, merged off the hot path.
//!
//! # Where each concern lives
//!
//! | concern | file |
//! |---|---|
//! | config as written (serde data), loading, error locations | `config/mod.rs`, `config/load.rs`, `config/locate.rs` |
//! | relative paths made absolute against the config file's directory | `config/paths.rs` |
//! | serde's error messages in operator words | `config/words.rs` |
//! | SHA-256 digests of config files and tokens | `config/digest.rs` |
//! | compiled immutable snapshot, routes, back ends, stock answers | `snapshot/mod.rs`, `snapshot/routes.rs`, `snapshot/backend.rs`, `snapshot/stock.rs` |
//! | listening addresses that cannot be bound together | `snapshot/addresses.rs` |
//! | what a snapshot defines, in plain fields (`/config`) | `snapshot/inventory.rs` |
//! | what changed between two snapshots | `snapshot/diff.rs` |
//! | process clock, UTC calendar, per-worker deadlines | `time/clock.rs`, `time/calendar.rs`, `time/deadline.rs` |
//! | CIDR sets, network rules, the per-address limit key | `net/cidr.rs` |
//! | the client: address, TLS facts, `X-Forwarded-For` from trusted proxies | `net/peer.rs` |
//! | request head parsing and framing rules | `http/request.rs`, `http/request_fields.rs`, `http/fields.rs` |
//! | the forwarding fields a forwarded request gets (`X-Forwarded-*`, `Forwarded`, `X-Request-Id`) | `proxy/forwarding.rs` |
//! | `Max-Forwards` on OPTIONS and TRACE, the TRACE echo | `http/max_forwards.rs` |
//! | request target forms, Host grammar, the path routing sees | `http/authority.rs`, `http/path.rs` |
//! | query strings (one reader for every caller) | `http/query.rs` |
//! | chunked coding, response heads, status reasons, `Date` | `http/chunked.rs`, `http/response.rs`, `http/status.rs`, `http/date.rs` |
//! | gateway's error answers on the wire | `http/respond.rs` |
//! | socket + read buffer, plain or TLS stream | `io/buffered.rs`, `io/transport.rs`, `io/tls_stream.rs` |
//! | opening back-end connections, checking pooled ones | `io/connect.rs`, `io/socket_handle.rs` |
//! | TLS: listener configs, SNI, rotation, back-end trust, PEM | `tls/server.rs`, `tls/sni.rs`, `tls/rotation.rs`, `tls/client.rs`, `tls/pem.rs` |
//! | path table and the `{param}` grammar | `route/table.rs` |
//! | request values that choose (selectors, template variables), a dynamic back end's cases | `route/selector.rs`, `snapshot/dynamic.rs` |
//! | the policy chain, its order and its types | `policy/chain.rs`, `policy/mod.rs` |
//! | compiling policies from config | `policy/compile.rs` |
//! | deployment network rule | `policy/network.rs` |
//! | JWT: token, keys by kid, remote JWKS, claims, verified-token cache | `policy/auth/` |
//! | HTTP authorizer, OAuth2 introspection: question, answer, per-worker answer cache | `policy/auth/authorizer.rs`, `policy/auth/authorizer_answer.rs`, `policy/auth/introspection.rs`, `policy/auth/remote.rs`, `policy/auth/answer_cache.rs`, `policy/auth/remote_target.rs` |
//! | the call to a remote authenticator on the worker's pool | `proxy/side_call.rs` |
//! | back-end credentials: Basic, OAuth2 client-credentials token fetcher | `policy/credentials/` |
//! | secrets by reference (inline, env, file) | `config/secret.rs` |
//! | route authorization by scope | `policy/authorization.rs` |
//! | CORS preflight and response fields | `policy/cors.rs` |
//! | header transformations, value templates | `policy/headers/` |
//! | security response headers | `policy/security_headers.rs` |
//! | request validation: fields, content types, JSON Schema, problem documents | `policy/validation.rs` |
//! | the per-worker memo the policies share (tokens, answers) | `policy/worker_cache.rs` |
//! | usage plans: tokens, buckets leased per worker, quotas, state_dir | `policy/usage/` |
//! | several nodes sharing limits on Redis: store thread, leases, membership | `cluster/` |
//! | upstream exchange, its types, pool, head rewriting, bodies | `proxy/forward.rs`, `proxy/exchange.rs`, `proxy/pool.rs`, `proxy/rewrite.rs`, `proxy/request_body.rs`, `proxy/response_body.rs` |
//! | back ends with several servers: server specs and shared health cells, balancing, outlier ejection, active checks, retries and their budget, concurrency caps, 1xx relay | `snapshot/servers.rs`, `proxy/balance.rs`, `proxy/health.rs`, `proxy/health_check.rs`, `proxy/health_probe.rs`, `proxy/retry.rs`, `proxy/breaker.rs`, `proxy/interim.rs` |
//! | back-end host names: one server per address, `[resolver]`, answers kept for their TTL, the resolver thread, the DNS client | `snapshot/names.rs`, `snapshot/resolver.rs`, `runtime/resolver.rs`, `net/dns/` |
//! | process start, signals, shutdown | `runtime/server.rs`, `runtime/sockets.rs`, `runtime/start_error.rs` |
//! | per-core worker, its shared state, drain | `runtime/worker.rs`, `runtime/worker_ctx.rs` |
//! | accepting without losing a queued connection; accept-time rule and cap | `runtime/accept.rs`, `runtime/admission.rs` |
//! | per-connection request loop, request buffers, answers | `runtime/conn.rs`, `runtime/head_reader.rs`, `runtime/scope.rs`, `runtime/answer.rs` |
//! | parse, route and plan a request head; the plan; the head written for the back end | `runtime/dispatch.rs`, `runtime/plan.rs`, `runtime/upstream_plan.rs` |
//! | forwarding a planned request and recording it | `runtime/relay.rs` |
//! | WebSocket: the opening request, the 101, the two-way relay, the Close at the grace's end | `http/websocket.rs`, `proxy/switch.rs`, `io/tunnel.rs`, `io/websocket_frames.rs`, `io/tunnel_close.rs`, `runtime/websocket.rs` |
//! | access-log fields a head decides | `runtime/request_log.rs` |
//! | reload: recompile, publish, audit line; file watcher | `runtime/reload.rs`, `runtime/control.rs` |
//! | request id, decision codes, outcome | `telemetry/record.rs` |
//! | access log lines, writer thread, value formats | `telemetry/access_log.rs`, `telemetry/format.rs` |
//! | per-worker counters, audit summaries, reload history | `telemetry/counters.rs`, `telemetry/audit.rs`, `telemetry/reloads.rs` |
//! | admin endpoint: health, readiness, config, usage, metrics | `admin/*.rs` |
//! | systemd notify, startup checks (who holds a port: `service/port_owner.rs`), takeover, background threads | `service/` |
//! | command line | `cli.rs` |
//! | `import oci`: OCI API Gateway exports into a config, with a report of what did not carry over | `import/oci/` |

#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod http;
pub mod import;
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
