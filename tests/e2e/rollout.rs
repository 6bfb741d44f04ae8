//! Zero-downtime updates on real Docker, with `examples/rolling-update`: three
//! replicas of a small web service behind HAProxy. While a bounded loop of
//! requests runs against the proxy's published 127.0.0.1 port, the image
//! changes, first rolled over one replica at a time, then blue-green; not one
//! request may fail. Then: a replica removed by hand comes back, scaling, an
//! apply killed in the middle of a rollout is finished by the next one, and
//! destroy leaves nothing labelled.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::TestEnv;
use crate::support::docker::{base_image, copy_dir, docker, free_port, labelled, remove_labelled};

/// The example, copied into a test directory, with this test's own names.
struct Stack {
    env: TestEnv,
    base: String,
    prefix: String,
    port: u16,
    lineage: Option<String>,
}

impl Stack {
    fn new() -> Stack {
        let env = TestEnv::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&root.join("examples/rolling-update"), env.path());
        let prefix = format!("rl-{}", env.docker_suffix());
        Stack { base: base_image(), prefix, port: free_port(), env, lineage: None }
    }

    /// An `infra` command with this stack's variables and the extra ones given.
    fn command(&self, args: &[&str], vars: &[&str]) -> Command {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let fixed = [
            format!("base_image={}", self.base),
            format!("prefix={}", self.prefix),
            format!("proxy_port={}", self.port),
        ];
        for v in fixed.iter().map(String::as_str).chain(vars.iter().copied()) {
            all.extend(["-var".to_string(), v.to_string()]);
        }
        self.env.command(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn infra(&self, args: &[&str], vars: &[&str]) -> crate::support::Run {
        self.command(args, vars).output().expect("run infra").into()
    }

    fn apply(&mut self, vars: &[&str]) -> crate::support::Run {
        let run = self.infra(&["apply", "-auto-approve"], vars);
        if self.lineage.is_none() && self.env.exists("infra.state") {
            let state: serde_json::Value = serde_json::from_str(&self.env.read("infra.state")).expect("state is JSON");
            self.lineage = state["lineage"].as_str().map(str::to_string);
        }
        run
    }

    /// The names of the app's containers, running or not.
    fn replicas(&self) -> Vec<String> {
        self.app_containers("{{.Names}}")
    }

    fn app_containers(&self, format: &str) -> Vec<String> {
        let address = "label=infra.address=container.app";
        let lineage = format!("label=infra.lineage={}", self.lineage.as_deref().unwrap_or("none"));
        let listed = docker(&["ps", "-a", "--filter", address, "--filter", &lineage, "--format", format]);
        let mut listed: Vec<String> = listed.lines().map(str::to_string).collect();
        listed.sort();
        listed
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(lineage) = &self.lineage {
            remove_labelled(lineage);
        }
    }
}

/// One request through the proxy: the body on a 200, else what went wrong.
pub(crate) fn request(port: u16) -> Result<String, String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("read: {e}"))?;
    let status = response.lines().next().unwrap_or_default().to_string();
    if !status.contains(" 200 ") {
        return Err(format!("answered {status:?}"));
    }
    Ok(response.rsplit("\r\n\r\n").next().unwrap_or_default().trim().to_string())
}

