//! The `docker` provider against the real Docker Engine: labels on everything,
//! no-op plans, drift (a container removed or stopped outside infra) repaired,
//! and destroy leaving nothing with this state's lineage. Images come from
//! `scripts/base-image` (no registry is reachable); everything created here is
//! named with a per-test suffix and removed at the end, even on failure.

use std::process::Command;

use crate::support::TestEnv;
use crate::support::docker::{base_image, docker, remove_labelled};

/// A test directory, a suffix for the names of everything the test creates
/// (unique per test, valid in Docker names), and the guard that removes it all.
fn isolated() -> (TestEnv, String, Cleanup) {
    let env = TestEnv::new();
    let suffix = env.docker_suffix();
    let cleanup = Cleanup { lineage: None, suffix: suffix.clone() };
    (env, suffix, cleanup)
}

/// Removes whatever carries this test's lineage, whatever happened.
struct Cleanup {
    lineage: Option<String>,
    suffix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let name = |n: &str| format!("infra-e2e-{n}-{}", self.suffix);
        let _ = Command::new("docker").args(["rm", "-f", &name("app")]).output();
        let _ = Command::new("docker").args(["network", "rm", &name("net")]).output();
        let _ = Command::new("docker").args(["volume", "rm", &name("data")]).output();
        let _ = Command::new("docker").args(["rmi", &name("img")]).output();
        if let Some(lineage) = &self.lineage {
            remove_labelled(lineage);
        }
    }
}

#[test]
fn containers_networks_volumes_with_drift_repair_and_clean_destroy() {
    assert!(
        Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success()),
        "the Docker daemon must be running for these tests (scripts/test starts it)"
    );
    let image = base_image();
    let (env, suffix, mut cleanup) = isolated();
    env.write(
        "main.infra",
        &format!(
            r#"
network "net" {{
  name = "infra-e2e-net-{suffix}"
}}

volume "data" {{
  name = "infra-e2e-data-{suffix}"
}}

container "app" {{
  name     = "infra-e2e-app-{suffix}"
  image    = "{image}"
  command  = ["sleep", "infinity"]
  env      = {{ GREETING = "hello", TOKEN = sensitive("s3cret-token") }}
  mounts   = ["${{volume.data.name}}:/data"]
  networks = [network.net.name]
  labels   = {{ role = "test" }}
}}
"#
        ),
    );
    let apply = env.infra(&["apply", "-auto-approve"]).success();
    assert!(apply.stdout.contains("3 added"), "{}", apply.stdout);
    assert!(!apply.stdout.contains("s3cret-token"), "a sensitive env value was printed");
    let lineage = env.lineage();
    cleanup.lineage = Some(lineage.clone());
    let app = format!("infra-e2e-app-{suffix}");
    let labels = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"infra.lineage\"}} {{index .Config.Labels \"infra.address\"}} {{.State.Running}}",
        &app,
    ]);
    assert_eq!(labels, format!("{lineage} container.app true"));
    let env_in_container = docker(&["exec", &app, "sh", "-c", "echo $TOKEN"]);
    assert_eq!(env_in_container, "s3cret-token", "the container gets the secret itself");
    let net_label = docker(&[
        "network",
        "inspect",
        "-f",
        "{{index .Labels \"infra.address\"}}",
        &format!("infra-e2e-net-{suffix}"),
    ]);
    assert_eq!(net_label, "network.net");

    let noop = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(noop.code, 0, "{}{}", noop.stdout, noop.stderr);

    // The conveniences: run a command inside, read its output back.
    let exec = env.infra(&["exec", "container.app", "--", "sh", "-c", "echo hello from inside; echo oops >&2; exit 3"]);
    assert_eq!(exec.code, 3, "exec exits with the command's code");
    assert_eq!(exec.stdout, "hello from inside\n");
    assert_eq!(exec.stderr, "oops\n");
    docker(&["exec", &app, "sh", "-c", "echo written to the log > /proc/1/fd/1"]);
    let logs = env.infra(&["logs", "container.app", "-n", "5"]).success();
    assert!(logs.stdout.contains("written to the log"), "{}", logs.stdout);
    let not_a_container = env.infra(&["logs", "network.net"]).failure();
    assert!(
        TestEnv::flat(&not_a_container.stderr).contains("`network` resources have no logs"),
        "{}",
        not_a_container.stderr
    );

    docker(&["stop", "-t", "0", &app]);
    let stopped = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(stopped.code, 2);
    assert!(stopped.stdout.contains("~ running = false -> true"), "{}", stopped.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", &app]), "true");

    docker(&["network", "disconnect", &format!("infra-e2e-net-{suffix}"), &app]);
    let disconnected = env.infra(&["plan"]).success();
    assert!(disconnected.stdout.contains("# container.app must be replaced"), "{}", disconnected.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    let networks = docker(&["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", &app]);
    assert_eq!(networks, format!("infra-e2e-net-{suffix}"), "reconnected by recreating");

    docker(&["rm", "-f", &app]);
    let gone = env.infra(&["plan"]).success();
    assert!(gone.stdout.contains("# container.app will be created"), "{}", gone.stdout);
    assert!(gone.stdout.contains("because it was deleted outside infra"), "{}", gone.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", &app]), "true");

    env.infra(&["destroy", "-auto-approve"]).success();
    let filter = format!("label=infra.lineage={lineage}");
    assert_eq!(docker(&["ps", "-aq", "--filter", &filter]), "", "no container left");
    assert_eq!(docker(&["network", "ls", "-q", "--filter", &filter]), "", "no network left");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &filter]), "", "no volume left");
}

