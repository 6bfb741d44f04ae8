//! The `ssh` provider against real sshd test servers (containers of
//! scripts/server-image, SSH published on 127.0.0.1): files and directories
//! converged, hostile strings landing literally, drift repaired, host keys
//! checked, and a fleet where one unreachable server leaves the others done.

use std::process::Command;

use crate::support::TestEnv;
use crate::support::docker::docker;

/// A running test server; removed when dropped.
pub struct TestServer {
    pub id: String,
    pub port: u16,
}

/// The options that let a container run systemd as PID 1.
const SYSTEMD: [&str; 10] = [
    "--cap-add",
    "NET_ADMIN",
    "--cap-add",
    "SYS_ADMIN",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:ro",
];

impl TestServer {
    pub fn start(key: &std::path::Path) -> TestServer {
        TestServer::run(key, &[], &[])
    }

    /// With systemd as PID 1, for services and timers.
    pub fn start_with_systemd(key: &std::path::Path) -> TestServer {
        TestServer::start_with_systemd_and(key, &[])
    }

    /// With systemd and more `docker run` options (published ports, say).
    pub fn start_with_systemd_and(key: &std::path::Path, options: &[&str]) -> TestServer {
        let options = [&SYSTEMD[..], options].concat();
        let server = TestServer::run(key, &options, &["/sbin/init"]);
        server.after_boot();
        server
    }

    /// Waits for systemd and opens what Docker closes: after a start and after a restart.
    pub fn after_boot(&self) {
        self.wait_for_sshd();
        self.wait_for_boot();
        // Docker mounts /proc/sys read-only. The tests set only sysctls the
        // container's own network namespace holds (net.*), never the host's.
        self.sh("mount -o remount,rw /proc/sys");
    }

    pub fn run(key: &std::path::Path, options: &[&str], command: &[&str]) -> TestServer {
        TestServer::run_image(&server_image(""), key, options, command)
    }