fn wait_for_version(port: u16, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match request(port) {
            Ok(body) if body.starts_with(&format!("version {version} ")) => return,
            other if Instant::now() > deadline => panic!("the proxy never answered version {version}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// What a load loop saw: the answers in order, and every failure.
#[derive(Default)]
pub(crate) struct Seen {
    pub answers: Vec<String>,
    pub failures: Vec<String>,
}

/// Requests one after another (10 ms apart) until stopped, at most 3 minutes
/// or 20 000 requests.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
}

impl Load {
    pub fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let started = Instant::now();
            while !flag.load(Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(180)
                && seen.answers.len() + seen.failures.len() < 20_000
            {
                match request(port) {
                    Ok(body) => seen.answers.push(body),
                    Err(e) => seen.failures.push(format!("after {:?}: {e}", started.elapsed())),
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        Load { stop, thread }
    }

    pub fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the load loop does not panic")
    }
}

/// Applies `vars` under load and checks that no request failed and that the
/// answers moved from `from` to `to`.
fn update_under_load(stack: &mut Stack, vars: &[&str], from: &str, to: &str) {
    let load = Load::start(stack.port);
    std::thread::sleep(Duration::from_millis(500));
    let apply = stack.apply(vars);
    std::thread::sleep(Duration::from_millis(500));
    let seen = load.finish();
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let total = seen.answers.len() + seen.failures.len();
    assert!(seen.failures.is_empty(), "{} of {total} requests failed: {:?}", seen.failures.len(), seen.failures);
    assert!(seen.answers.len() > 50, "the loop ran through the update: {} answers", seen.answers.len());
    let version = |v: &str| format!("version {v} ");
    assert!(seen.answers.first().is_some_and(|a| a.starts_with(&version(from))), "{:?}", seen.answers.first());
    assert!(seen.answers.last().is_some_and(|a| a.starts_with(&version(to))), "{:?}", seen.answers.last());
    println!("{vars:?}: {} requests, none failed", seen.answers.len());
}

#[test]
fn rolling_and_blue_green_updates_drop_no_request() {
    let mut stack = Stack::new();
    let apply = stack.apply(&["version=1"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(stack.replicas(), [1, 2, 3].map(|i| format!("{}-app-{i}", stack.prefix)));
    wait_for_version(stack.port, "1");

    // The plan says how the change reaches the replicas, and replaces nothing.
    let plan = stack.infra(&["plan", "-detailed-exitcode"], &["version=2"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("# container.app will be updated in place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("rolling update: 3 replicas replaced one at a time"), "{}", plan.stdout);

    update_under_load(&mut stack, &["version=2"], "1", "2");
    assert_eq!(stack.replicas().len(), 3, "no replica left over: {:?}", stack.replicas());

    let plan = stack.infra(&["plan"], &["version=3", "strategy=blue-green"]);
    assert!(plan.stdout.contains("blue-green update: 3 new replicas start"), "{}", plan.stdout);
    update_under_load(&mut stack, &["version=3", "strategy=blue-green"], "2", "3");
    assert_eq!(stack.replicas().len(), 3, "the old set is gone: {:?}", stack.replicas());
    let noop = stack.infra(&["plan", "-detailed-exitcode"], &["version=3", "strategy=blue-green"]);
    assert_eq!(noop.code, 0, "{}", noop.stdout);

    // A new replica that never gets healthy stops the rollout: the apply fails
    // with its logs, the old replicas keep serving, the next apply goes on.
    let broken = stack.apply(&["version=broken", "strategy=blue-green"]);
    assert_ne!(broken.code, 0, "{}", broken.stdout);
    assert!(broken.stderr.contains("did not become healthy"), "{}", broken.stderr);
    assert_eq!(stack.replicas().len(), 3, "only the old set is left: {:?}", stack.replicas());
    assert!(request(stack.port).is_ok_and(|b| b.starts_with("version 3 ")), "the old set still serves");

    // A replica removed by hand is drift, and apply puts it back.
    docker(&["rm", "-f", &format!("{}-app-2", stack.prefix)]);
    let drift = stack.infra(&["plan", "-detailed-exitcode"], &["version=3"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(drift.stdout.contains("replicas = 2 -> 3"), "{}", drift.stdout);
    stack.apply(&["version=3"]).success();
    assert_eq!(stack.replicas().len(), 3);

    // Scaling changes the count in place.
    let scale = stack.infra(&["plan"], &["version=3", "replicas=5"]);
    assert!(scale.stdout.contains("scaled from 3 to 5 replicas"), "{}", scale.stdout);
    stack.apply(&["version=3", "replicas=5"]).success();
    assert_eq!(stack.replicas().len(), 5);
    stack.apply(&["version=3", "replicas=2"]).success();
    assert_eq!(stack.replicas(), [1, 2].map(|i| format!("{}-app-{i}", stack.prefix)));

    // kill -9 in the middle of a rolling update: the next apply finishes it,
    // and no replica is duplicated or left behind.
    let before = stack.app_containers("{{.ID}}");
    let mut child = stack.command(&["apply", "-auto-approve"], &["version=4", "replicas=2"]).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && stack.app_containers("{{.ID}}").iter().all(|id| before.contains(id)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The first new replica exists; its old one is still there.
    let _ = child.kill();
    let _ = child.wait();
    println!("killed mid-rollout with replicas {:?}", stack.replicas());
    stack.apply(&["version=4", "replicas=2"]).success();
    assert_eq!(stack.replicas(), [1, 2].map(|i| format!("{}-app-{i}", stack.prefix)));
    for _ in 0..6 {
        assert!(request(stack.port).is_ok_and(|b| b.starts_with("version 4 ")), "every replica runs version 4");
    }
    let noop = stack.infra(&["plan", "-detailed-exitcode"], &["version=4", "replicas=2"]);
    assert_eq!(noop.code, 0, "{}", noop.stdout);

    stack.infra(&["destroy", "-auto-approve"], &["version=4"]).success();
    let lineage = stack.lineage.clone().expect("lineage");
    for list in [&["ps", "-a"][..], &["network", "ls"]] {
        assert_eq!(labelled(list, &lineage), Vec::<String>::new(), "left behind by destroy: docker {list:?}");
    }
}