#[test]
fn bad_container_input_is_a_clear_error_and_state_stays_intact() {
    let (env, suffix, _cleanup) = isolated();
    env.write(
        "main.infra",
        &format!("container \"app\" {{\n  name   = \"infra-e2e-app-{suffix}\"\n  image  = \"infra-no-such-image:never\"\n  ports  = [\"80:http\"]\n  mounts = [\"data:relative\"]\n}}\n"),
    );
    let run = env.infra(&["plan"]).failure();
    assert!(run.stderr.contains("ports are numbers from 1 to 65535"), "{}", run.stderr);
    assert!(run.stderr.contains("must be absolute"), "{}", run.stderr);
    env.write(
        "main.infra",
        &format!(
            "container \"app\" {{\n  name  = \"infra-e2e-app-{suffix}\"\n  image = \"infra-no-such-image:never\"\n}}\n"
        ),
    );
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    assert!(run.stderr.contains("container.app: creating failed"), "{}", run.stderr);
    assert!(run.stderr.contains("infra-no-such-image"), "{}", run.stderr);
    assert_eq!(env.infra(&["state", "list"]).success().stdout, "", "nothing half-created is recorded");
    let run = env.infra(&["plan", "-var", "x=1"]).failure();
    assert!(run.stderr.contains("not declared"), "{}", run.stderr);
}

#[test]
fn an_unreachable_daemon_is_named() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        "provider \"docker\" {\n  host = \"unix:///nonexistent/docker.sock\"\n}\n\nnetwork \"n\" {\n  name = \"never\"\n}\n",
    );
    let run = env.infra(&["plan"]).failure();
    let message = TestEnv::flat(&run.stderr);
    assert!(message.contains("the Docker daemon at unix:///nonexistent/docker.sock cannot be reached"), "{message}");
    assert!(message.contains("Is it running?"), "{message}");
}