    /// A container of `image`; SSH published on a free 127.0.0.1 port unless
    /// `options` publish port 22 themselves.
    pub fn run_image(image: &str, key: &std::path::Path, options: &[&str], command: &[&str]) -> TestServer {
        let mut args = vec!["run", "-d", "--label", "infra-e2e=ssh"];
        if !options.iter().any(|o| o.ends_with(":22")) {
            args.extend(["-p", "127.0.0.1::22"]);
        }
        args.extend(options);
        args.push(image);
        args.extend(command);
        let id = docker(&args);
        assert!(!id.is_empty(), "the test server started");
        let port = docker(&["port", &id, "22/tcp"]).lines().next().and_then(|l| l.rsplit(':').next()?.parse().ok());
        let server = TestServer { id, port: port.expect("a published port") };
        let public = std::fs::read(key.with_extension("pub")).expect("public key");
        let mut authorize = Command::new("docker")
            .args(["exec", "-i", &server.id, "sh", "-c", "cat > /root/.ssh/authorized_keys"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("docker exec");
        std::io::Write::write_all(&mut authorize.stdin.take().expect("stdin"), &public).expect("write key");
        assert!(authorize.wait().expect("docker exec").success());
        server.wait_for_sshd();
        server
    }

    /// The host port a container port is published on.
    pub fn published(&self, port: u16) -> u16 {
        let mapping = docker(&["port", &self.id, &format!("{port}/tcp")]);
        mapping.lines().next().and_then(|l| l.rsplit(':').next()?.parse().ok()).expect("a published port")
    }

    pub fn wait_for_sshd(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let mut banner = [0u8; 4];
            let ok = std::net::TcpStream::connect(("127.0.0.1", self.port))
                .and_then(|mut s| std::io::Read::read_exact(&mut s, &mut banner))
                .is_ok_and(|()| &banner == b"SSH-");
            if ok {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "sshd never answered on port {}", self.port);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Waits until systemd has started everything (apt and services race it before).
    fn wait_for_boot(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !matches!(self.sh("systemctl is-system-running 2>/dev/null").as_str(), "running" | "degraded") {
            assert!(std::time::Instant::now() < deadline, "systemd never finished booting");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    pub fn host_key(&self) -> String {
        let key = docker(&["exec", &self.id, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
        key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    pub fn sh(&self, script: &str) -> String {
        docker(&["exec", &self.id, "sh", "-c", script])
    }

    /// A `server` block for this server.
    pub fn block(&self, name: &str, key: &std::path::Path) -> String {
        format!(
            "server \"{name}\" {{\n  host        = \"127.0.0.1\"\n  port        = {}\n  private_key = \"{}\"\n  host_key    = \"{}\"\n}}\n",
            self.port,
            key.display(),
            self.host_key()
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).output();
    }
}

/// A server running its own Docker Engine (docker-in-docker, sshd as PID 1),
/// removed with the cgroups its engine made.
pub struct DockerHost {
    pub server: TestServer,
    parent: String,
}

impl DockerHost {
    pub fn start(key: &std::path::Path, options: &[&str]) -> DockerHost {
        let engine = [
            "--cap-add",
            "NET_ADMIN",
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        ];
        let server = TestServer::run_image(&server_image("docker"), key, &[&engine[..], options].concat(), &[]);
        let parent = format!("infra-e2e-{}", &server.id[..12]);
        let host = DockerHost { server, parent };
        host.start_engine();
        host
    }

    /// Starts the server's dockerd (again, after `stop_engine`) and waits until it answers.
    pub fn start_engine(&self) {
        docker(&[
            "exec",
            "-d",
            &self.server.id,
            "sh",
            "-c",
            &format!("dockerd --cgroup-parent=/{} >>/var/log/dockerd.log 2>&1", self.parent),
        ]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.server.sh("docker info >/dev/null 2>&1 && echo up") != "up" {
            assert!(
                std::time::Instant::now() < deadline,
                "dockerd never started: {}",
                self.server.sh("tail /var/log/dockerd.log")
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// Shuts the server's dockerd down as `systemctl stop docker` would
    /// (SIGTERM: running containers are stopped) and waits until it has exited.
    pub fn stop_engine(&self) {
        let stopped = self.server.sh("pid=$(cat /var/run/docker.pid) && kill \"$pid\" && \
             for _ in $(seq 600); do [ -d \"/proc/$pid\" ] || { echo stopped; break; }; sleep 0.1; done");
        assert_eq!(stopped, "stopped", "dockerd did not exit: {}", self.server.sh("tail /var/log/dockerd.log"));
    }

    /// A tiny image (`tiny:1`: busybox and a page saying `text`) in the server's own engine.
    pub fn import_tiny_image(&self, text: &str) {
        self.import_image("tiny:1", text, false);
    }

    /// An image `tag` of busybox with `/www/index.html` saying `text`, and
    /// `/www/health` when `healthy`.
    pub fn import_image(&self, tag: &str, text: &str, healthy: bool) {
        let health = if healthy { "&& echo ok > /r/www/health" } else { "" };
        self.server.sh(&format!(
            "rm -rf /r && mkdir -p /r/bin /r/www && cp /bin/busybox /r/bin/ && echo {text} > /r/www/index.html {health} \\
             && tar -C /r -c . | docker import - {tag} >/dev/null"
        ));
    }
}

impl Drop for DockerHost {
    fn drop(&mut self) {
        // Stopping the server ends every process of its engine (one PID
        // namespace); the cgroups it made on this machine stay until removed.
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.server.id]).output();
        let _ = std::process::Command::new("sh")
            .args(["-c", "find /sys/fs/cgroup -depth -type d -name \"$1\" -o -depth -type d -path \"*/$1/*\" | xargs -r rmdir 2>/dev/null", "sh", &self.parent])
            .output();
    }
}

/// The tag of a test server image (`""` or `"docker"`; built once).
pub fn server_image(variant: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/server-image");
    let out = Command::new("bash").arg(script).arg(variant).output().expect("server-image runs");
    assert!(out.status.success(), "building the server image failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh ed25519 key pair in the test directory.
pub fn key_pair(env: &TestEnv) -> std::path::PathBuf {
    let path = env.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "infra-e2e", "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs (openssh-client)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

const HOSTILE: &str = "'; rm -rf / #\n$(reboot)\n`id`\n\"quoted\" \\ $HOME\n";

#[test]
fn files_and_directories_converge_literally_and_drift_is_repaired() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start(&key);
    std::fs::write(env.join("blob.bin"), [0xff, 0xfe, 0x00, 0x80, b'\n', 0x00]).expect("write blob");
    let config = format!(
        r#"{server}
variable "hostile" {{
  type = string
}}

directory "app" {{
  server = server.box
  path   = "/srv/app it's here"
  mode   = "0750"
}}

file "motd" {{
  server  = server.box
  path    = "${{directory.app.path}}/$(touch pwned) `id`.txt"
  content = var.hostile
  mode    = "0600"
}}

file "blob" {{
  server = server.box
  path   = "/srv/blob.bin"
  source = "blob.bin"
}}

file "plain" {{
  server  = server.box
  path    = "/srv/plain.txt"
  content = "one\ntwo\n"
}}

# A local file beside the remote ones: the `server` attribute tells them apart.
file "note" {{
  path    = "note.txt"
  content = "local\n"
}}
"#,
        server = server.block("box", &key)
    );
    env.write("main.infra", &config);
    env.write("terraform.tfvars", "");
    let vars = format!("hostile={HOSTILE}");
    let plan = env.infra(&["plan", "-var", &vars]).success();
    assert!(plan.stdout.contains("Plan: 6 to add"), "{}", plan.stdout);
    let apply = env.infra(&["apply", "-auto-approve", "-var", &vars]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);

    let remote = "/srv/app it's here/$(touch pwned) `id`.txt";
    assert_eq!(
        server.sh(&format!("cat '{}'", remote.replace('\'', r"'\''"))) + "\n",
        HOSTILE,
        "content lands literally"
    );
    assert_eq!(server.sh("ls / /root | grep -c pwned || true"), "0", "nothing in the strings ran");
    assert_eq!(server.sh(&format!("stat -c %a '{}'", remote.replace('\'', r"'\''"))), "600");
    assert_eq!(server.sh("stat -c %a \"/srv/app it's here\""), "750");
    assert_eq!(server.sh("od -An -tx1 /srv/blob.bin | tr -d ' \\n'"), "fffe00800a00", "bytes land as they are");
    assert_eq!(env.read("note.txt"), "local\n");
    let noop = env.infra(&["plan", "-detailed-exitcode", "-var", &vars]);
    assert_eq!(noop.code, 0, "{}{}", noop.stdout, noop.stderr);

    // Changed by hand: content and mode drift, and apply puts them back.
    server.sh("echo tampered >> /srv/blob.bin; chmod 0666 /srv/blob.bin");
    let drift = env.infra(&["plan", "-detailed-exitcode", "-var", &vars]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(drift.stdout.contains("# file.blob has changed"), "{}", drift.stdout);
    assert!(drift.stdout.contains("mode") && drift.stdout.contains("content_sha256"), "{}", drift.stdout);
    assert!(!drift.stdout.contains("+ owner"), "what infra recorded is compared like with like: {}", drift.stdout);
    env.infra(&["apply", "-auto-approve", "-var", &vars]).success();
    assert_eq!(server.sh("od -An -tx1 /srv/blob.bin | tr -d ' \\n'"), "fffe00800a00");
    assert_eq!(server.sh("stat -c %a /srv/blob.bin"), "644");
    // A line added by hand shows as a line diff of the content.
    server.sh("echo three >> /srv/plain.txt");
    let drift = env.infra(&["plan", "-var", &vars]).success();
    let diff = drift.stdout.lines().map(str::trim).collect::<Vec<_>>();
    assert!(diff.contains(&"- three") && diff.contains(&"two"), "{}", drift.stdout);
    env.infra(&["apply", "-auto-approve", "-var", &vars]).success();
    assert_eq!(server.sh("cat /srv/plain.txt"), "one\ntwo");
    // Removed by hand: created again.
    server.sh("rm /srv/blob.bin");
    let gone = env.infra(&["plan", "-var", &vars]).success();
    assert!(gone.stdout.contains("# file.blob will be created"), "{}", gone.stdout);

    env.infra(&["destroy", "-auto-approve", "-var", &vars]).success();
    assert_eq!(server.sh("ls /srv"), "", "destroy removed what infra made");
}

/// A server whose user does not exist yet is reached as its bootstrap user
/// after a single refusal of the user: the keeper's try counts as the run's,
/// and the run does not ask for the user again (sshd logs each refusal).
#[test]
fn a_bootstrap_login_asks_for_the_missing_user_once() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start(&key);
    let block = server
        .block("box", &key)
        .replace("  host_key", "  user           = \"admin\"\n  bootstrap_user = \"root\"\n  host_key");
    env.write(
        "main.infra",
        &format!("{block}\nfile \"note\" {{\n  server  = server.box\n  path    = \"/srv/note\"\n  content = \"first\\n\"\n}}\n"),
    );
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(server.sh("cat /srv/note"), "first", "the bootstrap login did the work");
    assert!(kept_logins(&env).is_empty(), "a bootstrap login is not kept");
    let logs = Command::new("docker").args(["logs", &server.id]).output().expect("docker logs");
    let log = String::from_utf8_lossy(&logs.stderr);
    assert_eq!(log.matches("Invalid user admin").count(), 1, "the missing user was asked for once:\n{log}");
}

/// The keepers' sockets in a test environment's home.
fn kept_logins(env: &TestEnv) -> Vec<String> {
    let dir = env.join("home/.cache/infra/ssh");
    let entries = std::fs::read_dir(dir).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    entries.iter().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".sock")).collect()
}

#[test]
fn a_login_is_kept_between_runs_and_no_longer_than_its_server() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start(&key);
    env.write(
        "main.infra",
        &format!(
            "{}\nfile \"note\" {{\n  server  = server.box\n  path    = \"/srv/note\"\n  content = \"kept\\n\"\n}}\n",
            server.block("box", &key)
        ),
    );
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(kept_logins(&env).len(), 1, "the apply left its login to a keeper");

    // The kept connection dies on the server's side (its sshd session is
    // killed): the next run still works, through a login of its own or a new keeper.
    server.sh("pkill -f 'sshd: root' || true");
    let run = env.command(&["plan", "-detailed-exitcode"]).output().expect("run infra");
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));

    // The server stops accepting the key. A run within the idle time reads the
    // server through the kept login (and sees a drift); a run that keeps
    // nothing is refused, which shows the first did not log in.
    let _ = env.command(&["plan"]).output();
    server.sh("rm /root/.ssh/authorized_keys && echo changed > /srv/note");
    let run = env.command(&["plan", "-detailed-exitcode"]).output().expect("run infra");
    assert_eq!(run.status.code(), Some(2), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("file.note"), "{}", String::from_utf8_lossy(&run.stdout));
    let direct = env.command(&["plan"]).env("INFRA_SSH_PERSIST", "0").output().expect("run infra");
    assert_eq!(direct.status.code(), Some(1));
    let message = TestEnv::flat(&String::from_utf8_lossy(&direct.stderr));
    assert!(message.contains("authentication refused for user root"), "{message}");
    let invalid = env.command(&["plan"]).env("INFRA_SSH_PERSIST", "soon").output().expect("run infra");
    assert_eq!(invalid.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("INFRA_SSH_PERSIST"));

    // The server goes away: its keeper ends and takes its socket with it.
    drop(server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !kept_logins(&env).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the keeper outlived its server: {:?}", kept_logins(&env));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn host_keys_are_checked_and_errors_name_the_server() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let (one, two) = (TestServer::start(&key), TestServer::start(&key));
    // Server two's address with server one's key: someone in the middle.
    let pinned = one.host_key();
    env.write(
        "main.infra",
        &format!(
            "server \"box\" {{\n  host        = \"127.0.0.1\"\n  port        = {}\n  private_key = \"{}\"\n  host_key    = \"{pinned}\"\n}}\n",
            two.port,
            key.display()
        ),
    );
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    let message = TestEnv::flat(&run.stderr);
    assert!(message.contains(&format!("host key mismatch for root@127.0.0.1:{}", two.port)), "{message}");
    assert_eq!(message.matches("SHA256:").count(), 2, "both fingerprints are shown: {message}");
    assert_eq!(env.infra(&["state", "list"]).stdout, "", "nothing recorded");

    // No key pinned and none known: refused unless trust on first use is asked for.
    let unpinned = |extra: &str| {
        format!(
            "server \"box\" {{\n  host        = \"127.0.0.1\"\n  port        = {}\n  private_key = \"{}\"\n  known_hosts = \"{}\"\n{extra}}}\n",
            two.port,
            key.display(),
            env.join("known_hosts").display()
        )
    };
    env.write("known_hosts", "");
    env.write("main.infra", &unpinned(""));
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("trust_on_first_use"), "{}", run.stderr);
    env.write("main.infra", &unpinned("  trust_on_first_use = true\n"));
    env.infra(&["apply", "-auto-approve"]).success();
    let shown = env.infra(&["state", "show", "server.box"]).success().stdout;
    assert!(shown.contains(&two.host_key()), "the key seen first is recorded: {shown}");
    // The server's key changes: the recorded key no longer matches.
    two.sh("rm /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; kill -HUP 1");
    two.wait_for_sshd();
    let run = env.infra(&["plan"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("host key mismatch"), "{}", run.stderr);

    // Unreachable and refused logins are named too.
    env.write(
        "main.infra",
        &format!(
            "server \"box\" {{\n  host        = \"127.0.0.1\"\n  port        = {}\n  user        = \"nobody\"\n  private_key = \"{}\"\n  host_key    = \"{}\"\n}}\n",
            one.port,
            key.display(),
            one.host_key()
        ),
    );
    env.infra(&["state", "rm", "server.box"]).success();
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("authentication refused for user nobody"), "{}", run.stderr);
}

#[test]
fn one_unreachable_server_leaves_the_rest_of_the_fleet_converged() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let fleet: Vec<TestServer> = (0..4).map(|_| TestServer::start(&key)).collect();
    let closed = crate::support::docker::free_port();
    let mut config = String::new();
    for (i, server) in fleet.iter().enumerate() {
        config.push_str(&server.block(&format!("s{i}"), &key));
        config.push_str(&format!(
            "file \"f{i}\" {{\n  server  = server.s{i}\n  path    = \"/etc/infra-fleet\"\n  content = \"node {i}\\n\"\n}}\n"
        ));
    }
    config.push_str(&format!(
        "server \"down\" {{\n  host        = \"127.0.0.1\"\n  port        = {closed}\n  private_key = \"{}\"\n  trust_on_first_use = true\n}}\nfile \"down\" {{\n  server  = server.down\n  path    = \"/etc/infra-fleet\"\n  content = \"never\\n\"\n}}\n",
        key.display()
    ));
    env.write("main.infra", &config);
    let run = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let message = TestEnv::flat(&run.stderr);
    assert!(message.contains(&format!("root@127.0.0.1:{closed} is unreachable")), "{message}");
    for (i, server) in fleet.iter().enumerate() {
        assert_eq!(server.sh("cat /etc/infra-fleet"), format!("node {i}"), "server {i} converged");
    }
    let listed = env.infra(&["state", "list"]).success().stdout;
    assert_eq!(listed.lines().count(), 8, "four servers and their files recorded: {listed}");
    let recap: Vec<&str> = run.stdout.lines().skip_while(|l| *l != "By machine:").skip(1).collect();
    assert_eq!(recap.len(), 5, "one recap line per server: {}", run.stdout);
    for server in &fleet {
        let line = format!("root@127.0.0.1:{}", server.port);
        assert!(recap.iter().any(|l| l.contains(&line) && l.ends_with("2 done")), "{line} converged: {recap:?}");
    }
    let down = format!("root@127.0.0.1:{closed}");
    assert!(
        recap.iter().any(|l| l.contains(&down)
            && l.contains("0 done, 1 failed, 1 not attempted")
            && l.contains("is unreachable")),
        "the unreachable server is summed up: {recap:?}"
    );
}

#[test]
fn users_groups_keys_and_packages_converge_and_drift_back() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start(&key);
    let alice_key = env.join("alice_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@e2e", "-f"])
        .arg(&alice_key)
        .output()
        .expect("ssh-keygen");
    assert!(made.status.success());
    let alice_public = std::fs::read_to_string(alice_key.with_extension("pub")).expect("public key");
    let config = format!(
        r#"{server}
group "ops" {{
  server = server.box
  name   = "ops"
  gid    = 2500
}}

user "alice" {{
  server = server.box
  name   = "alice"
  groups = [group.ops.name]
  shell  = "/bin/sh"
}}

authorized_key "alice" {{
  server = server.box
  user   = user.alice.name
  key    = "{public}"
}}

# A second key for alice, removed by hand below.
authorized_key "extra" {{
  server = server.box
  user   = user.alice.name
  key    = "{extra}"
}}

package "tools" {{
  server = server.box
  names  = ["jq"]
}}

# Logging in as alice with her key proves the key landed where sshd looks.
server "as_alice" {{
  host        = "127.0.0.1"
  port        = {port}
  user        = "alice"
  private_key = "{alice}"
  host_key    = server.box.host_key
  depends_on  = [authorized_key.alice]
}}

file "hello" {{
  server  = server.as_alice
  path    = "/home/alice/hello"
  content = "hi\n"
}}
"#,
        server = server.block("box", &key),
        public = alice_public.trim(),
        port = server.port,
        alice = alice_key.display(),
        extra = std::fs::read_to_string(key.with_extension("pub")).expect("public key").trim(),
    );
    env.write("main.infra", &config);
    let apply = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(server.sh("getent group ops | cut -d: -f3"), "2500");
    assert_eq!(server.sh("id -nG alice"), "alice ops");
    assert_eq!(server.sh("getent passwd alice | cut -d: -f7"), "/bin/sh");
    assert_eq!(server.sh("stat -c '%U %a' /home/alice/hello"), "alice 644", "written as alice");
    assert!(server.sh("jq --version").starts_with("jq-"), "jq is installed");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "no-op");

    // Undone by hand: shows in the plan, and apply does it again, even with dpkg
    // left "interrupted" (as a killed apt run leaves it).
    server.sh("gpasswd -d alice ops >/dev/null; apt-get -q -y remove jq >/dev/null 2>&1; sed -i /infra-e2e/d /home/alice/.ssh/authorized_keys");
    server.sh("touch /var/lib/dpkg/updates/0001");
    let drift = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    for changed in
        ["# user.alice will be updated", "# package.tools will be updated", "# authorized_key.extra will be created"]
    {
        assert!(drift.stdout.contains(changed), "{changed}: {}", drift.stdout);
    }
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(server.sh("id -nG alice"), "alice ops");
    assert!(server.sh("jq --version").starts_with("jq-"));
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);

    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(server.sh("getent passwd alice; getent group ops"), "", "user and group removed");
    assert_eq!(server.sh("test -d /home/alice && echo kept"), "kept", "the home directory is kept");
}

#[test]
fn services_restart_when_their_config_changes_and_sysctls_persist() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start_with_systemd(&key);
    let config = |options: &str| {
        format!(
            r#"{server}
file "cron_defaults" {{
  server  = server.box
  path    = "/etc/default/cron"
  content = "EXTRA_OPTS=\"{options}\"\n"
}}

service "cron" {{
  server     = server.box
  name       = "cron"
  restart_on = [file.cron_defaults.content_sha256]
}}

sysctl "forwarding" {{
  server = server.box
  name   = "net.ipv4.ip_forward"
  value  = "1"
}}

timer "stamp" {{
  server      = server.box
  name        = "infra-stamp"
  command     = ["/usr/bin/touch", "/tmp/stamp $(date) %h"]
  on_calendar = "*-*-* 03:00"
}}
"#,
            server = server.block("box", &key)
        )
    };
    env.write("main.infra", &config("-L 1"));
    let apply = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(server.sh("systemctl is-active cron; systemctl is-enabled cron"), "active\nenabled");
    assert_eq!(server.sh("sysctl -n net.ipv4.ip_forward"), "1");
    assert!(server.sh("cat /etc/sysctl.d/60-infra-net.ipv4.ip_forward.conf").contains("= 1"), "kept for the next boot");
    assert_eq!(
        server.sh("systemctl is-enabled infra-stamp.timer; systemctl is-active infra-stamp.timer"),
        "enabled\nactive"
    );
    server.sh("systemctl start infra-stamp.service");
    assert_eq!(server.sh("ls /tmp | grep stamp"), "stamp $(date) %h", "the timer's command ran, its argv literal");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);

