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

/// `abandon_on_destroy`: destroy forgets the resource and leaves the object,
/// for what a machine is managed through (its admin account, its sudo rule).
#[test]
fn abandon_on_destroy_forgets_instead_of_deleting() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        "file \"sudoers\" {\n  path    = \"sudoers\"\n  content = \"admin ALL=(ALL) NOPASSWD:ALL\\n\"\n\n  lifecycle {\n    abandon_on_destroy = true\n  }\n}\n\nfile \"motd\" {\n  path    = \"motd\"\n  content = \"hello\"\n}\n",
    );
    env.infra(&["apply", "-auto-approve"]).success();
    let plan = env.infra(&["plan", "-destroy", "-no-color"]).success();
    assert!(plan.stdout.contains("# file.sudoers will be forgotten (the object stays)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# file.motd will be destroyed"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to add, 0 to change, 1 to destroy, 1 to forget."), "{}", plan.stdout);
    let destroyed = env.infra(&["destroy", "-auto-approve", "-no-color"]).success();
    assert!(destroyed.stdout.contains("1 destroyed, 1 forgotten (left in place)"), "{}", destroyed.stdout);
    assert!(env.exists("sudoers"), "the abandoned object stays");
    assert!(!env.exists("motd"));
    assert_eq!(env.infra(&["state", "list"]).success().stdout, "");
}

/// A small tmpfs mounted for one test: the place to run out of space or turn
/// read-only. Unmounted when dropped (before the test directory goes).
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("mount runs");
        assert!(
            mounted.status.success(),
            "these tests mount a small tmpfs (root, as in CI): {}",
            String::from_utf8_lossy(&mounted.stderr)
        );
        SmallDisk { path }
    }

    fn remount(&self, options: &str) {
        let done = std::process::Command::new("mount").args(["-o", options]).arg(&self.path).status();
        assert!(done.is_ok_and(|s| s.success()), "remount {options}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn many_files(count: usize) -> String {
    format!(
        "file \"item\" {{\n  count   = {count}\n  path    = \"out/item-${{count.index}}\"\n  content = \"${{count.index}}\\n\"\n}}\n"
    )
}

#[test]
fn a_full_disk_while_writing_state_stops_the_apply_with_state_whole() {
    let env = TestEnv::new();
    let disk = SmallDisk::mount(env.join("statefs"), "1m");
    env.write("main.infra", &many_files(300));
    let state = ["-state", "statefs/infra.state"];
    // Leave room for the first snapshot and a few journal lines, not for 300.
    let filler = std::process::Command::new("sh")
        .arg("-c")
        .arg("head -c 1000000 /dev/zero > statefs/filler 2>/dev/null; true")
        .current_dir(env.path())
        .status();
    assert!(filler.is_ok());
    let free = std::fs::metadata(env.join("statefs/filler")).map(|m| 1_048_576 - m.len()).unwrap_or(0);
    println!("{free} bytes left for state");

    let full = env.infra(&[&["apply", "-auto-approve"][..], &state].concat()).failure();
    let message = TestEnv::flat(&full.stderr);
    assert!(message.contains("No space left on device"), "{message}");
    // miette may wrap the path at its slash.
    let joined: String = message.split_whitespace().collect();
    assert!(joined.contains("statefs/infra.state"), "the error names the state file: {message}");
    assert!(message.contains("changed but could not be recorded"), "and what it could not record: {message}");
    assert!(message.contains("file.item["), "naming the resources: {message}");
    let listed = env.infra(&[&["state", "list"][..], &state].concat()).success();
    let recorded = listed.stdout.lines().count();
    assert!(recorded < 300, "the apply stopped when state could not be written ({recorded} recorded)");

    std::fs::remove_file(env.join("statefs/filler")).expect("free the space");
    env.infra(&[&["apply", "-auto-approve"][..], &state].concat()).success();
    let plan = env.infra(&[&["plan", "-detailed-exitcode"][..], &state].concat());
    assert_eq!(plan.code, 0, "converged once there is room: {}", plan.stdout);
    assert_eq!(env.infra(&[&["state", "list"][..], &state].concat()).stdout.lines().count(), 300);
    drop(disk);
}

#[test]
fn a_read_only_state_directory_is_named_and_nothing_changes() {
    let env = TestEnv::new();
    let disk = SmallDisk::mount(env.join("statefs"), "4m");
    let state = ["-state", "statefs/infra.state"];
    env.write("main.infra", &many_files(3));
    env.infra(&[&["apply", "-auto-approve"][..], &state].concat()).success();
    let before = std::fs::read(env.join("statefs/infra.state")).expect("state");

    env.write("main.infra", &many_files(5));
    disk.remount("remount,ro");
    let refused = env.infra(&[&["apply", "-auto-approve"][..], &state].concat()).failure();
    let message = TestEnv::flat(&refused.stderr);
    assert!(message.contains("Read-only file system"), "{message}");
    assert!(message.contains("statefs/infra.state"), "the error names the state file: {message}");
    assert!(!env.exists("out/item-3"), "nothing was created that state could not record");
    assert_eq!(std::fs::read(env.join("statefs/infra.state")).expect("state"), before);

    disk.remount("remount,rw");
    env.infra(&[&["apply", "-auto-approve"][..], &state].concat()).success();
    assert!(env.exists("out/item-4"));
    drop(disk);
}
