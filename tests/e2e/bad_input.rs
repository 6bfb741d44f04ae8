//! The bad-input corpus: every entry under tests/data/bad-input is a broken
//! configuration, either one file or a directory holding `main.infra` and
//! what it uses (a module, a var file, an `args` file with extra command-line
//! arguments, one per line). The first line of `main.infra` names the
//! diagnostic it must produce (`# expect: infra::code`). Each must fail with
//! exit 1, name that code and the file and line at fault, match its snapshot,
//! and leave state untouched.

use std::path::{Path, PathBuf};

use crate::support::TestEnv;

#[test]
fn every_case_reports_its_diagnostic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-input");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("corpus dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "infra"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 55, "the corpus shrank to {} cases", cases.len());
    for case in cases {
        let name = case.file_stem().expect("name").to_string_lossy().into_owned();
        let env = TestEnv::new();
        let mut args = vec!["plan".to_string(), "-no-color".to_string()];
        if case.is_dir() {
            crate::support::docker::copy_dir(&case, env.path());
            if let Ok(extra) = std::fs::read_to_string(env.join("args")) {
                args.extend(extra.lines().map(str::to_string));
            }
        } else {
            env.write("main.infra", &std::fs::read_to_string(&case).expect("read case"));
        }
        let text = env.read("main.infra");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: CODE`"))
            .trim()
            .to_string();
        let run = env.infra(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(run.code, 1, "{name}: expected exit 1, got {}\n{}{}", run.code, run.stdout, run.stderr);
        assert!(run.stderr.lines().any(|l| l.trim() == expected), "{name}: expected {expected} in:\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name}: panic:\n{}", run.stderr);
        // A command-line argument has no file and line; everything else does.
        if expected != "infra::bad_variable" {
            assert!(names_a_place(&run.stderr), "{name}: no file:line in:\n{}", run.stderr);
        }
        assert!(!env.exists("infra.state"), "{name}: a failed plan must not write state");
        insta::assert_snapshot!(format!("bad_input_{name}"), env.stable(&run.stderr));
    }
}

/// `main.infra:3:5` (miette's header or a place named in the message).
fn names_a_place(stderr: &str) -> bool {
    stderr.split(|c: char| c.is_whitespace() || c == '[' || c == ']').any(|word| {
        let mut parts = word.trim_end_matches(':').rsplitn(3, ':');
        let (col, line, file) = (parts.next(), parts.next(), parts.next());
        file.is_some_and(|f| f.ends_with(".infra") || f.ends_with(".infravars"))
            && [line, col].iter().all(|n| n.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    })
}

/// Input no one writes by hand but a generator or an attacker might: each must
/// end in a diagnostic naming the file and line, never a panic, a stack
/// overflow or a hang (the time each takes is in BENCHMARKS.md).
#[test]
fn huge_and_deep_input_is_refused_with_a_place() {
    let long_name = "a".repeat(200_000);
    let deep = format!("locals {{\n  deep = {}1{}\n}}\n", "[".repeat(5_000), "]".repeat(5_000));
    let broken: String = (0..10_000).map(|i| format!("file \"f{i}\" {{\n  path = \n}}\n")).collect();
    let cases = [
        ("long_identifier", format!("locals {{\n  x = var.{long_name}\n}}\n"), "main.infra:2:"),
        ("long_block_type", format!("{long_name} \"x\" {{\n}}\n"), "main.infra:1:"),
        ("deep_nesting", deep, "main.infra:2:"),
        ("ten_thousand_broken_blocks", broken, "main.infra:3:"),
    ];
    for (name, text, place) in cases {
        let env = TestEnv::new();
        env.write("main.infra", &text);
        let run = env.infra(&["plan", "-no-color"]);
        assert_eq!(run.code, 1, "{name}: expected exit 1\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked") && !run.stderr.contains("overflow"), "{name}:\n{}", run.stderr);
        assert!(run.stderr.contains(place), "{name}: expected the place {place} in:\n{}", run.stderr);
        assert!(run.stderr.len() < 4_000, "{name}: {} bytes of diagnostics", run.stderr.len());
        insta::assert_snapshot!(format!("huge_input_{name}"), env.stable(&run.stderr));
    }
}
