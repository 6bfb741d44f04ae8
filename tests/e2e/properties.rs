//! Plan and apply as properties, on configurations of the `local` provider that
//! proptest makes up: files with arbitrary text (quotes, `${`, newlines, Unicode),
//! modes, `count` and `for_each`, files built from other files, generated ids,
//! outputs. For each: apply succeeds, the next plan has no changes, what is on
//! disk is what was configured, and destroy leaves nothing.

use proptest::prelude::*;

use crate::support::TestEnv;

#[derive(Clone, Debug)]
struct File {
    content: String,
    mode: &'static str,
    copies: usize,
}

/// Text as a user might put in a file, written as an infra string literal.
fn literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    // Only `${` starts an interpolation; `$${` writes it literally.
    out.replace("${", "$${")
}

fn file() -> impl Strategy<Value = File> {
    let content = "[a-zA-Z0-9 \"'\\\\${}\\n#éß→ -]{0,40}";
    (content, prop::sample::select(vec!["0644", "0600", "0755"]), 0usize..3).prop_map(|(content, mode, copies)| File {
        content,
        mode,
        copies,
    })
}

fn configuration(files: &[File]) -> String {
    let mut config = String::from("random_id \"tag\" {\n  byte_length = 4\n}\n\n");
    for (i, f) in files.iter().enumerate() {
        config.push_str(&format!(
            "file \"f{i}\" {{\n  path    = \"out/f{i}\"\n  mode    = \"{}\"\n  content = {}\n}}\n\n",
            f.mode,
            literal(&f.content)
        ));
        if f.copies > 0 {
            // Copies built from the original: a dependency, and `count` over it.
            config.push_str(&format!(
                "file \"copy{i}\" {{\n  count   = {}\n  path    = \"out/copy{i}-${{count.index}}\"\n  content = \"${{file.f{i}.content}}#${{random_id.tag.hex}}\"\n}}\n\n",
                f.copies
            ));
        }
    }
    let names: Vec<String> = (0..files.len()).map(|i| format!("\"k{i}\"")).collect();
    config.push_str(&format!(
        "file \"each\" {{\n  for_each = toset([{}])\n  path     = \"out/each-${{each.key}}\"\n  content  = each.value\n}}\n\n",
        names.join(", ")
    ));
    config.push_str("output \"tag\" {\n  value = random_id.tag.hex\n}\n");
    config
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn apply_then_plan_has_no_changes(files in prop::collection::vec(file(), 1..5)) {
        let env = TestEnv::new();
        env.write("main.infra", &configuration(&files));
        let apply = env.infra(&["apply", "-auto-approve"]);
        prop_assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
        let plan = env.infra(&["plan", "-detailed-exitcode"]);
        prop_assert_eq!(plan.code, 0, "applied, yet the plan wants changes:\n{}{}", plan.stdout, plan.stderr);

        let tag = env.infra(&["output", "-raw", "tag"]).success().stdout;
        for (i, f) in files.iter().enumerate() {
            prop_assert_eq!(env.read(&format!("out/f{i}")), f.content.clone());
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(env.join(&format!("out/f{i}"))).expect("written").permissions(),
            );
            prop_assert_eq!(format!("{:04o}", mode & 0o7777), f.mode);
            for copy in 0..f.copies {
                prop_assert_eq!(env.read(&format!("out/copy{i}-{copy}")), format!("{}#{tag}", f.content));
            }
        }
        env.infra(&["destroy", "-auto-approve"]).success();
        let left = std::fs::read_dir(env.join("out")).map(|d| d.count()).unwrap_or(0);
        prop_assert_eq!(left, 0, "destroy removed every file");
    }
}
