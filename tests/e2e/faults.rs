//! Injected faults: the world failing under a running apply. A test server
//! frozen for a moment (the apply rides it out), a test server killed (the
//! apply ends naming it, state whole, and the next apply finishes once it is
//! back), the Docker daemon going away and coming back (through a proxy cut
//! for this machine's daemon; for real, a test server's own engine shut down
//! and started again). State-file faults (a
//! full disk, a read-only directory) are in state_safety.rs, throttling and
//! 5xx from the EC2 API in aws.rs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::ssh::{TestServer, key_pair};
use crate::support::TestEnv;
use crate::support::docker::{docker, free_port};

const FILES: usize = 16;

fn files_config(server: &TestServer, key: &std::path::Path, version: &str) -> String {
    format!(
        r#"{server}
file "f" {{
  count   = {FILES}
  server  = server.box
  path    = "/srv/fault/f-${{count.index}}"
  content = "${{join("", [for n in range(1500) : "{version} ${{count.index}} ${{n}}\n"])}}"
}}
"#,
        server = server.block("box", key)
    )
}

/// Waits until at least `n` of the files exist on the server.
fn wait_for_files(server: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.sh("ls /srv/fault 2>/dev/null | grep -c '^f-' || true").parse::<usize>().unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "the apply never wrote {n} files");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_converged(server: &TestServer, version: &str) {
    let names: BTreeSet<String> = server.sh("ls -A /srv/fault").lines().map(str::to_string).collect();
    let expected: BTreeSet<String> = (0..FILES).map(|i| format!("f-{i}")).collect();
    assert_eq!(names, expected, "exactly the configured files, no temporary leftovers");
    assert_eq!(server.sh("tail -n 1 /srv/fault/f-7"), format!("{version} 7 1499"));
}

#[test]
fn a_test_server_frozen_or_killed_mid_apply() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    // A fixed port, so the server comes back where the configuration says.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:22");
    let server = TestServer::run(&key, &["-p", &publish], &[]);
    env.write("main.infra", &files_config(&server, &key, "one"));

    // Frozen for three seconds: the connection waits, the apply finishes.
    let mut apply =
        env.command(&["apply", "-auto-approve"]).stdout(std::process::Stdio::null()).spawn().expect("spawn");
    wait_for_files(&server, 2);
    docker(&["pause", &server.id]);
    std::thread::sleep(Duration::from_secs(3));
    docker(&["unpause", &server.id]);
    assert!(apply.wait().expect("apply ends").success(), "a short freeze is ridden out");
    assert_converged(&server, "one");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);

    // Killed: the apply ends naming the server, and state holds what was done.
    env.write("main.infra", &files_config(&server, &key, "two"));
    let apply = env.command(&["apply", "-auto-approve", "-no-color"]).spawn_and_kill_server(&server);
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    let message = TestEnv::flat(&apply.stderr);
    assert!(message.contains(&format!("root@127.0.0.1:{port}")), "the server is named: {message}");
    assert!(message.contains("file.f["), "and the resources it stopped: {message}");
    assert_eq!(env.infra(&["state", "list"]).success().stdout.lines().count(), FILES + 1, "state is whole");

    docker(&["start", &server.id]);
    server.wait_for_sshd();
    env.infra(&["apply", "-auto-approve"]).success();
    assert_converged(&server, "two");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);
}

trait KillServerMidway {
    fn spawn_and_kill_server(&mut self, server: &TestServer) -> crate::support::Run;
}

