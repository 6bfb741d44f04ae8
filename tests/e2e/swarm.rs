//! examples/swarm against three test servers with their own Docker Engines,
//! on a network this test makes so their swarm traffic reaches each other,
//! each engine reached only over its server's SSH connection: the swarm is
//! formed, a service spread over it, updated with each new task started
//! first, repaired after a hand-made change, kept serving through an update
//! that fails its health check (rolled back by the swarm, the apply failing
//! with its name), and destroyed leaving nothing.
//!
//! This machine's kernel has no IPVS, so the swarm's routing mesh and
//! virtual addresses cannot work here: the service uses `endpoint_mode =
//! "dnsrr"`, and each task is asked directly on its own server.

use std::path::Path;
use std::process::Command;

use crate::ssh::{DockerHost, key_pair};
use crate::support::TestEnv;
use crate::support::docker::{copy_dir, docker};

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

fn planned(env: &TestEnv) -> Vec<String> {
    let run = env.infra(&["plan", "-format", "json"]).success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
    let changes = plan["resource_changes"].as_array().cloned().unwrap_or_default();
    changes
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| format!("{} {}", c["address"].as_str().unwrap_or("?"), c["action"].as_str().unwrap_or("?")))
        .collect()
}

#[test]
fn a_swarm_runs_a_service_over_three_servers_updates_it_task_by_task_and_keeps_it_through_a_failed_update() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let network = TestNetwork::create(&env);
    let hosts: Vec<DockerHost> = (0..3).map(|_| DockerHost::start(&key, &["--network", &network.0])).collect();
    for host in &hosts {
        host.import_image("tiny:1", "v1", true);
        host.import_image("tiny:2", "v2", true);
        host.import_image("tiny:sick", "sick", false);
    }
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/swarm"), env.path());
    let servers: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            format!(
                "  s{} = {{ host = \"127.0.0.1\", port = {}, host_key = \"{}\" }}",
                i + 1,
                h.server.port,
                h.server.host_key()
            )
        })
        .collect();
    let settings = |image: &str| {
        format!(
            "managers = [\"s1\"]\nservers = {{\n{}\n}}\nprivate_key = \"{}\"\nimage = \"{image}\"\n\
             endpoint_mode = \"dnsrr\"\n\
             command = [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n\
             healthcheck = [\"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1/health\"]\n",
            servers.join("\n"),
            key.display()
        )
    };
    let manager = &hosts[0].server;

    env.write("swarm.auto.infravars", &settings("tiny:1"));
    env.infra(&["apply", "-auto-approve"]).success();
    let nodes = manager.sh("docker node ls --format '{{.Status}} {{.ManagerStatus}}' | sort");
    assert_eq!(nodes, "Ready \nReady \nReady Leader", "one manager, two workers, all ready");
    let placed =
        manager.sh("docker service ps web --filter desired-state=running --format '{{.Node}}' | sort -u | wc -l");
    assert_eq!(placed, "3", "one task on each server");
    assert_eq!(pages(&hosts), ["v1", "v1", "v1"]);
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "a second plan changes nothing: {}{}", settled.stdout, settled.stderr);
    let shown = env.infra(&["show"]).success();
    assert!(!shown.stdout.contains("SWMTKN"), "join tokens are never shown: {}", shown.stdout);

    // A new image: the service is updated in place, one task at a time.
    env.write("swarm.auto.infravars", &settings("tiny:2"));
    assert_eq!(planned(&env), ["swarm_service.web update"]);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(pages(&hosts), ["v2", "v2", "v2"]);

    // Scaled down by hand: the plan shows it and apply puts it back.
    manager.sh("docker service scale --detach web=1 >/dev/null");
    let drift = env.infra(&["plan", "-no-color"]).success();
    assert!(drift.stdout.contains("~ replicas") && drift.stdout.contains("1 -> 3"), "{}", drift.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(pages(&hosts), ["v2", "v2", "v2"]);

    // An image whose tasks never become healthy: the swarm rolls the update
    // back, the apply fails naming the service, and the old tasks serve on.
    env.write("swarm.auto.infravars", &settings("tiny:sick"));
    let failed = env.infra(&["apply", "-auto-approve"]);
    assert_eq!(failed.code, 1, "{}{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("service web: the swarm rolled the update back"),
        "the error names the service and what happened: {}",
        failed.stderr
    );
    assert_eq!(pages(&hosts), ["v2", "v2", "v2"], "the old tasks kept serving");
    let image = manager.sh("docker service inspect web --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'");
    assert_eq!(image, "tiny:2", "the swarm's spec is the one before the failed update");

    env.write("swarm.auto.infravars", &settings("tiny:2"));
    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(manager.sh("docker service ls -q; docker network ls -q --filter label=infra.lineage"), "");
    for host in &hosts {
        assert_eq!(host.server.sh("docker info --format '{{.Swarm.LocalNodeState}}'"), "inactive", "every node left");
    }
}
