//! Every attribute of any configuration that parses, evaluated: a value or a
//! diagnostic, never a panic. References resolve to nothing but `var.x`, and
//! file functions read from an empty directory.
#![no_main]

use std::path::{Path, PathBuf};

use infra_core::Value;
use infra_lang::{Host, Reference, Scope};
use infra_syntax::ast::Body;

struct Empty {
    host: Host,
    dir: PathBuf,
}

impl Scope for Empty {
    fn resolve(&self, reference: &Reference) -> Option<Value> {
        match reference {
            Reference::Var(name) if name == "x" => Some(Value::List(vec![Value::Number(1.0), Value::string("a")])),
            _ => None,
        }
    }
    fn module_dir(&self) -> &Path {
        &self.dir
    }
    fn host(&self) -> &Host {
        &self.host
    }
}

fn evaluate(body: &Body, scope: &Empty) {
    for attribute in body.attributes() {
        let _ = infra_lang::eval(&attribute.value, scope);
    }
    for block in body.blocks() {
        evaluate(&block.body, scope);
    }
}

/// Numbers past 9999 are left out: `range(1000000)` inside a `for` over another
/// is a trillion steps the configuration asked for, not a bug to find.
fn has_large_numbers(text: &str) -> bool {
    let bytes = text.as_bytes();
    let exponent = bytes.windows(3).any(|w| {
        w[0].is_ascii_digit() && matches!(w[1], b'e' | b'E') && (w[2].is_ascii_digit() || matches!(w[2], b'+' | b'-'))
    });
    exponent || bytes.windows(5).any(|w| w.iter().all(u8::is_ascii_digit))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if has_large_numbers(text) {
        return;
    }
    let Ok(file) = infra_syntax::parse(infra_syntax::FileId(0), text) else { return };
    let dir = std::env::temp_dir().join("infra-fuzz-empty");
    let host = Host { cwd: dir.clone(), root: dir.clone(), ..Host::default() };
    evaluate(&file.body, &Empty { host, dir });
});