    // Stopped and changed by hand: drift, put back by apply.
    server.sh("systemctl stop cron; systemctl disable --quiet cron; sysctl -q -w net.ipv4.ip_forward=0; sed -i s/03:00/04:00/ /etc/systemd/system/infra-stamp.timer");
    let drift = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(drift.stdout.contains("# service.cron will be updated"), "{}", drift.stdout);
    assert!(drift.stdout.contains("# sysctl.forwarding will be updated"), "{}", drift.stdout);
    assert!(drift.stdout.contains("# timer.stamp will be updated"), "{}", drift.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(
        server.sh("systemctl is-active cron; systemctl is-enabled cron; sysctl -n net.ipv4.ip_forward"),
        "active\nenabled\n1"
    );
    assert!(server.sh("cat /etc/systemd/system/infra-stamp.timer").contains("03:00"), "the schedule is back");

    // A change to the file it depends on restarts it.
    let pid = server.sh("systemctl show -p MainPID --value cron");
    env.write("main.infra", &config("-L 2"));
    let plan = env.infra(&["plan"]).success();
    assert!(plan.stdout.contains("# service.cron will be updated"), "{}", plan.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_ne!(server.sh("systemctl show -p MainPID --value cron"), pid, "cron was restarted");

    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(server.sh("ls /etc/sysctl.d | grep -c infra || true"), "0", "the sysctl file is gone");
    assert_eq!(server.sh("ls /etc/systemd/system | grep -c infra-stamp || true"), "0", "the timer units are gone");
    assert_eq!(server.sh("systemctl is-active cron"), "active", "forgetting a service does not stop it");
}

#[test]
fn sshd_settings_are_checked_and_never_lock_infra_out() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start(&key);
    let config = |settings: &str| {
        format!(
            "{}\nsshd \"hardening\" {{\n  server   = server.box\n  settings = {{ {settings} }}\n}}\n",
            server.block("box", &key)
        )
    };
    env.write("main.infra", &config("PasswordAuthentication = \"no\", MaxAuthTries = \"3\""));
    let apply = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(
        server.sh("sshd -T | grep -E '^(maxauthtries|passwordauthentication) '"),
        "maxauthtries 3\npasswordauthentication no"
    );
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);

