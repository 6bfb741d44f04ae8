//! State is sacred: locks, corrupt and newer files, backups, prevent_destroy,
//! and Ctrl-C in the middle of an apply.

use std::time::{Duration, Instant};

use crate::support::TestEnv;

const SLOW: &str = r#"
exec "slow" {
  count   = 4
  command = ["sleep", "1"]
}
"#;

/// Waits until a running apply holds the lock (the lock file names it).
fn wait_for_lock(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::fs::read_to_string(env.join("infra.state.lock")).is_ok_and(|t| t.contains("\"apply\"")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the first apply never took the lock");
}

#[test]
fn a_second_run_is_refused_with_the_holder_named() {
    let env = TestEnv::new();
    env.write("main.infra", SLOW);
    let mut first = env.command(&["apply", "-auto-approve", "-parallelism", "1"]).spawn().expect("spawn");
    wait_for_lock(&env);
    let second = env.infra(&["apply", "-auto-approve"]).failure();
    assert!(second.stderr.contains("state is locked by tester on"), "{}", second.stderr);
    assert!(second.stderr.contains("running `apply`"), "{}", second.stderr);
    assert!(second.stderr.contains("-lock-timeout"), "{}", second.stderr);
    assert!(first.wait().expect("wait").success());
    // With a timeout long enough, a waiting run gets the lock once it is free.
    env.infra(&["plan", "-lock-timeout", "5s"]).success();
}

#[test]
fn corrupt_and_newer_state_are_refused_and_left_untouched() {
    let env = TestEnv::new();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"x\"\n}\n");
    for (contents, message) in [
        ("{\"format_version\": 1, \"lineage\": ", "is corrupt"),
        ("{\"format_version\": 7, \"lineage\": \"l\", \"serial\": 1}", "has format version 7, newer"),
        ("", "is corrupt"),
    ] {
        env.write("infra.state", contents);
        let run = env.infra(&["apply", "-auto-approve"]).failure();
        assert!(run.stderr.contains(message), "{}", run.stderr);
        assert_eq!(env.read("infra.state"), contents, "state must not be overwritten");
        assert!(!env.exists("a"), "nothing may change");
    }
}

#[test]
fn state_is_private_and_backed_up() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"1\"\n}\n");
    env.infra(&["apply", "-auto-approve"]).success();
    let mode = std::fs::metadata(env.join("infra.state")).expect("state").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = env.read("infra.state");
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"2\"\n}\n");
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.read("infra.state.backup"), first, "the backup is the state from before the run");
}

#[test]
fn prevent_destroy_stops_the_plan() {
    let env = TestEnv::new();
    let config = "file \"db\" {\n  path    = \"db\"\n  content = \"data\"\n\n  lifecycle {\n    prevent_destroy = true\n  }\n}\n";
    env.write("main.infra", config);
    env.infra(&["apply", "-auto-approve"]).success();
    let run = env.infra(&["destroy", "-auto-approve"]).failure();
    assert!(run.stderr.contains("file.db has `prevent_destroy` set"), "{}", run.stderr);
    env.write("main.infra", &config.replace("path    = \"db\"", "path    = \"db2\""));
    env.infra(&["apply", "-auto-approve"]).failure();
    assert!(env.exists("db"), "the protected file is still there");
}

#[test]
fn ctrl_c_finishes_running_operations_and_saves() {
    let env = TestEnv::new();
    env.write("main.infra", SLOW);
    let mut child = env
        .command(&["apply", "-auto-approve", "-parallelism", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt once the first operation is running.
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Creating..."));
    assert!(started, "the apply never started an operation");
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let rest_of_stdout: Vec<String> = lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1), "an interrupted apply exits non-zero: {rest_of_stdout:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Interrupt received"), "{stderr}");
    assert!(stderr.contains("apply interrupted"), "{stderr}");
    let list = env.infra(&["state", "list"]).success();
    let done = list.stdout.lines().count();
    assert!((1..4).contains(&done), "the running operation finished and was saved, the rest did not start: {done}");
    let rest = env.infra(&["apply", "-auto-approve"]).success();
    assert!(rest.stdout.contains(&format!("{} added", 4 - done)), "{}", rest.stdout);
}
