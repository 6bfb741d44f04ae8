//! Every `.infra` file shipped in examples/ and modules/ (and every parseable
//! one under tests/data/) survives `infra fmt`: formatting is idempotent and the
//! formatted file parses to the same tree. So does every configuration proptest
//! generates: nested expressions, strings with interpolations, odd spacing.

use std::path::{Path, PathBuf};

use infra_syntax::{FileId, format::format, parse};
use proptest::prelude::*;

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

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,5}"
        .prop_filter("not a keyword", |s| !["true", "false", "null", "for", "in", "if"].contains(&s.as_str()))
}

/// Expression text: literals, references, collections, operators, calls,
/// conditionals and templates, nested a few levels.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<u16>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9 .,:/#-]{0,10}".prop_map(|s| format!("\"{s}\"")),
        Just("true".to_string()),
        Just("null".to_string()),
        (name(), name()).prop_map(|(a, b)| format!("var.{a}.{b}")),
        name().prop_map(|a| format!("file.{a}[0].path")),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
            prop::collection::vec((name(), inner.clone()), 0..3).prop_map(|items| {
                let fields: Vec<String> = items.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", fields.join(", "))
            }),
            (inner.clone(), prop::sample::select(vec!["+", "*", "==", "&&", "<=", "%"]), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| format!("{c} ? {a} : {b}")),
            (name(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            inner.clone().prop_map(|e| format!("\"x ${{{e}}} y\"")),
            inner.clone().prop_map(|e| format!("!({e})")),
            (name(), inner).prop_map(|(n, e)| format!("[for {n} in {e} : {n}]")),
        ]
    })
}

/// A configuration: blocks with labels, attributes and nested blocks, spaced
/// carelessly (the formatter's job is to fix that).
fn configuration() -> impl Strategy<Value = String> {
    let spacing = || prop::sample::select(vec!["", " ", "   ", "\t"]);
    let attribute = || (name(), spacing(), expression()).prop_map(|(n, s, e)| format!("{n}{s}={s}{e}\n"));
    let nested = (name(), prop::collection::vec(attribute(), 0..3))
        .prop_map(|(kind, attrs)| format!("{kind} {{\n{}}}\n", attrs.concat()));
    let block =
        (name(), name(), prop::collection::vec(attribute(), 0..4), prop::collection::vec(nested, 0..2), spacing())
            .prop_map(|(kind, label, attrs, nested, s)| {
                format!("{kind} \"{label}\"{s}{{\n{}{}}}\n\n", attrs.concat(), nested.concat())
            });
    prop::collection::vec(block, 1..4).prop_map(|blocks| blocks.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn fmt_is_idempotent_and_keeps_the_meaning_of_any_configuration(text in configuration()) {
        prop_assume!(parse(FileId(0), &text).is_ok());
        let formatted = format(&text);
        prop_assert_eq!(format(&formatted), formatted.clone(), "not idempotent on:\n{}", text);
        prop_assert_eq!(shape(&formatted), shape(&text), "meaning changed:\n{}\n---\n{}", text, formatted);
    }
}