    // A value sshd -t refuses: the apply fails and the running settings stay.
    env.write("main.infra", &config("PasswordAuthentication = \"no\", MaxAuthTries = \"lots\""));
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("sshd -t refused the new settings"), "{}", run.stderr);
    assert!(server.sh("sshd -T").contains("maxauthtries 3"), "the previous settings stay");

    // Settings that would lock infra out are rolled back after a failed login test.
    env.write("main.infra", &config("PasswordAuthentication = \"no\", AllowUsers = \"nobody\""));
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("could not log in again"), "{}", run.stderr);
    assert!(server.sh("sshd -T").contains("maxauthtries 3"), "the previous settings are back");
    env.write("main.infra", &config("PasswordAuthentication = \"no\", MaxAuthTries = \"3\""));
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "infra still gets in, nothing to do");

    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(server.sh("ls /etc/ssh/sshd_config.d"), "", "the drop-in is gone");
}

#[test]
fn a_server_behind_a_jump_host_is_reached_through_it() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let network = format!("infra-e2e-jump-{}", env.docker_suffix());
    docker(&["network", "create", "--label", "infra-e2e=ssh", &network]);
    struct Network(String);
    impl Drop for Network {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["network", "rm", &self.0]).output();
        }
    }
    let _network = Network(network.clone());
    let inner_name = format!("{network}-inner");
    let bastion = TestServer::run(&key, &["--network", &network], &[]);
    let inner = TestServer::run(&key, &["--network", &network, "--name", &inner_name], &[]);
    // The inner server's name resolves only inside the network: from here it
    // can be reached through the bastion and no other way.
    env.write(
        "main.infra",
        &format!(
            r#"{bastion}
server "inner" {{
  host        = "{inner_name}"
  private_key = "{key}"
  host_key    = "{inner_key}"
  jump        = server.bastion
}}

file "motd" {{
  server  = server.inner
  path    = "/etc/motd"
  content = "behind the bastion\n"
}}
"#,
            bastion = bastion.block("bastion", &key),
            key = key.display(),
            inner_key = inner.host_key(),
        ),
    );
    let apply = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(inner.sh("cat /etc/motd"), "behind the bastion");
    let shown = env.infra(&["state", "show", "server.inner"]).success().stdout;
    assert!(shown.contains(&format!("hostname           = \"{}\"", &inner.id[..12])), "{shown}");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);
}

