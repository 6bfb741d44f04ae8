//! examples/swarm (not hardened: the test servers run sshd, not systemd)
//! against four test servers with their own Docker Engines,
//! on a network this test makes so their swarm traffic reaches each other,
//! each engine reached only over its server's SSH connection: a first apply
//! killed mid-way and the next one converging, the service spread over the
//! swarm, updated with each new task started first, repaired after a
//! hand-made change, kept serving through an update that fails its health
//! check (rolled back by the swarm, the apply failing with its name), a
//! server drained and removed, another one lost, and all destroyed leaving
//! nothing.
//!
//! Requests come through the example's HAProxy service (published in host
//! mode on the manager, and from there on this machine's 127.0.0.1): a
//! bounded loop of them runs through both updates, and none may fail. This
//! machine's kernel has no IPVS, so the swarm's routing mesh and virtual
//! addresses cannot work here: the service uses `endpoint_mode = "dnsrr"`.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::Path;
use std::process::Command;

use std::time::{Duration, Instant};

use crate::fleet::planned;
use crate::rollout::{Load, request};
use crate::ssh::{DockerHost, key_pair};
use crate::support::TestEnv;
use crate::support::docker::{base_image, copy_dir, docker};

/// A Docker network for the test servers, removed when dropped (after the
/// servers on it, which are declared after it).
struct TestNetwork(String);

impl TestNetwork {
    fn create(env: &TestEnv) -> TestNetwork {
        let name = format!("infra-e2e-swarm-{}", env.docker_suffix());
        let id = docker(&["network", "create", "--label", "infra-e2e=swarm", &name]);
        assert!(!id.is_empty(), "the test network was made");
        TestNetwork(name)
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["network", "rm", &self.0]).output();
    }
}

/// The example's HAProxy image, built here once from the Debian base (tagged
/// by the hash of its Dockerfile and the base), loaded into a server's engine.
fn load_proxy_image(host: &DockerHost) -> String {
    let context = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/swarm/images/proxy");
    let base = base_image();
    let dockerfile = std::fs::read(context.join("Dockerfile")).expect("the proxy's Dockerfile");
    let mut hasher = DefaultHasher::new();
    (&dockerfile, &base).hash(&mut hasher);
    let tag = format!("infra-swarm-proxy:{:016x}", hasher.finish());
    if docker(&["images", "-q", &tag]).is_empty() {
        let built = Command::new("docker")
            .args(["build", "-q", "--build-arg", &format!("BASE={base}"), "-t", &tag])
            .arg(&context)
            .output()
            .expect("docker build runs");
        assert!(built.status.success(), "building the proxy image: {}", String::from_utf8_lossy(&built.stderr));
    }
    let loaded = Command::new("sh")
        .args(["-c", "docker save \"$1\" | docker exec -i \"$2\" docker load -q", "sh", &tag, &host.server.id])
        .output()
        .expect("docker save runs");
    assert!(loaded.status.success(), "loading the proxy image: {}", String::from_utf8_lossy(&loaded.stderr));
    tag
}

