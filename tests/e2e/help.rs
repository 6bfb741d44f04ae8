//! `--help` teaches: snapshots of the top-level help and the everyday commands.

use crate::support::TestEnv;

#[test]
fn help_text() {
    let env = TestEnv::new();
    for (name, args) in
        [("help", &["--help"][..]), ("help_plan", &["plan", "--help"]), ("help_apply", &["apply", "--help"])]
    {
        let run = env.infra(args).success();
        insta::assert_snapshot!(name, run.stdout);
    }
}

#[test]
fn unknown_commands_and_flags_fail_with_usage() {
    let env = TestEnv::new();
    let run = env.infra(&["aply"]);
    assert_eq!(run.code, 2, "clap's usage error");
    assert!(run.stderr.contains("similar subcommand exists: 'apply'"), "{}", run.stderr);
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"x\"\n}\n");
    let run = env.infra(&["plan", "-target", "file"]).failure();
    assert!(run.stderr.contains("invalid resource address \"file\""), "{}", run.stderr);
}

#[test]
fn no_configuration_is_a_clear_error() {
    let env = TestEnv::new();
    let run = env.infra(&["plan"]).failure();
    assert!(run.stderr.contains("no .infra files in"), "{}", run.stderr);
}