/// ssh-audit's findings on a server: (algorithm, failures, warnings).
fn ssh_audit(port: u16) -> Vec<(String, Vec<String>, Vec<String>)> {
    let out = Command::new("ssh-audit")
        .args(["-j", "-p", &port.to_string(), "127.0.0.1"])
        .output()
        .expect("ssh-audit runs (scripts/test installs it from PyPI)");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ssh-audit answered JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    let notes = |a: &serde_json::Value, kind: &str| -> Vec<String> {
        a["notes"][kind].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string)).collect()
    };
    ["kex", "key", "enc", "mac"]
        .iter()
        .flat_map(|section| report[*section].as_array().cloned().unwrap_or_default())
        .map(|a| (a["algorithm"].as_str().unwrap_or_default().to_string(), notes(&a, "fail"), notes(&a, "warn")))
        .collect()
}

#[test]
fn the_hardened_server_module_passes_lynis_and_ssh_audit_and_infra_still_gets_in() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start_with_systemd(&key);
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/hardened-server");
    env.write(
        "main.infra",
        &format!(
            r#"server "box" {{
  host           = "127.0.0.1"
  port           = {port}
  user           = "admin"
  bootstrap_user = "root"
  sudo           = true
  private_key    = "{key}"
  host_key       = "{host_key}"
}}

