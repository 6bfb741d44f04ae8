//! `infra fmt` on any text that parses: the result parses again, and
//! formatting it once more changes nothing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if infra_syntax::parse(infra_syntax::FileId(0), text).is_err() {
        return;
    }
    let once = infra_syntax::format::format(text);
    assert!(infra_syntax::parse(infra_syntax::FileId(0), &once).is_ok(), "formatted text no longer parses:\n{once}");
    assert_eq!(infra_syntax::format::format(&once), once, "fmt is not idempotent");
});