#[test]
fn images_build_from_context_and_rebuild_when_it_changes_with_health_gating() {
    let base = base_image();
    let (env, suffix, mut cleanup) = isolated();
    env.write(
        "app/Dockerfile",
        "ARG BASE\nFROM ${BASE}\nCOPY message.txt /message.txt\nCMD [\"sleep\", \"infinity\"]\n",
    );
    env.write("app/message.txt", "first\n");
    env.write(
        "main.infra",
        &format!(
            r#"
variable "base" {{
  type = string
}}

image "app" {{
  name       = "infra-e2e-img-{suffix}"
  context    = "app"
  build_args = {{ BASE = var.base }}
}}

container "app" {{
  name        = "infra-e2e-app-{suffix}"
  image       = image.app.tag
  healthcheck = {{ cmd = ["test", "-s", "/message.txt"], interval = "1s", retries = 3 }}
}}
"#
        ),
    );
    let var = format!("base={base}");
    let plan = env.infra(&["plan", "-var", &var]).success();
    assert!(plan.stdout.contains("+ content_hash ="), "the hash is known at plan time: {}", plan.stdout);
    env.infra(&["apply", "-auto-approve", "-var", &var]).success();
    cleanup.lineage = Some(env.lineage());
    let app = format!("infra-e2e-app-{suffix}");
    assert_eq!(docker(&["inspect", "-f", "{{.State.Health.Status}}", &app]), "healthy", "created only once healthy");
    assert_eq!(docker(&["exec", &app, "cat", "/message.txt"]), "first");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode", "-var", &var]).code, 0);

    env.write("app/message.txt", "second\n");
    let plan = env.infra(&["plan", "-var", &var]).success();
    assert!(plan.stdout.contains("# image.app must be replaced"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# container.app must be replaced"), "{}", plan.stdout);
    assert!(plan.stdout.contains("content_hash") && plan.stdout.contains("# forces replacement"), "{}", plan.stdout);
    env.infra(&["apply", "-auto-approve", "-var", &var]).success();
    assert_eq!(docker(&["exec", &app, "cat", "/message.txt"]), "second");

    env.infra(&["destroy", "-auto-approve", "-var", &var]).success();
    assert_eq!(docker(&["images", "-q", &format!("infra-e2e-img-{suffix}")]), "", "the image is gone");
}

#[test]
fn a_container_that_never_gets_healthy_fails_with_its_logs() {
    let base = base_image();
    let (env, suffix, _cleanup) = isolated();
    env.write(
        "main.infra",
        &format!(
            r#"
container "app" {{
  name        = "infra-e2e-app-{suffix}"
  image       = "{base}"
  command     = ["sh", "-c", "echo starting up; echo database unreachable >&2; sleep infinity"]
  healthcheck = {{ cmd = ["false"], interval = "1s", retries = 1 }}
}}
"#
        ),
    );
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    let message = TestEnv::flat(&run.stderr);
    assert!(message.contains("did not become healthy: its healthcheck failed"), "{message}");
    assert!(message.contains("database unreachable"), "the last log lines are shown: {message}");
    assert_eq!(env.infra(&["state", "list"]).success().stdout, "");
    assert_eq!(docker(&["ps", "-aq", "--filter", &format!("name=infra-e2e-app-{suffix}")]), "", "nothing left behind");
}

#[test]
fn protected_volumes_taken_ports_and_import() {
    let (env, suffix, mut cleanup) = isolated();
    let base = base_image();
    // A port some other program holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = |protected: bool, port: u16| {
        format!(
            r#"
volume "data" {{
  name = "infra-e2e-data-{suffix}"

  lifecycle {{
    prevent_destroy = {protected}
  }}
}}

container "app" {{
  name    = "infra-e2e-app-{suffix}"
  image   = "{base}"
  command = ["sleep", "infinity"]
  ports   = ["{port}:80"]
  mounts  = ["${{volume.data.name}}:/data"]
}}
"#
        )
    };
    env.write("main.infra", &config(true, port));
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    let message = TestEnv::flat(&run.stderr);
    assert!(message.contains("container.app: creating failed"), "{message}");
    assert!(message.contains(&port.to_string()), "the error names the port: {message}");
    cleanup.lineage = Some(env.lineage());
    assert_eq!(
        env.infra(&["state", "list"]).success().stdout,
        "volume.data\n",
        "the volume was made, the container not"
    );
    drop(taken);

    env.infra(&["apply", "-auto-approve"]).success();
    let run = env.infra(&["destroy", "-auto-approve"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("volume.data has `prevent_destroy` set"), "{}", run.stderr);
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name=infra-e2e-data-{suffix}")]),
        format!("infra-e2e-data-{suffix}")
    );

    // Forget the container, then take it back by name.
    let id = docker(&["inspect", "-f", "{{.Id}}", &format!("infra-e2e-app-{suffix}")]);
    env.infra(&["state", "rm", "container.app"]).success();
    env.infra(&["import", "container.app", &format!("infra-e2e-app-{suffix}")]).success();
    let shown = env.infra(&["state", "show", "container.app"]).success();
    assert!(shown.stdout.contains(&id), "{}", shown.stdout);
    let plan = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the imported container matches its configuration: {}", plan.stdout);

    env.write("main.infra", &config(false, port));
    env.infra(&["destroy", "-auto-approve"]).success();
}

#[test]
fn kill_9_mid_apply_adopts_what_was_created_and_duplicates_nothing() {
    let base = base_image();
    // Delays spread over the apply; fixed so a failure can be rerun.
    for delay_ms in [300u64, 900, 1600] {
        let (env, suffix, mut cleanup) = isolated();
        env.write(
            "main.infra",
            &format!(
                "container \"c\" {{\n  count   = 6\n  name    = \"infra-e2e-c${{count.index}}-{suffix}\"\n  image   = \"{base}\"\n  command = [\"sleep\", \"infinity\"]\n}}\n"
            ),
        );
        let mut child = env.command(&["apply", "-auto-approve", "-parallelism", "3"]).spawn().expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let lineage = env.lineage();
        cleanup.lineage = Some(lineage.clone());
        let filter = format!("label=infra.lineage={lineage}");
        let before = docker(&["ps", "-aq", "--filter", &filter]).lines().count();
        let recorded = env.infra(&["state", "list"]).success().stdout.lines().count();
        println!("kill -9 after {delay_ms} ms: {before} containers exist, {recorded} recorded");

        let apply = env.infra(&["apply", "-auto-approve"]);
        assert_eq!(apply.code, 0, "after {delay_ms} ms: the next apply converges: {}{}", apply.stdout, apply.stderr);
        assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);
        assert_eq!(
            docker(&["ps", "-aq", "--filter", &filter]).lines().count(),
            6,
            "after {delay_ms} ms: no duplicates"
        );
        for i in 0..6 {
            let address = format!("label=infra.address=container.c[{i}]");
            let ids = docker(&["ps", "-q", "--filter", &filter, "--filter", &address]);
            assert_eq!(ids.lines().count(), 1, "after {delay_ms} ms: container.c[{i}] exists once and runs");
        }
        env.infra(&["destroy", "-auto-approve"]).success();
        assert_eq!(docker(&["ps", "-aq", "--filter", &filter]), "");
    }
}

