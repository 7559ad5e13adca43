//! `lc::fuzzing::http_request`; the invariants are there.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lc::fuzzing::http_request(data));