impl KillServerMidway for std::process::Command {
    /// Runs the command, kills the server once a few files were rewritten, and
    /// returns how the command ended.
    fn spawn_and_kill_server(&mut self, server: &TestServer) -> crate::support::Run {
        // Output goes to files: a full pipe nobody reads would stall the apply.
        let dir = tempfile::tempdir().expect("tempdir");
        let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut child = self
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn");
        let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.sh("grep -l '^two ' /srv/fault/f-* 2>/dev/null | wc -l").parse::<usize>().unwrap_or(0) < 2 {
            if Instant::now() > deadline || child.try_wait().is_ok_and(|s| s.is_some()) {
                let _ = child.kill();
                panic!("the apply never rewrote a file:\n{}", read(&err));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        docker(&["kill", &server.id]);
        let started = Instant::now();
        let status = child.wait().expect("apply ends");
        println!("the apply ended {:?} after the server was killed", started.elapsed());
        crate::support::Run { code: status.code().unwrap_or(-1), stdout: read(&out), stderr: read(&err) }
    }
}

/// The Docker daemon as a `tcp://` host, through a proxy the test can take
/// down and bring back: from infra's side, the daemon restarting.
struct DaemonProxy {
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DaemonProxy {
    fn start(port: u16) -> DaemonProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy port");
        listener.set_nonblocking(true).expect("nonblocking");
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, open) = (running.clone(), connections.clone());
        let thread = std::thread::spawn(move || {
            while flag.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(daemon) = std::os::unix::net::UnixStream::connect("/var/run/docker.sock") else { continue };
                if let (Ok(kept), Ok(mut client_in), Ok(mut daemon_out)) =
                    (client.try_clone(), client.try_clone(), daemon.try_clone())
                {
                    open.lock().expect("connections").push(kept);
                    std::thread::spawn(move || std::io::copy(&mut client_in, &mut daemon_out));
                    let (mut daemon_in, mut client_out) = (daemon, client);
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut daemon_in, &mut client_out);
                        let _ = client_out.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        DaemonProxy { running, connections, thread: Some(thread) }
    }

    /// Refuses new connections and cuts every open one.
    fn stop(&mut self) {
        self.running.store(false, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        for connection in self.connections.lock().expect("connections").drain(..) {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for DaemonProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn the_docker_daemon_going_away_mid_apply_is_named_and_the_next_apply_finishes() {
    let env = TestEnv::new();
    let suffix = env.docker_suffix();
    let image = crate::support::docker::base_image();
    let port = free_port();
    let mut proxy = DaemonProxy::start(port);
    env.write(
        "main.infra",
        &format!(
            "provider \"docker\" {{\n  host = \"tcp://127.0.0.1:{port}\"\n}}\n\ncontainer \"c\" {{\n  count   = 12\n  name    = \"infra-fault-c${{count.index}}-{suffix}\"\n  image   = \"{image}\"\n  command = [\"sleep\", \"infinity\"]\n}}\n"
        ),
    );
    let name_filter = format!("name=infra-fault-c.*-{suffix}");
    let existing = || docker(&["ps", "-aq", "--filter", &name_filter]).lines().count();
    let (code, message) = apply_cut_off_midway(&env, existing, || proxy.stop());
    let lineage = env.lineage();
    let _cleanup = RemoveLabelled(lineage.clone());
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "the daemon is named: {message}");
    assert!(message.contains("container.c["), "and the resource: {message}");
    env.infra(&["state", "list"]).success();

    let _proxy = DaemonProxy::start(port);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);
    let labelled = crate::support::docker::labelled(&["ps", "-a"], &lineage);
    assert_eq!(labelled.len(), 12, "every container once, those made before the cut adopted");
    env.infra(&["destroy", "-auto-approve"]).success();
    assert!(crate::support::docker::labelled(&["ps", "-a"], &lineage).is_empty());
}

/// Runs an apply two operations at a time, cuts its Docker engine off with
/// `cut` once `created` counts three containers, and returns the apply's exit
/// code and its error output (on one line).
fn apply_cut_off_midway(env: &TestEnv, created: impl Fn() -> usize, cut: impl FnOnce()) -> (Option<i32>, String) {
    let mut apply = env
        .command(&["apply", "-auto-approve", "-parallelism", "2", "-no-color"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    while created() < 3 {
        assert!(Instant::now() < deadline, "the apply never created containers");
        std::thread::sleep(Duration::from_millis(20));
    }
    cut();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut apply.stderr.take().expect("stderr"), &mut stderr).expect("read");
    let status = apply.wait().expect("apply ends");
    (status.code(), TestEnv::flat(&stderr))
}

struct RemoveLabelled(String);

impl Drop for RemoveLabelled {
    fn drop(&mut self) {
        crate::support::docker::remove_labelled(&self.0);
    }
}

/// The real thing on an engine of its own: a docker-in-docker test server's
/// dockerd shut down mid-apply (this machine's engine runs the other tests, so
/// it is not the one stopped). Its containers stop with it, as on a host
/// where `systemctl restart docker` runs under an apply.
#[test]
fn a_docker_engine_shut_down_mid_apply_is_named_and_the_next_apply_puts_everything_back() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let host = crate::ssh::DockerHost::start(&key, &[]);
    host.import_tiny_image("restart");
    let engine = &host.server;
    // A healthcheck makes each container take a moment, so the stop lands mid-apply;
    // the trap lets a container stop at once when its engine shuts down.
    env.write(
        "main.infra",
        &format!(
            r#"{server}
provider "docker" {{
  ssh = server.engine
}}

container "c" {{
  count       = 12
  name        = "c${{count.index}}"
  image       = "tiny:1"
  command     = ["/bin/busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do /bin/busybox sleep 1; done"]
  healthcheck = {{ cmd = ["/bin/busybox", "true"], interval = "1s", retries = 3 }}
}}
"#,
            server = engine.block("engine", &key)
        ),
    );
    let containers = |filter: &str| engine.sh(&format!("docker ps -q {filter} | wc -l")).parse::<usize>().unwrap_or(0);
    let (code, message) =
        apply_cut_off_midway(&env, || containers("-a --filter label=infra.lineage"), || host.stop_engine());
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{}", engine.port)), "the server is named: {message}");
    assert!(message.contains("container.c["), "and the resource: {message}");
    assert!(
        message.contains(&format!("not attempted after root@127.0.0.1:{} stopped answering", engine.port)),
        "the rest is not tried against an engine that is gone: {message}"
    );
    assert!(message.matches("creating failed").count() <= 2, "only what was running fails: {message}");
    let recorded =
        env.infra(&["state", "list"]).success().stdout.lines().filter(|l| l.starts_with("container.")).count();
    assert!(recorded < 12, "the apply stopped partway ({recorded} recorded)");
    println!("engine stopped with {recorded} of 12 recorded: {message}");

    host.start_engine();
    let plan = env.infra(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(plan.code, 2, "containers stopped with the engine, and those never made, are changes: {}", plan.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "converged");
    let lineage = format!("label=infra.lineage={}", env.lineage());
    assert_eq!(containers(&format!("--filter {lineage}")), 12, "all twelve run again");
    assert_eq!(containers(&format!("-a --filter {lineage}")), 12, "none made twice");
    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(containers(&format!("-a --filter {lineage}")), 0, "destroy leaves nothing");
}
