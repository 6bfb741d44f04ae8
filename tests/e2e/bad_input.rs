//! The bad-input corpus: every file under tests/data/bad-input is a broken
//! configuration whose first line names the diagnostic it must produce
//! (`# expect: infra::code`). Each must fail with exit 1, name that code,
//! match its snapshot, and leave state untouched.

use crate::support::TestEnv;

#[test]
fn every_case_reports_its_diagnostic() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-input");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "infra"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "the corpus shrank to {} cases", cases.len());
    for case in cases {
        let name = case.file_stem().expect("name").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&case).expect("read case");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `# expect: CODE`"))
            .trim()
            .to_string();
        let env = TestEnv::new();
        env.write("main.infra", &text);
        let run = env.infra(&["plan", "-no-color"]);
        assert_eq!(run.code, 1, "{name}: expected exit 1, got {}\n{}{}", run.code, run.stdout, run.stderr);
        assert!(run.stderr.contains(&expected), "{name}: expected {expected} in:\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name}: panic:\n{}", run.stderr);
        assert!(!env.exists("infra.state"), "{name}: a failed plan must not write state");
        insta::assert_snapshot!(format!("bad_input_{name}"), env.stable(&run.stderr));
    }
}