module "hardening" {{
  source      = "{module}"
  server      = server.box
  admin_keys  = [file("{key}.pub")]
  host_kernel = false # a container: kernel-wide settings belong to the host
  firewall    = FIREWALL
}}
"#,
            port = server.port,
            key = key.display(),
            host_key = server.host_key(),
            module = module.display(),
        )
        .replace("FIREWALL", "false"),
    );
    let plan = env.infra(&["plan"]).success();
    for change in ["# module.hardening.sshd.hardening will be created", "# module.hardening.user.admin will be created"]
    {
        assert!(plan.stdout.contains(change), "the plan shows every change: {change}\n{}", plan.stdout);
    }
    let apply = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let noop = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(
        noop.code, 0,
        "infra still logs in (as admin) and nothing is left to do: {}{}",
        noop.stdout, noop.stderr
    );
    assert_eq!(
        server.sh("sshd -T | grep -E '^(permitrootlogin|passwordauthentication) '"),
        "permitrootlogin no\npasswordauthentication no"
    );

    // ssh-audit: no failure, and no warning but the post-quantum note on curve25519.
    let findings = ssh_audit(server.port);
    assert!(!findings.is_empty(), "ssh-audit saw algorithms");
    for (algorithm, fails, warns) in &findings {
        assert!(fails.is_empty(), "ssh-audit fails {algorithm}: {fails:?}");
        let only_post_quantum = warns.iter().all(|w| w.contains("post-quantum")) && algorithm.starts_with("curve25519");
        assert!(warns.is_empty() || only_post_quantum, "ssh-audit warns about {algorithm}: {warns:?}");
    }

    // Lynis, from Debian, run on the server: without the module's firewall, then with it.
    server.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lynis >/dev/null 2>&1");
    // (the index, whether Lynis calls the nftables rule set empty)
    let lynis = || -> (u32, bool) {
        server.sh("lynis audit system --quick --no-colors >/dev/null 2>&1");
        let index = server
            .sh("grep '^hardening_index=' /var/log/lynis-report.dat | cut -d= -f2")
            .parse()
            .expect("lynis reports a hardening index");
        (index, server.sh("grep -c '^firewall_empty_ruleset=1' /var/log/lynis-report.dat || true") == "1")
    };
    let (without, empty_before) = lynis();
    let config = env.read("main.infra").replace("firewall    = false", "firewall    = true");
    env.write("main.infra", &config);
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(server.sh("nft list table inet infra").contains("policy drop"), "the firewall is on");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "infra still logs in through the firewall");
    let (index, empty_after) = lynis();
    println!("Lynis hardening index after the module: {without} without its firewall, {index} with it");
    assert!(empty_before && !empty_after, "Lynis sees the rule set (FIRE-4540): empty before, not after");
    assert!(index >= 80, "Lynis hardening index {index} is below 80");

    // A file of the module changed by hand is drift, and apply restores it.
    server.sh("sed -i 's/^UMASK.*/UMASK 022/' /etc/login.defs");
    let drift = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(drift.stdout.contains("+ UMASK           027") || drift.stdout.contains("UMASK 022"), "{}", drift.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(server.sh("grep ^UMASK /etc/login.defs").ends_with("027"));
}

