//! Fuzz target: arbitrary bytes into [`portcullis_fuzz::entry_points::request_head`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::entry_points::request_head(data));
