//! Every `.infra` file shipped in examples/ and modules/ (and every parseable
//! one under tests/data/) survives `infra fmt`: formatting is idempotent and the
//! formatted file parses to the same tree.

use std::path::{Path, PathBuf};

use infra_syntax::{FileId, format::format, parse};

fn infra_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            infra_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "infra") {
            out.push(path);
        }
    }
}

/// The tree's Debug text without spans: formatting moves text, not meaning.
fn shape(text: &str) -> String {
    let tree = format!("{:?}", parse(FileId(0), text).expect("parses"));
    let mut out = String::with_capacity(tree.len());
    let mut rest = tree.as_str();
    while let Some(start) = rest.find("Span {") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e + 1);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn fmt_round_trips_every_shipped_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["examples", "modules", "tests/data"] {
        infra_files(&root.join(dir), &mut files);
    }
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        if parse(FileId(0), &text).is_err() {
            assert!(file.to_string_lossy().contains("bad-input"), "{} does not parse", file.display());
            continue;
        }
        let formatted = format(&text);
        assert_eq!(format(&formatted), formatted, "{}: fmt is not idempotent", file.display());
        assert_eq!(shape(&formatted), shape(&text), "{}: fmt changed the meaning", file.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} files checked");
}

#[test]
fn shipped_examples_and_modules_are_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    infra_files(&root.join("examples"), &mut files);
    infra_files(&root.join("modules"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        assert_eq!(format(&text), text, "{} is not formatted: run `infra fmt`", file.display());
    }
}