#[test]
fn sudo_without_rights_is_named_and_nothing_is_recorded() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let server = TestServer::start(&key);
    // bob may log in with the test key but has no sudo rights.
    server.sh("useradd -m bob && mkdir -p /home/bob/.ssh && cp /root/.ssh/authorized_keys /home/bob/.ssh/ && chown -R bob:bob /home/bob/.ssh");
    env.write(
        "main.infra",
        &format!(
            "server \"box\" {{\n  host        = \"127.0.0.1\"\n  port        = {}\n  user        = \"bob\"\n  sudo        = true\n  private_key = \"{}\"\n  host_key    = \"{}\"\n}}\n\nfile \"motd\" {{\n  server  = server.box\n  path    = \"/etc/motd\"\n  content = \"hi\\n\"\n}}\n",
            server.port,
            key.display(),
            server.host_key()
        ),
    );
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    let message = TestEnv::flat(&run.stderr);
    assert!(message.contains("sudo refused"), "{message}");
    assert!(message.contains("NOPASSWD"), "the message says what is needed: {message}");
    assert_eq!(env.infra(&["state", "list"]).stdout, "", "nothing half-done is recorded");
}

#[test]
fn a_docker_engine_on_a_server_is_driven_over_its_ssh_connection() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    // The server's own engine, not this machine's: nothing but the SSH forward reaches it.
    let host = DockerHost::start(&key, &[]);
    host.import_tiny_image("remote");
    let engine = &host.server;
    let suffix = env.docker_suffix();
    env.write("site/Dockerfile", "FROM tiny:1\nCOPY page.html /www/page.html\n");
    env.write("site/page.html", "built over ssh\n");
    let config = format!(
        r#"{server}
provider "docker" {{
  alias = "web"
  ssh   = server.engine
}}

image "site" {{
  provider = docker.web
  name     = "site"
  context  = "site"
}}

network "app" {{
  provider = docker.web
  name     = "app-{suffix}"
}}

container "app" {{
  provider = docker.web
  name     = "app-{suffix}"
  image    = image.site.tag
  command  = ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
  networks = [network.app.name]
}}
"#,
        server = engine.block("engine", &key)
    );
    env.write("main.infra", &config);
    let apply = env.infra(&["apply", "-auto-approve"]).success();
    assert!(apply.stdout.contains("4 added"), "{}", apply.stdout);
    let location = format!("root@127.0.0.1:{}", engine.port);
    assert!(
        apply.stdout.lines().any(|l| l.trim_start().starts_with(&location) && l.ends_with("4 done")),
        "the recap names the server: {}",
        apply.stdout
    );
    let name = format!("app-{suffix}");
    let inspect = engine.sh(&format!(
        "docker inspect -f '{{{{.State.Running}}}} {{{{index .Config.Labels \"infra.address\"}}}}' {name}"
    ));
    assert_eq!(inspect, "true container.app", "the container runs on the server's engine");
    assert_eq!(docker(&["ps", "-aq", "--filter", &format!("name={name}")]), "", "and not on this machine's");
    let page = engine.sh(&format!("docker exec {name} /bin/busybox wget -qO- http://127.0.0.1/page.html"));
    assert_eq!(page, "built over ssh", "the image was built from the context sent through the forward");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "no changes after apply");

    engine.sh(&format!("docker rm -f {name}"));
    let plan = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 2, "a container removed on the server is drift: {}", plan.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(engine.sh(&format!("docker inspect -f '{{{{.State.Running}}}}' {name}")), "true");

    env.infra(&["destroy", "-auto-approve"]).success();
    let left =
        engine.sh("docker ps -aq --filter label=infra.lineage; docker network ls -q --filter label=infra.lineage");
    assert_eq!(left, "", "destroy leaves nothing of infra's on the server's engine");
}

#[test]
fn a_server_without_a_reachable_engine_is_named_and_nothing_is_recorded() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let bare = TestServer::start(&key);
    let suffix = env.docker_suffix();
    env.write(
        "main.infra",
        &format!(
            "{}\nprovider \"docker\" {{\n  ssh = server.bare\n}}\n\nvolume \"data\" {{\n  name = \"infra-e2e-data-{suffix}\"\n}}\n",
            bare.block("bare", &key)
        ),
    );
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    let message = TestEnv::flat(&run.stderr);
    assert!(
        message.contains(&format!(
            "root@127.0.0.1:{}: the server would not connect infra to its socket /var/run/docker.sock",
            bare.port
        )),
        "{message}"
    );
    let listed = env.infra(&["state", "list"]).success().stdout;
    assert_eq!(listed.trim(), "server.bare", "the volume was not recorded");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &format!("name=infra-e2e-data-{suffix}")]), "");
}
