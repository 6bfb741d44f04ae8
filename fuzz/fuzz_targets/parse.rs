//! Any text through the parser: a syntax tree or diagnostics, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = infra_syntax::parse(infra_syntax::FileId(0), text);
    }
});
