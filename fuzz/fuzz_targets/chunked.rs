//! Fuzz target: arbitrary bytes into [`portcullis_fuzz::entry_points::chunked`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::entry_points::chunked(data));
