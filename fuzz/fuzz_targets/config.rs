//! Fuzz target: arbitrary bytes into [`portcullis_fuzz::entry_points::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::entry_points::config(data));
