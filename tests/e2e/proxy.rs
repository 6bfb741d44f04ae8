//! Zero downtime on one host with nothing but a healthcheck: a container that
//! publishes a fixed host port runs behind the proxy infra makes for it. While
//! a bounded loop of requests runs against that port on 127.0.0.1, its image
//! changes (one replica, then two), and a new image that never turns healthy
//! is refused; not one request may fail. The proxy removed by hand is drift
//! that apply repairs, and destroy leaves nothing labelled.

use std::time::{Duration, Instant};

use crate::rollout::{Load, request};
use crate::support::docker::{base_image, docker, free_port, labelled, remove_labelled};
use crate::support::{Run, TestEnv};

struct App {
    env: TestEnv,
    prefix: String,
    port: u16,
}

impl App {
    fn new() -> App {
        let env = TestEnv::new();
        let prefix = format!("px-{}", env.docker_suffix());
        let port = free_port();
        let context = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rolling-update/images/app");
        let base = base_image();
        env.write(
            "main.infra",
            &format!(
                r#"provider "docker" {{
  proxy_base = "{base}"
}}

variable "version" {{
  default = "1"
}}

variable "replicas" {{
  default = 1
}}

variable "proxy" {{
  type    = bool
  default = null
}}

image "app" {{
  name       = "{prefix}/app"
  context    = "{context}"
  build_args = {{ BASE = "{base}", VERSION = var.version }}
}}

container "app" {{
  name        = "{prefix}-app"
  image       = image.app.tag
  replicas    = var.replicas
  proxy       = var.proxy
  ports       = ["127.0.0.1:{port}:8000"]
  healthcheck = {{
    cmd      = ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
    interval = "1s"
    retries  = 5
  }}
}}
"#,
                context = context.display()
            ),
        );
        App { env, prefix, port }
    }

    fn infra(&self, command: &[&str], vars: &[&str]) -> Run {
        let mut args: Vec<&str> = command.to_vec();
        for v in vars {
            args.extend(["-var", v]);
        }
        self.env.infra(&args)
    }

    fn apply(&self, vars: &[&str]) -> Run {
        self.infra(&["apply", "-auto-approve"], vars)
    }

    /// The replicas' names, running or not (the proxy is not one).
    fn replicas(&self) -> Vec<String> {
        let filter = format!("name=^{}-app", self.prefix);
        let mut names: Vec<String> = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
            .lines()
            .filter(|n| !n.ends_with("-proxy"))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    fn answers_version(&self, version: &str) -> bool {
        request(self.port).is_ok_and(|body| body.starts_with(&format!("version {version} ")))
    }

    fn wait_for_version(&self, version: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers_version(version) {
            assert!(Instant::now() < deadline, "port {} never answered version {version}", self.port);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Applies `vars` while requests run, and returns the apply and how many
    /// requests were answered; fails the test on any failed request.
    fn apply_under_load(&self, vars: &[&str]) -> (Run, Vec<String>) {
        self.under_load(&format!("{vars:?}"), || self.apply(vars))
    }

    /// Runs `command` while requests run, and returns its run and the
    /// answers; fails the test on any failed request.
    fn under_load(&self, what: &str, command: impl FnOnce() -> Run) -> (Run, Vec<String>) {
        let load = Load::start(self.port);
        std::thread::sleep(Duration::from_millis(500));
        let apply = command();
        std::thread::sleep(Duration::from_millis(500));
        let seen = load.finish();
        let total = seen.answers.len() + seen.failures.len();
        if !seen.failures.is_empty() {
            let proxy = format!("{}-app-proxy", self.prefix);
            let logs = std::process::Command::new("docker").args(["logs", "--tail", "40", &proxy]).output();
            let mut logs = logs.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
            for command in ["show servers state", "show stat"] {
                let script = format!("echo '{command}' | socat stdio unix-connect:/run/haproxy.sock");
                logs.push_str(&docker(&["exec", &proxy, "sh", "-c", &script]));
                logs.push('\n');
            }
            logs.push_str(&docker(&["ps", "-a", "--filter", &format!("name={}", self.prefix)]));
            panic!(
                "{what}: {} of {total} requests failed: {:?}\napply: {}{}\nthe proxy's log:\n{logs}",
                seen.failures.len(),
                seen.failures,
                apply.stdout,
                apply.stderr
            );
        }
        assert!(seen.answers.len() > 50, "{what}: the loop ran through the apply: {} answers", seen.answers.len());
        println!("{what}: {total} requests, none failed");
        (apply, seen.answers)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.env.exists("infra.state") {
            remove_labelled(&self.env.lineage());
        }
    }
}

#[test]
fn a_published_container_with_a_healthcheck_updates_behind_infras_proxy_without_a_failed_request() {
    let app = App::new();
    let plan = app.infra(&["plan"], &[]);
    assert!(plan.stdout.contains("+ proxy       = true"), "the plan says the proxy is on: {}", plan.stdout);
    app.apply(&[]).success();
    app.wait_for_version("1");
    let proxy = format!("{}-app-proxy", app.prefix);
    let role = docker(&["inspect", "-f", "{{index .Config.Labels \"infra.role\"}}", &proxy]);
    assert_eq!(role, "proxy", "the proxy is a container of its own");
    let published = docker(&["port", &format!("{}-app", app.prefix)]);
    assert_eq!(published, "", "the replica publishes nothing: the proxy holds the port");

    // An env change is an update in place, rolled behind the proxy.
    let plan = app.infra(&["plan", "-detailed-exitcode"], &["version=2"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("# container.app will be updated in place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("rolling update behind infra's proxy"), "{}", plan.stdout);
    let (apply, answers) = app.apply_under_load(&["version=2"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert!(answers.first().is_some_and(|a| a.starts_with("version 1 ")), "{:?}", answers.first());
    assert!(answers.last().is_some_and(|a| a.starts_with("version 2 ")), "{:?}", answers.last());
    assert_eq!(app.replicas(), [format!("{}-app", app.prefix)], "the old replica is gone");
    let noop = app.infra(&["plan", "-detailed-exitcode"], &["version=2"]);
    assert_eq!(noop.code, 0, "converged: {}{}", noop.stdout, noop.stderr);

    // A new image that never turns healthy: the apply fails with its logs and
    // the old replica keeps serving throughout.
    let (broken, answers) = app.apply_under_load(&["version=broken"]);
    assert_ne!(broken.code, 0, "{}", broken.stdout);
    assert!(broken.stderr.contains("did not become healthy"), "{}", broken.stderr);
    assert!(answers.iter().all(|a| a.starts_with("version 2 ")), "only the old replica answered");
    assert_eq!(app.replicas(), [format!("{}-app", app.prefix)], "the unhealthy replica was removed");

    // The proxy removed by hand is drift; apply makes it again.
    docker(&["rm", "-f", &proxy]);
    let drift = app.infra(&["plan", "-detailed-exitcode"], &["version=2"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(drift.stdout.contains("proxy") && drift.stdout.contains("is gone or stopped"), "{}", drift.stdout);
    app.apply(&["version=2"]).success();
    app.wait_for_version("2");

    // Two replicas behind one port, and an update of both under load.
    app.apply(&["version=2", "replicas=2"]).success();
    let (apply, answers) = app.apply_under_load(&["version=3", "replicas=2"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert!(answers.last().is_some_and(|a| a.starts_with("version 3 ")), "{:?}", answers.last());
    assert_eq!(app.replicas(), [1, 2].map(|i| format!("{}-app-{i}", app.prefix)));

    // Opting out (one replica: two cannot share a fixed host port): the proxy
    // goes and the container publishes the port itself.
    let out = ["version=3", "proxy=false"];
    let plan = app.infra(&["plan"], &out);
    assert!(plan.stdout.contains("leaves infra's proxy"), "{}", plan.stdout);
    app.apply(&out).success();
    app.wait_for_version("3");
    assert_eq!(docker(&["ps", "-a", "-q", "--filter", &format!("name=^{proxy}$")]), "", "the proxy is gone");
    assert_ne!(docker(&["port", &format!("{}-app", app.prefix)]), "", "the replica publishes the port");

    let lineage = app.env.lineage();
    app.infra(&["destroy", "-auto-approve"], &out).success();
    for list in [&["ps", "-a"][..], &["network", "ls"]] {
        assert_eq!(labelled(list, &lineage), Vec::<String>::new(), "left behind by destroy: docker {list:?}");
    }
}

#[test]
fn a_rollback_puts_the_previous_image_back_behind_the_proxy_without_a_failed_request() {
    let app = App::new();
    app.apply(&[]).success();
    app.apply(&["version=2"]).success();
    app.wait_for_version("2");
    // The image resource replaced version 1's image and removed its tag; a
    // tag of the container's own keeps the image while the revision is kept,
    // through the `docker image prune` that removes untagged images.
    let repository = format!("{}/app", app.prefix);
    let built = docker(&["images", "--format", "{{.Tag}}", &repository]);
    assert_eq!(built.lines().count(), 1, "only version 2 is tagged by the image resource: {built}");
    let held = format!("infra-rollback/{}-app", app.prefix);
    let held_tags = || docker(&["images", "--format", "{{.Tag}}", &held]);
    assert_eq!(held_tags().lines().count(), 1, "version 1's image is held");
    let ours = format!("label=infra.lineage={}", app.env.lineage());
    docker(&["image", "prune", "--force", "--filter", &ours]);

    let list = app.infra(&["rollback", "-list", "container.app"], &["version=2"]).success();
    assert!(list.stdout.contains("  1  differs in: image\n"), "{}", list.stdout);

    let (rollback, answers) =
        app.under_load("rollback", || app.infra(&["rollback", "-auto-approve", "container.app"], &["version=2"]));
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    assert!(rollback.stdout.contains("# container.app will be updated in place"), "{}", rollback.stdout);
    assert!(rollback.stdout.contains("rolling update behind infra's proxy"), "{}", rollback.stdout);
    assert!(!rollback.stdout.contains("image.app"), "nothing but the container changes: {}", rollback.stdout);
    assert!(rollback.stdout.contains("container.app is back as revision 1 recorded it"), "{}", rollback.stdout);
    assert!(answers.last().is_some_and(|a| a.starts_with("version 1 ")), "{:?}", answers.last());

    // The configuration still says version 2: the plan rolls forward, and a
    // second rollback returns to it.
    let plan = app.infra(&["plan", "-detailed-exitcode"], &["version=2"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("# container.app will be updated in place"), "{}", plan.stdout);
    app.infra(&["rollback", "-auto-approve", "container.app"], &["version=2"]).success();
    app.wait_for_version("2");
    let noop = app.infra(&["plan", "-detailed-exitcode"], &["version=2"]);
    assert_eq!(noop.code, 0, "back where it started: {}{}", noop.stdout, noop.stderr);

    let refused = app.infra(&["rollback", "-auto-approve", "image.app"], &["version=2"]).failure();
    assert!(refused.stderr.contains("`image` resources keep no earlier revisions"), "{}", refused.stderr);
    let refused = app.infra(&["rollback", "-auto-approve", "-to", "9", "container.app"], &["version=2"]).failure();
    assert!(refused.stderr.contains("container.app has no revision 9"), "{}", refused.stderr);

    app.infra(&["destroy", "-auto-approve"], &["version=2"]).success();
    assert_eq!(held_tags(), "", "destroy lets go of the held images");
}

/// Without the proxy one container is replaced on every change (stopped, then
/// made anew): a rollback is a replacement too, and keeps the older revisions.
#[test]
fn a_rollback_of_a_container_that_is_replaced_on_change_keeps_its_older_revisions() {
    let app = App::new();
    for version in ["1", "2", "3"] {
        app.apply(&[&format!("version={version}"), "proxy=false"]).success();
    }
    app.wait_for_version("3");
    let vars = ["version=3", "proxy=false"];
    let list = app.infra(&["rollback", "-list", "container.app"], &vars).success();
    assert!(list.stdout.contains("  1  differs in: image\n  2  differs in: image\n"), "{}", list.stdout);

    let rollback = app.infra(&["rollback", "-auto-approve", "-to", "2", "container.app"], &vars);
    assert_eq!(rollback.code, 0, "{}{}", rollback.stdout, rollback.stderr);
    assert!(rollback.stdout.contains("# container.app must be replaced"), "{}", rollback.stdout);
    app.wait_for_version("1");
    let list = app.infra(&["rollback", "-list", "container.app"], &vars).success();
    assert_eq!(list.stdout.matches("differs in: image").count(), 2, "3 and 2 are kept: {}", list.stdout);
    app.infra(&["apply", "-auto-approve"], &vars).success();
    app.wait_for_version("3");
    app.infra(&["destroy", "-auto-approve"], &vars).success();
}
