//! examples/fleet against three test servers, each with its own Docker
//! Engine reached only over its SSH connection: the fleet grows from two
//! servers to three and back to two, and each step touches only the server
//! added or removed, through that server's own provider instance.
//!
//! The test servers run sshd as PID 1 with a Docker Engine inside, not
//! systemd, so the fleet is applied with `harden = false`; the hardening
//! module has its own test on systemd servers (ssh.rs).

use std::path::Path;

use crate::ssh::{DockerHost, key_pair};
use crate::support::TestEnv;
use crate::support::docker::copy_dir;

/// The `servers` map of the fleet for these hosts, by name.
fn inventory(hosts: &[(&str, &DockerHost)]) -> String {
    let lines: Vec<String> = hosts
        .iter()
        .map(|(name, host)| {
            format!(
                "  {name} = {{ host = \"127.0.0.1\", port = {}, host_key = \"{}\" }}",
                host.server.port,
                host.server.host_key()
            )
        })
        .collect();
    format!("servers = {{\n{}\n}}\n", lines.join("\n"))
}

/// The plan's changes as `ADDRESS ACTION` lines, from its JSON form.
pub(crate) fn planned(env: &TestEnv) -> Vec<String> {
    let run = env.infra(&["plan", "-format", "json"]).success();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
    let changes = plan["resource_changes"].as_array().cloned().unwrap_or_default();
    let mut lines: Vec<String> = changes
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| format!("{} {}", c["address"].as_str().unwrap_or("?"), c["action"].as_str().unwrap_or("?")))
        .collect();
    lines.sort();
    lines
}

/// The id of the web container on a host's own engine ("" when there is none).
fn web_container(host: &DockerHost) -> String {
    host.server.sh("docker ps -q --no-trunc --filter name=^/web$ --filter label=infra.lineage")
}

#[test]
fn a_fleet_grows_by_one_line_and_shrinks_by_one_touching_only_that_server() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let hosts: Vec<DockerHost> = (0..3).map(|_| DockerHost::start(&key, &[])).collect();
    for host in &hosts {
        host.import_tiny_image("fleet");
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet");
    copy_dir(&example, env.path());
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules");
    env.write("main.infra", &env.read("main.infra").replace("../../modules", &modules.display().to_string()));
    let settings = format!(
        "harden = false\nprivate_key = \"{}\"\nimage = \"tiny:1\"\nport = 8080\n\
         command = [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
        key.display()
    );
    let fleet = |names: &[usize]| {
        let named: Vec<(String, &DockerHost)> = names.iter().map(|i| (format!("web{}", i + 1), &hosts[*i])).collect();
        let named: Vec<(&str, &DockerHost)> = named.iter().map(|(n, h)| (n.as_str(), *h)).collect();
        env.write("fleet.auto.infravars", &format!("{settings}{}", inventory(&named)));
    };

    fleet(&[0, 1]);
    env.infra(&["apply", "-auto-approve"]).success();
    let (web1, web2) = (web_container(&hosts[0]), web_container(&hosts[1]));
    assert!(!web1.is_empty() && !web2.is_empty(), "the container runs on each server's own engine");
    assert_eq!(web_container(&hosts[2]), "", "and not on a server outside the map");
    let page = hosts[1].server.sh("docker exec web /bin/busybox wget -qO- http://127.0.0.1/index.html");
    assert_eq!(page, "fleet");
    let second = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(second.code, 0, "a second plan changes nothing: {}{}", second.stdout, second.stderr);

    // One line more: only the new server's objects.
    fleet(&[0, 1, 2]);
    assert_eq!(planned(&env), [r#"container.web["web3"] create"#, r#"server.fleet["web3"] create"#]);
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(!web_container(&hosts[2]).is_empty());
    assert_eq!((web_container(&hosts[0]), web_container(&hosts[1])), (web1.clone(), web2.clone()));

    // web1 leaves the map: its container goes through its own engine, which
    // only the provider instance state recorded for it still reaches.
    fleet(&[1, 2]);
    assert_eq!(planned(&env), [r#"container.web["web1"] delete"#, r#"server.fleet["web1"] delete"#]);
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(web_container(&hosts[0]), "", "removed from the server that left");
    assert_eq!(web_container(&hosts[1]), web2, "the others are untouched");
    let state = env.infra(&["state", "list"]).success();
    assert!(!state.stdout.contains("web1"), "{}", state.stdout);
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);

    env.infra(&["destroy", "-auto-approve"]).success();
    for host in &hosts[1..] {
        assert_eq!(host.server.sh("docker ps -aq --filter label=infra.lineage"), "", "destroy leaves nothing");
    }
}

/// An engine whose server address is made by the same apply (here by a
/// command; in a real fleet, by the cloud): the plan cannot reach it, says
/// so, and apply configures it once the address exists.
#[test]
fn an_engine_whose_address_apply_makes_is_configured_at_apply_and_the_plan_says_so() {
    let env = TestEnv::new();
    let key = key_pair(&env);
    let host = DockerHost::start(&key, &[]);
    host.import_tiny_image("later");
    let config = format!(
        r#"
exec "inventory" {{
  command = ["echo", "127.0.0.1"]
}}

server "box" {{
  host        = trimspace(exec.inventory.stdout)
  port        = {port}
  private_key = "{key}"
  host_key    = "{host_key}"
}}

provider "docker" {{
  alias = "box"
  ssh   = server.box
}}

container "web" {{
  provider = docker.box
  name     = "web"
  image    = "tiny:1"
  command  = ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]
}}
"#,
        port = host.server.port,
        key = key.display(),
        host_key = host.server.host_key(),
    );
    env.write("main.infra", &config);
    let plan = env.infra(&["plan", "-no-color"]).success();
    assert!(
        plan.stdout.contains(
            "# (provider `docker.box` reads values known only after apply: it is configured then, and checks this \
             change then)"
        ),
        "{}",
        plan.stdout
    );
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(!web_container(&host).is_empty(), "the container runs on the engine reached once its address existed");
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);
    env.infra(&["destroy", "-auto-approve"]).success();
    assert_eq!(web_container(&host), "");
}