/// Waits until the proxy answers with `page`.
fn wait_for_page(port: u16, page: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match request(port) {
            Ok(body) if body == page => return,
            other if Instant::now() > deadline => panic!("the proxy never answered {page}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Applies under a request loop through the proxy: the apply's result, and
/// every answer and failure the loop saw.
fn apply_under_load(env: &TestEnv, port: u16) -> (crate::support::Run, crate::rollout::Seen) {
    let load = Load::start(port);
    std::thread::sleep(Duration::from_millis(500));
    let apply = env.infra(&["apply", "-auto-approve"]);
    std::thread::sleep(Duration::from_millis(500));
    let seen = load.finish();
    let total = seen.answers.len() + seen.failures.len();
    assert!(seen.failures.is_empty(), "{} of {total} requests failed: {:?}", seen.failures.len(), seen.failures);
    assert!(seen.answers.len() > 50, "the loop ran through the apply: {} answers", seen.answers.len());
    println!("{total} requests through the apply, none failed");
    (apply, seen)
}

/// The first apply, killed (`kill -9`) once Docker has the web service but
/// before the apply could record it: the swarm, its nodes and the network
/// exist, and the service is unrecorded. Fails unless the kill landed so.
fn kill_first_apply_once_the_service_exists(env: &TestEnv, manager: &crate::ssh::TestServer) {
    let log = std::fs::File::create(env.join("killed-apply.log")).expect("log file");
    let mut child = env
        .command(&["apply", "-auto-approve"])
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("infra starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !manager.sh("docker service ls --format '{{.Name}}'").lines().any(|name| name == "web") {
        assert!(child.try_wait().expect("wait").is_none(), "the apply ended before the service was made");
        assert!(Instant::now() < deadline, "the service never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!env.read("killed-apply.log").contains("Apply complete!"), "the kill landed after the apply");
    let listed = env.infra(&["state", "list"]).success();
    assert!(listed.stdout.contains("swarm.main"), "the swarm was recorded: {}", listed.stdout);
    assert!(!listed.stdout.contains("swarm_service.web"), "the service was not recorded yet: {}", listed.stdout);
}

/// s3's machine stops (`docker kill`) under a request loop: the swarm runs
/// its task elsewhere, and what the loop lost is printed (Swarm's own
/// failover, behind the proxy's retries). The next plan names the server it
/// cannot reach.
fn lose_a_server(env: &TestEnv, hosts: &[DockerHost], port: u16) {
    let load = Load::start(port);
    std::thread::sleep(Duration::from_secs(1));
    let killed = Instant::now();
    docker(&["kill", &hosts[2].server.id]);
    let deadline = killed + Duration::from_secs(120);
    while pages(&hosts[..2]).len() < 3 {
        assert!(Instant::now() < deadline, "the swarm never ran three tasks on the two servers left");
        std::thread::sleep(Duration::from_millis(250));
    }
    let recovered = killed.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let seen = load.finish();
    let total = seen.answers.len() + seen.failures.len();
    println!(
        "a server lost: three healthy tasks again after {:.1} s; {} of {total} requests failed {:?}",
        recovered.as_secs_f64(),
        seen.failures.len(),
        seen.failures
    );
    assert!(seen.answers.iter().all(|a| a == "v2"));
    let plan = env.infra(&["plan"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stderr.contains(r#"swarm_node.member["s3"]: refreshing failed"#), "{}", plan.stderr);
}

/// The page each running task of `web` serves, one per server that runs one.
fn pages(hosts: &[DockerHost]) -> Vec<String> {
    let mut pages: Vec<String> = hosts
        .iter()
        .flat_map(|host| {
            let tasks =
                host.server.sh("docker ps -q --filter label=com.docker.swarm.service.name=web --filter health=healthy");
            tasks
                .lines()
                .map(|task| {
                    host.server.sh(&format!("docker exec {task} /bin/busybox wget -qO- http://127.0.0.1/index.html"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    pages.sort();
    pages
}

#[test]
fn a_swarm_runs_a_service_through_updates_a_failed_update_a_drained_server_and_a_lost_one() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let network = TestNetwork::create(&env);
    let published: [&[&str]; 4] = [&["-p", "127.0.0.1::8080"], &[], &[], &[]];
    let hosts: Vec<DockerHost> =
        published.iter().map(|p| DockerHost::start(&key, &[&["--network", network.0.as_str()], *p].concat())).collect();
    let proxy_image = load_proxy_image(&hosts[0]);
    let port = hosts[0].server.published(8080);
    for host in &hosts {
        host.import_image("tiny:1", "v1", true);
        host.import_image("tiny:2", "v2", true);
        host.import_image("tiny:sick", "sick", false);
    }
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/swarm"), env.path());
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules");
    env.write("main.infra", &env.read("main.infra").replace("../../modules", &modules.display().to_string()));
    let servers: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let labels = if i == 1 { ", labels = { zone = \"b\" }" } else { "" };
            format!(
                "  s{} = {{ host = \"127.0.0.1\", port = {}, host_key = \"{}\"{labels} }}",
                i + 1,
                h.server.port,
                h.server.host_key()
            )
        })
        .collect();
    let mut members = 4;
    let settings = |image: &str, members: usize| {
        format!(
            "harden = false\nmanagers = [\"s1\"]\nservers = {{\n{}\n}}\nprivate_key = \"{}\"\nimage = \"{image}\"\n\
             endpoint_mode = \"dnsrr\"\nproxy = true\nproxy_image = \"{proxy_image}\"\n\
             command = [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n\
             healthcheck = [\"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1/health\"]\n",
            servers[..members].join("\n"),
            key.display()
        )
    };
    let manager = &hosts[0].server;

    env.write("swarm.auto.infravars", &settings("tiny:1", members));
    // A first apply killed mid-way; the next one adopts what it made and converges.
    kill_first_apply_once_the_service_exists(&env, manager);
    env.infra(&["apply", "-auto-approve"]).success();
    let services = manager.sh("docker service ls --format '{{.Name}}' | sort | tr '\\n' ' '");
    assert_eq!(services, "web web-proxy", "the unrecorded service was adopted, not made twice");
    let nodes = manager.sh("docker node ls --format '{{.Status}} {{.ManagerStatus}}' | sort");
    assert_eq!(nodes, "Ready \nReady \nReady \nReady Leader", "one manager, three workers, all ready");
    let placed =
        manager.sh("docker service ps web --filter desired-state=running --format '{{.Node}}' | sort -u | wc -l");
    assert_eq!(placed, "3", "one task on each server");
    let zone = manager.sh("docker node ls -q --filter node.label=zone=b | wc -l");
    assert_eq!(zone, "1", "s2 carries its label");
    assert_eq!(pages(&hosts), ["v1", "v1", "v1"]);
    wait_for_page(port, "v1");
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "a second plan changes nothing: {}{}", settled.stdout, settled.stderr);
    let shown = env.infra(&["show"]).success();
    assert!(!shown.stdout.contains("SWMTKN"), "join tokens are never shown: {}", shown.stdout);

    // A new image: the service is updated in place, one task at a time,
    // and not one request fails.
    env.write("swarm.auto.infravars", &settings("tiny:2", members));
    assert_eq!(planned(&env), ["swarm_service.web update"]);
    let (apply, seen) = apply_under_load(&env, port);
    apply.success();
    assert_eq!(
        (seen.answers.first().map(String::as_str), seen.answers.last().map(String::as_str)),
        (Some("v1"), Some("v2"))
    );
    assert_eq!(pages(&hosts), ["v2", "v2", "v2"]);

    // Scaled down by hand: the plan shows it and apply puts it back.
    manager.sh("docker service scale --detach web=1 >/dev/null");
    let drift = env.infra(&["plan", "-no-color"]).success();
    assert!(drift.stdout.contains("~ replicas") && drift.stdout.contains("1 -> 3"), "{}", drift.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(pages(&hosts), ["v2", "v2", "v2"]);

    // An image whose tasks never become healthy: the swarm rolls the update
    // back, the apply fails naming the service, and the old tasks serve on.
    env.write("swarm.auto.infravars", &settings("tiny:sick", members));
    let (failed, seen) = apply_under_load(&env, port);
    assert_eq!(failed.code, 1, "{}{}", failed.stdout, failed.stderr);
    assert!(seen.answers.iter().all(|a| a == "v2"), "only the old tasks answered");
    assert!(
        failed.stderr.contains("service web: the swarm rolled the update back"),
        "the error names the service and what happened: {}",
        failed.stderr
    );
    assert_eq!(pages(&hosts), ["v2", "v2", "v2"], "the old tasks kept serving");
    let image = manager.sh("docker service inspect web --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'");
    assert_eq!(image, "tiny:2", "the swarm's spec is the one before the failed update");

    // s4 leaves the map: the managers drain it (its task, if it has one,
    // moves to the others, and no request fails) and remove it; then its
    // engine leaves.
    members = 3;
    env.write("swarm.auto.infravars", &settings("tiny:2", members));
    let changes = planned(&env);
    for change in ["swarm_members.main update", r#"swarm_node.member["s4"] delete"#] {
        assert!(changes.iter().any(|c| c == change), "{change} in {changes:?}");
    }
    let (apply, _) = apply_under_load(&env, port);
    apply.success();
    assert_eq!(manager.sh("docker node ls -q | wc -l"), "3", "s4 is no longer a node");
    assert_eq!(hosts[3].server.sh("docker info --format '{{.Swarm.LocalNodeState}}'"), "inactive");
    assert_eq!(pages(&hosts[..3]), ["v2", "v2", "v2"]);
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);

    lose_a_server(&env, &hosts, port);
    // A deploy while the server is down (not refreshed: it cannot be
    // reached): the tasks it last reported never stop, and the update
    // settles without them.
    env.write("swarm.auto.infravars", &settings("tiny:1", members));
    env.infra(&["apply", "-auto-approve", "-refresh=false"]).success();
    assert_eq!(pages(&hosts[..2]), ["v1", "v1", "v1"]);
    // The operator takes the lost server out of the map and forgets its
    // records; the managers then remove the dead node.
    env.infra(&["state", "rm", r#"swarm_node.member["s3"]"#, r#"server.node["s3"]"#]).success();
    members = 2;
    env.write("swarm.auto.infravars", &settings("tiny:1", members));
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(manager.sh("docker node ls -q | wc -l"), "2", "the lost server is no longer a node");
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);

    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(
        manager.sh("docker service ls -q; docker config ls -q; docker network ls -q --filter label=infra.lineage"),
        ""
    );
    for host in &hosts[..2] {
        assert_eq!(host.server.sh("docker info --format '{{.Swarm.LocalNodeState}}'"), "inactive", "every node left");
    }
}
