//! Real compose files (docker/awesome-compose, `tests/corpus/`) converted:
//! each gives a configuration that parses and is already formatted, and two
//! of them are pinned in snapshots, report included.

use std::path::{Path, PathBuf};

fn corpus() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let dir = e.path();
            let file = ["compose.yaml", "compose.yml"].iter().map(|f| dir.join(f)).find(|f| f.is_file())?;
            Some((e.file_name().to_string_lossy().into_owned(), file))
        })
        .collect();
    files.sort();
    files
}

fn convert(name: &str, file: &Path) -> infra_compose::Conversion {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{name}: {e}"));
    infra_compose::convert(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_file_of_the_corpus_converts_to_formatted_text_that_parses() {
    let files = corpus();
    assert_eq!(files.len(), 39, "the corpus is all of awesome-compose's compose files");
    for (name, file) in &files {
        let conversion = convert(name, file);
        let parsed = infra_syntax::parse(infra_syntax::FileId(0), &conversion.text);
        assert!(parsed.is_ok(), "{name}: {:?}\n{}", parsed.err(), conversion.text);
        assert_eq!(infra_syntax::format::format(&conversion.text), conversion.text, "{name} is formatted");
        for note in &conversion.notes {
            assert!(conversion.text.contains(&format!("#   {}: ", note.place)), "{name}: the file names {note:?}");
        }
    }
}

#[test]
fn conversions_read_as_a_user_would_write_them() {
    for name in ["nginx-golang-postgres", "react-express-mysql", "wordpress-mysql"] {
        let file = corpus().into_iter().find(|(n, _)| n == name).map(|(_, f)| f).unwrap_or_default();
        let conversion = convert(name, &file);
        insta::assert_snapshot!(name, conversion.text);
    }
}

#[test]
fn anchors_merge_keys_and_variables_are_resolved() {
    let text = r#"
x-common: &common
  restart: unless-stopped
  environment:
    LOG_LEVEL: ${LOG_LEVEL:-info}
services:
  api:
    <<: *common
    image: "example/api:${TAG}"
    command: python3 -m http.server "8000"
    stop_signal: SIGINT
"#;
    let conversion = infra_compose::convert(text, "My App").unwrap_or_else(|e| panic!("{e}"));
    // Compared with white space runs as one space: the layout is `infra fmt`'s.
    let t = conversion.text.split_whitespace().collect::<Vec<_>>().join(" ");
    for wanted in [
        "variable \"project\" { type = string default = \"myapp\"",
        "restart = \"unless-stopped\"",
        "LOG_LEVEL = \"${var.LOG_LEVEL}\"",
        "variable \"LOG_LEVEL\" { type = string default = \"info\"",
        "variable \"TAG\" { type = string default = \"\"",
        "pull = \"example/api:${var.TAG}\"",
        "command = [\"python3\", \"-m\", \"http.server\", \"8000\"]",
    ] {
        assert!(t.contains(wanted), "{wanted} not in\n{}", conversion.text);
    }
    let places: Vec<&str> = conversion.notes.iter().map(|n| n.place.as_str()).collect();
    assert_eq!(places, ["services.api.stop_signal"]);
}

#[test]
fn a_dotenv_beside_the_file_is_named_with_the_variables_it_sets() {
    let conversion = infra_compose::convert("services:\n  db:\n    image: \"postgres:${PG}\"\n", "p")
        .unwrap_or_else(|e| panic!("{e}"));
    let note = conversion.dotenv_note("# settings\nPG=16\nUNUSED=1\n").map(|n| n.reason).unwrap_or_default();
    assert!(note.contains("give PG with -var"), "{note}");
    assert!(conversion.dotenv_note("UNUSED=1\n").is_none());
}

#[test]
fn a_file_without_services_is_refused_with_the_reason() {
    let error = infra_compose::convert("volumes:\n  data:\n", "p").err().map(|e| e.to_string());
    assert_eq!(error.as_deref(), Some("the compose file has no `services` section"));
    let error = infra_compose::convert("services: [\n", "p").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.starts_with("the compose file is not valid YAML"), "{error}");
}