#[test]
fn env_files_tmpfs_and_log_options() {
    let base = base_image();
    let (env, suffix, mut cleanup) = isolated();
    env.write("app.env", "# secrets for the app\nAPI_KEY=from-the-file\nMODE=file\n");
    env.write(
        "main.infra",
        &format!(
            r#"
container "app" {{
  name        = "infra-e2e-app-{suffix}"
  image       = "{base}"
  command     = ["sleep", "infinity"]
  env_files   = ["app.env"]
  env         = {{ MODE = "config" }}
  tmpfs       = ["/scratch:size=16m"]
  log_driver  = "json-file"
  log_options = {{ max-size = "1m" }}
}}
"#
        ),
    );
    let plan = env.infra(&["plan"]).success();
    assert!(!plan.stdout.contains("from-the-file"), "env file values stay out of plans: {}", plan.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    cleanup.lineage = Some(env.lineage());
    let app = format!("infra-e2e-app-{suffix}");
    assert_eq!(
        docker(&["exec", &app, "sh", "-c", "echo $API_KEY $MODE"]),
        "from-the-file config",
        "env wins over files"
    );
    assert!(docker(&["exec", &app, "sh", "-c", "grep ' /scratch ' /proc/mounts"]).contains("tmpfs"));
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}",
            &app
        ]),
        "json-file 1m"
    );
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0);

    env.write("app.env", "API_KEY=rotated\n");
    let plan = env.infra(&["plan"]).success();
    assert!(plan.stdout.contains("# container.app must be replaced"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("rotated"), "{}", plan.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(docker(&["exec", &app, "sh", "-c", "echo $API_KEY"]), "rotated");
    env.infra(&["destroy", "-auto-approve"]).success();
}

/// Runs a throwaway registry (Debian's docker-registry, built from the base
/// image) on a free 127.0.0.1 port; removed when dropped.
struct LocalRegistry {
    name: String,
    port: u16,
}

impl LocalRegistry {
    fn start(suffix: &str, base: &str) -> LocalRegistry {
        let context = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/registry");
        let build = Command::new("docker")
            .args(["build", "-q", "--build-arg", &format!("BASE={base}"), "-t", "infra-e2e-registry:1"])
            .arg(&context)
            .output()
            .expect("docker build");
        assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
        let port = crate::support::docker::free_port();
        let name = format!("infra-e2e-registry-{suffix}");
        let published = format!("127.0.0.1:{port}:5000");
        docker(&["run", "-d", "--name", &name, "-p", &published, "infra-e2e-registry:1"]);
        let registry = LocalRegistry { name, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        // docker-proxy accepts connections at once; wait for the registry's answer.
        let url = format!("http://127.0.0.1:{port}/v2/");
        while !Command::new("curl").args(["-fsS", "--max-time", "2", &url]).output().is_ok_and(|o| o.status.success()) {
            assert!(std::time::Instant::now() < deadline, "the registry never answered on {url}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        registry
    }

    /// Pushes `image` as `REGISTRY/e2e/NAME:TAG` and removes the local tag.
    fn push(&self, image: &str, name_and_tag: &str) -> String {
        let reference = format!("127.0.0.1:{}/e2e/{name_and_tag}", self.port);
        docker(&["tag", image, &reference]);
        let pushed = Command::new("docker").args(["push", &reference]).output().expect("docker push");
        assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
        docker(&["rmi", &reference]);
        reference
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

#[test]
fn images_imported_from_a_rootfs_tarball_and_pulled_by_reference() {
    let base = base_image();
    let (env, suffix, mut cleanup) = isolated();
    // A root filesystem tarball, as `docker export` writes one.
    let scratch = format!("infra-e2e-export-{suffix}");
    docker(&["create", "--name", &scratch, &base]);
    let exported = Command::new("docker")
        .args(["export", "-o"])
        .arg(env.join("rootfs.tar"))
        .arg(&scratch)
        .output()
        .expect("docker export");
    docker(&["rm", &scratch]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let registry = LocalRegistry::start(&suffix, &base);
    let reference = registry.push(&base, "base:1");

    let config = |command: &str| {
        format!(
            r#"
image "imported" {{
  name    = "infra-e2e-imported-{suffix}"
  import  = "rootfs.tar"
  changes = ["CMD [\"{command}\", \"infinity\"]", "ENV GREETING=hi"]
}}

image "pulled" {{
  pull = "{reference}"
}}

container "from_tarball" {{
  name  = "infra-e2e-tar-{suffix}"
  image = image.imported.tag
}}

container "from_registry" {{
  name    = "infra-e2e-pulled-{suffix}"
  image   = image.pulled.tag
  command = ["sleep", "infinity"]
}}
"#
        )
    };
    env.write("main.infra", &config("sleep"));
    let apply = env.infra(&["apply", "-auto-approve"]);
    if env.exists("infra.state") {
        cleanup.lineage = Some(env.lineage());
    }
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let running = |name: &str| docker(&["inspect", "-f", "{{.State.Running}} {{.Config.Env}}", name]);
    assert!(running(&format!("infra-e2e-tar-{suffix}")).starts_with("true [GREETING=hi"), "the changes apply");
    assert!(running(&format!("infra-e2e-pulled-{suffix}")).starts_with("true"));
    let shown = env.infra(&["state", "show", "image.pulled"]).success().stdout;
    let digest = format!("127.0.0.1:{}/e2e/base@sha256:", registry.port);
    assert!(shown.contains(&digest), "the registry digest is recorded: {shown}");
    let labels = docker(&["images", "--format", "{{.Repository}}", "--filter", "label=infra.address=image.imported"]);
    let imported = format!("infra-e2e-imported-{suffix}");
    assert!(labels.lines().any(|r| r == imported), "an imported image carries the markers: {labels}");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "no-op after import and pull");

    // Other changes make another image; the plan says so before anything runs.
    env.write("main.infra", &config("tail"));
    let plan = env.infra(&["plan"]).success().stdout;
    assert!(plan.contains("# image.imported must be replaced"), "{plan}");

    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(docker(&["images", "-q", &reference]), "", "a pulled image goes with destroy unless keep_locally");
}

/// Forwards TCP connections on a free 127.0.0.1 port to the local Docker
/// socket, so a `tcp://` host can be tested without reconfiguring the daemon.
/// Serves until the test process ends.
fn docker_over_tcp() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(daemon) = std::os::unix::net::UnixStream::connect("/var/run/docker.sock") else { continue };
            let (mut client_in, mut daemon_out) =
                (client.try_clone().expect("clone"), daemon.try_clone().expect("clone"));
            std::thread::spawn(move || std::io::copy(&mut client_in, &mut daemon_out));
            let (mut daemon_in, mut client_out) = (daemon, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut daemon_in, &mut client_out);
                let _ = client_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[test]
fn aliased_providers_reach_daemons_by_unix_and_tcp_hosts() {
    let (env, suffix, mut cleanup) = isolated();
    let port = docker_over_tcp();
    env.write(
        "main.infra",
        &format!(
            r#"
provider "docker" {{
  host = "unix:///var/run/docker.sock"
}}

provider "docker" {{
  alias = "remote"
  host  = "tcp://127.0.0.1:{port}"
}}

network "local" {{
  name = "infra-e2e-net-{suffix}"
}}

volume "remote" {{
  provider = docker.remote
  name     = "infra-e2e-data-{suffix}"
}}
"#
        ),
    );
    let apply = env.infra(&["apply", "-auto-approve"]);
    if env.exists("infra.state") {
        cleanup.lineage = Some(env.lineage());
    }
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(
        docker(&["network", "ls", "-q", "--filter", &format!("name=infra-e2e-net-{suffix}")]).lines().count(),
        1
    );
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", &format!("name=infra-e2e-data-{suffix}")]).lines().count(),
        1
    );
    let state: serde_json::Value = serde_json::from_str(&env.read("infra.state")).expect("state is JSON");
    let providers: Vec<&str> =
        state["resources"].as_array().expect("resources").iter().filter_map(|r| r["provider"].as_str()).collect();
    assert!(providers.contains(&"docker.remote") && providers.contains(&"docker"), "{providers:?}");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "each provider refreshes its own objects");
    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &format!("name=infra-e2e-data-{suffix}")]), "");
}

#[test]
fn a_port_published_to_the_network_without_a_firewall_is_a_plan_warning() {
    let (env, suffix, _cleanup) = isolated();
    let image = base_image();
    let container = |ports: &str| {
        format!(
            "container \"web\" {{\n  name  = \"infra-e2e-app-{suffix}\"\n  image = \"{image}\"\n  ports = [{ports}]\n}}\n"
        )
    };
    env.write("main.infra", &container("\"0.0.0.0:8080:80\", \"127.0.0.1:8081:81\""));
    let plan = env.infra(&["plan", "-no-color"]).success();
    let warning = "Warning: container.web: publishes 0.0.0.0:8080:80/tcp beyond loopback on this machine";
    assert!(plan.stdout.contains(warning), "{}", plan.stdout);
    assert!(!plan.stdout.contains("publishes 127.0.0.1"), "loopback is not the network: {}", plan.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&env.infra(&["plan", "-format", "json"]).success().stdout).expect("JSON");
    assert_eq!(json["warnings"][0]["address"], "container.web");

    // Naming the host's firewall in the provider says the port is covered.
    let covered = format!(
        "server \"host\" {{\n  host = \"127.0.0.1\"\n  port = 1\n  trust_on_first_use = true\n}}\n\
         firewall \"host\" {{\n  server = server.host\n  docker = true\n}}\n\
         provider \"docker\" {{\n  firewall = firewall.host\n}}\n{}",
        container("\"0.0.0.0:8080:80\"")
    );
    env.write("main.infra", &covered);
    let plan = env.infra(&["plan", "-no-color"]).success();
    assert!(!plan.stdout.contains("Warning:"), "{}", plan.stdout);
}

#[test]
fn a_volume_is_backed_up_by_a_runner_container_verified_and_restored() {
    let (env, suffix, mut cleanup) = isolated();
    let base = base_image();
    let images = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/images/backup");
    env.write(
        "main.infra",
        &format!(
            r#"
volume "data" {{
  name = "infra-e2e-data-{suffix}"
}}

volume "repository" {{
  name = "infra-e2e-repo-{suffix}"
}}

image "backup" {{
  name         = "infra-e2e-img-{suffix}"
  context      = "{images}"
  build_args   = {{ BASE = "{base}" }}
}}

backup "data" {{
  name       = "e2e-{suffix}"
  image      = image.backup.tag
  volume     = volume.data.name
  mounts     = ["${{volume.repository.name}}:/repository"]
  repository = "/repository/data"
  password   = sensitive("volume secret")
  schedule   = ""
}}
"#,
            images = images.display()
        ),
    );
    let apply = env.infra(&["apply", "-auto-approve"]);
    if env.exists("infra.state") {
        cleanup.lineage = Some(env.lineage());
    }
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert!(!env.read("infra.state").contains("volume secret"), "the password is not in state");
    let fill = format!("infra-e2e-data-{suffix}:/d");
    docker(&[
        "run",
        "--rm",
        "-v",
        &fill,
        &base,
        "sh",
        "-c",
        "mkdir -p /d/sub && echo one > /d/a && head -c 50000 /dev/urandom > /d/sub/b",
    ]);
    env.infra(&["backup", "run", "backup.data"]).success();
    let verify = env.infra(&["backup", "verify", "backup.data"]).success();
    assert!(verify.stdout.contains("2 files, 0 differ"), "{}", verify.stdout);
    let list = env.infra(&["backup", "list", "backup.data"]).success();
    assert!(list.stdout.contains("1 snapshots"), "{}", list.stdout);
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "no changes after apply");

    // The runner removed by hand is made again, its settings (and secrets) kept.
    let runner = format!("infra-backup-e2e-{suffix}");
    docker(&["rm", "-f", &runner]);
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 2, "a missing runner is drift");
    env.infra(&["apply", "-auto-approve"]).success();
    env.infra(&["restore", "backup.data", "--to", "/restored"]).success();
    assert_eq!(docker(&["exec", &runner, "cat", "/restored/source/a"]), "one", "restored from the kept repository");

    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(docker(&["ps", "-aq", "--filter", &format!("name={runner}")]), "", "the runner is gone");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &format!("name={runner}")]), "", "and its settings");
}

