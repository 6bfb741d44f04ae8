//! Saved plans: `infra apply FILE` applies exactly what was reviewed, and refuses
//! when state or configuration moved on.

use crate::support::TestEnv;

#[test]
fn applies_exactly_the_reviewed_plan() {
    let env = TestEnv::new();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"reviewed\"\n}\n");
    env.infra(&["plan", "-out", "plan.bin"]).success();
    let shown = env.infra(&["show", "plan.bin"]).success();
    assert!(shown.stdout.contains("# file.a will be created"), "{}", shown.stdout);
    env.infra(&["apply", "plan.bin"]).success();
    assert_eq!(env.read("a"), "reviewed");
}

#[test]
fn refuses_a_plan_made_against_older_state() {
    let env = TestEnv::new();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"1\"\n}\n");
    env.infra(&["plan", "-out", "old.bin"]).success();
    env.infra(&["apply", "-auto-approve"]).success();
    let run = env.infra(&["apply", "old.bin"]).failure();
    assert!(run.stderr.contains("the state was created since the plan was made"), "{}", run.stderr);
    env.infra(&["plan", "-out", "second.bin"]).success();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"2\"\n}\n");
    env.infra(&["apply", "-auto-approve"]).success();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"1\"\n}\n");
    let run = env.infra(&["apply", "second.bin"]).failure();
    assert!(run.stderr.contains("the state changed since the plan was made"), "{}", run.stderr);
    assert_eq!(env.read("a"), "2", "the stale plan changed nothing");
}

#[test]
fn refuses_a_plan_when_the_configuration_changed() {
    let env = TestEnv::new();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"1\"\n}\n");
    env.infra(&["plan", "-out", "plan.bin"]).success();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"2\"\n}\n");
    let run = env.infra(&["apply", "plan.bin"]).failure();
    assert!(run.stderr.contains("the configuration changed since the plan was made"), "{}", run.stderr);
    assert!(!env.exists("a"));
    env.write("plan.bin", "not a plan");
    let run = env.infra(&["apply", "plan.bin"]).failure();
    assert!(run.stderr.contains("not a saved plan"), "{}", run.stderr);
}
