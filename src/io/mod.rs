//! Socket I/O under both sides of the proxy: a plain or TLS byte stream
//! ([`transport`], rustls over owned buffers in [`tls_stream`]), a stream
//! with its read buffer and deadlines ([`buffered`]), opening back-end
//! connections ([`connect`]), a second descriptor of a plain socket for
//! immediate reads and writes and for checking a pooled connection is still
//! clean ([`socket_handle`]), and relaying bytes both ways over an upgraded
//! connection ([`tunnel`]), which follows the WebSocket frame boundaries
//! ([`websocket_frames`]) so that it can end one with Close frames of its
//! own ([`tunnel_close`]).
//!
//! Knows bytes, sockets and WebSocket frame headers, never HTTP; imports
//! only [`crate::time`].

pub mod buffered;
pub mod connect;
pub mod socket_handle;
pub mod tls_stream;
pub mod transport;
pub mod tunnel;
pub mod tunnel_close;
pub mod websocket_frames;
