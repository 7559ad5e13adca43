//! `lc::fuzzing::proxy_header`; the invariants are there.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lc::fuzzing::proxy_header(data));