/// Issue 23: a stack destroyed with its images kept, then applied under another
/// prefix (as `-var stack=other` on the quickstart does). The kept images carry
/// this state's lineage and the same addresses, but they are not the images
/// the plan asks for: they are replaced, not taken over under a tag that does
/// not exist.
#[test]
fn kept_images_are_not_taken_over_under_another_name() {
    let base = base_image();
    let (env, suffix, mut cleanup) = isolated();
    env.write("img/Dockerfile", "ARG BASE\nFROM ${BASE}\nRUN echo kept > /kept\n");
    env.write(
        "main.infra",
        &format!(
            r#"
variable "stack" {{
  type = string
}}

variable "keep" {{
  default = true
}}

network "app" {{
  name = "${{var.stack}}-app"
}}

volume "data" {{
  name = "${{var.stack}}-data"
}}

image "svc" {{
  for_each     = toset(["one", "two"])
  name         = "${{var.stack}}/${{each.key}}"
  context      = "${{path.module}}/img"
  build_args   = {{ BASE = "{base}" }}
  keep_locally = var.keep
}}

container "svc" {{
  for_each = toset(["one", "two"])
  name     = "${{var.stack}}-${{each.key}}"
  image    = image.svc[each.key].tag
  command  = ["sleep", "infinity"]
  networks = [network.app.name]
  mounts   = ["${{volume.data.name}}:/data"]
}}
"#
        ),
    );
    let first = format!("e2e-{suffix}-a");
    let second = format!("e2e-{suffix}-b");
    let stack = |name: &str| format!("stack={name}");
    env.infra(&["apply", "-auto-approve", "-var", &stack(&first)]).success();
    let lineage = env.lineage();
    cleanup.lineage = Some(lineage.clone());
    let filter = format!("label=infra.lineage={lineage}");
    let repositories = || {
        let mut names: Vec<String> = docker(&["images", "--filter", &filter, "--format", "{{.Repository}}"])
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    env.infra(&["destroy", "-auto-approve", "-var", &stack(&first)]).success();
    assert_eq!(repositories(), [format!("{first}/one"), format!("{first}/two")], "keep_locally: the images stay");

    let apply = env.infra(&["apply", "-auto-approve", "-var", &stack(&second)]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    for name in ["one", "two"] {
        let state = docker(&["inspect", "-f", "{{.State.Running}} {{.Config.Image}}", &format!("{second}-{name}")]);
        assert!(state.starts_with(&format!("true {second}/{name}:")), "{second}-{name}: {state}");
    }
    assert_eq!(repositories(), [format!("{second}/one"), format!("{second}/two")], "the other name's images replaced");
    let noop = env.infra(&["plan", "-detailed-exitcode", "-var", &stack(&second)]);
    assert_eq!(noop.code, 0, "{}", noop.stdout);

    // Let the images go with the rest, then nothing of this state is left.
    env.infra(&["apply", "-auto-approve", "-var", &stack(&second), "-var", "keep=false"]).success();
    env.infra(&["destroy", "-auto-approve", "-var", &stack(&second)]).success();
    for list in [&["ps", "-aq"][..], &["network", "ls", "-q"], &["volume", "ls", "-q"], &["images", "-q"]] {
        let mut args = list.to_vec();
        args.extend(["--filter", &filter]);
        assert_eq!(docker(&args), "", "left behind by destroy: docker {args:?}");
    }
}

/// Issue 18: what a killed run can leave for one network address: two networks
/// with this state's lineage and the address (a create still in flight when
/// the run died, and the next run's own), under names the configuration no
/// longer has. One apply takes neither over under the wrong name, leaves one
/// network, records it, and destroy leaves none.
#[test]
fn networks_a_killed_run_left_for_one_address_become_one() {
    let (env, suffix, mut cleanup) = isolated();
    let config = |network: bool| {
        let volume = format!("volume \"data\" {{\n  name = \"infra-e2e-data-{suffix}\"\n}}\n");
        let net = format!("network \"net\" {{\n  name = \"infra-e2e-net-{suffix}\"\n}}\n");
        if network { format!("{volume}\n{net}") } else { volume }
    };
    env.write("main.infra", &config(false));
    env.infra(&["apply", "-auto-approve"]).success();
    let lineage = env.lineage();
    cleanup.lineage = Some(lineage.clone());
    let marker = |key: &str, value: &str| format!("--label={key}={value}");
    for twin in ["a", "b"] {
        docker(&[
            "network",
            "create",
            &marker("infra.lineage", &lineage),
            &marker("infra.address", "network.net"),
            &format!("infra-e2e-twin-{twin}-{suffix}"),
        ]);
    }
    let filter = format!("label=infra.lineage={lineage}");
    let networks = || docker(&["network", "ls", "--filter", &filter, "--format", "{{.Name}}"]);
    assert_eq!(networks().lines().count(), 2, "the twins are there before the apply");

    env.write("main.infra", &config(true));
    let apply = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert_eq!(networks(), format!("infra-e2e-net-{suffix}"), "one network, under the configured name");
    let recorded = env.infra(&["state", "show", "network.net"]).success().stdout;
    let id = docker(&["network", "inspect", "-f", "{{.Id}}", &format!("infra-e2e-net-{suffix}")]);
    assert!(recorded.contains(&id), "state records the network that exists:\n{recorded}");
    let noop = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(noop.code, 0, "{}", noop.stdout);
    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(networks(), "", "destroy leaves no network of this state");
}
