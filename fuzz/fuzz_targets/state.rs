//! Any bytes as a state file: a state or a typed error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = infra_core::state::decode("fuzz.state", data);
});
