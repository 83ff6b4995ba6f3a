//! Fuzz target: arbitrary bytes into [`portcullis_fuzz::entry_points::jwt`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::entry_points::jwt(data));
