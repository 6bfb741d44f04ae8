//! The `aws` provider against moto (an EC2 emulator, `scripts/moto-server`)
//! on a free 127.0.0.1 port: staging from scratch and back to nothing, drift
//! repaired, import, a crash mid-apply adopted by tag, batched refresh, and
//! throttling ridden out. moto's instances are not machines: the SSH half of
//! a cloud server runs against the SSH test servers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::ssh::{TestServer, key_pair};
use crate::support::{Run, TestEnv};

/// moto on a free port, with a log of every API call; stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    requests: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// With more `scripts/moto-server` options (`--throttle-every N`).
    pub fn start_with(options: &[&str]) -> Moto {
        let dir = tempfile::tempdir().expect("temp dir");
        let requests = dir.path().join("requests.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/moto-server");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--requests")
            .arg(&requests)
            .args(options)
            // moto-server stops when its stdin closes: with this test.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs scripts/moto-server (pip install 'moto[server]')");
        let mut first = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut first).expect("moto-server prints its address");
        let address =
            first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("moto-server said {first:?}"));
        Moto { endpoint: format!("http://{address}"), child, requests, _dir: dir }
    }

    /// Every API call so far, by action name.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.requests).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Runs infra with credentials for moto (and nothing that could reach AWS itself).
    pub fn infra(&self, env: &TestEnv, args: &[&str]) -> Run {
        self.command(env, args).output().expect("run infra").into()
    }

    pub fn command(&self, env: &TestEnv, args: &[&str]) -> Command {
        let mut command = env.command(args);
        command
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("INFRA_VAR_aws_endpoint", &self.endpoint);
        command
    }

    /// Changes made behind infra's back, and looks at what moto holds.
    pub fn inspect(&self, args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/aws_inspect.py");
        let out = Command::new("python3").arg(script).arg(&self.endpoint).args(args).output().expect("python3 runs");
        assert!(out.status.success(), "aws_inspect {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Type -> ids of what moto holds tagged with this lineage.
    pub fn tagged(&self, lineage: &str) -> serde_json::Map<String, serde_json::Value> {
        let json: serde_json::Value = serde_json::from_str(&self.inspect(&["tagged", lineage])).expect("JSON");
        json.as_object().cloned().unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state_ids(env: &TestEnv, kind: &str) -> Vec<String> {
    let run = env.infra(&["state", "list"]).success();
    let addresses: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with(&format!("{kind}."))).collect();
    addresses.iter().map(|a| instance_id(env, a)).collect()
}

/// The id state records for one address.
fn instance_id(env: &TestEnv, address: &str) -> String {
    let shown = env.infra(&["state", "show", address]).success().stdout;
    let id = shown.lines().find(|l| l.trim_start().starts_with("id ")).unwrap_or_default();
    id.split('"').nth(1).unwrap_or_default().to_string()
}

fn ids(tagged: &serde_json::Map<String, serde_json::Value>, kind: &str) -> Vec<String> {
    let mut ids: Vec<String> = tagged
        .get(kind)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The provider block every test configuration starts with: moto's endpoint
/// comes in as a variable (`Moto::command` sets it).
const PROVIDER: &str = r#"variable "aws_endpoint" {
  type = string
}

provider "aws" {
  region   = "eu-west-1"
  endpoint = var.aws_endpoint
}

"#;

/// A network, a firewall, `count` instances, a disk attached and snapshotted.
fn cloud_config(count: usize) -> String {
    format!(
        r#"{PROVIDER}vpc "main" {{
  cidr = "10.42.0.0/16"
  tags = {{ env = "test" }}
}}

subnet "public" {{
  vpc        = vpc.main.id
  cidr       = cidrsubnet(vpc.main.cidr, 8, 1)
  public_ips = true
}}

firewall "web" {{
  vpc = vpc.main.id
  rule "web" {{
    port = [80, 443]
  }}
}}

key_pair "admin" {{
  name       = "admin-${{substr(vpc.main.id, 4, 8)}}"
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ4cTJ2bWx0cXF2c3p0a3R6c2t0cXF2c3p0a3R6c2t0 test"
}}

instance "web" {{
  count           = {count}
  ami             = "ami-12c6146b"
  type            = "t3.small"
  subnet          = subnet.public.id
  security_groups = [firewall.web.id]
  key_name        = key_pair.admin.name
}}

volume "data" {{
  availability_zone = instance.web[0].availability_zone
  size              = 20
}}

volume_attachment "data" {{
  volume   = volume.data.id
  instance = instance.web[0].id
  device   = "/dev/sdf"
}}

snapshot "data" {{
  volume = volume_attachment.data.volume
}}
"#
    )
}

#[test]
fn instances_terminated_and_rules_added_by_hand_are_seen_and_repaired() {
    let env = TestEnv::new();
    let moto = Moto::start();
    env.write("main.infra", &cloud_config(3));
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let lineage = env.lineage();
    let before = moto.tagged(&lineage);
    assert_eq!(ids(&before, "instance").len(), 3, "{before:?}");
    assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0, "a second plan has nothing to do");

    let victim = instance_id(&env, "instance.web[1]");
    let group = ids(&before, "security_group")[0].clone();
    moto.inspect(&["terminate", &victim]);
    moto.inspect(&["open-port", &group, "3306"]);

    let plan = moto.infra(&env, &["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(plan.code, 2, "drift is a change\n{}\n{}", plan.stdout, plan.stderr);
    let flat = TestEnv::flat(&plan.stdout);
    assert!(flat.contains("instance.web[1] will be created"), "the terminated instance is gone:\n{}", plan.stdout);
    assert!(flat.contains("- \"in tcp 3306 from 0.0.0.0/0\""), "the hand-added rule is shown going:\n{}", plan.stdout);

    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let after = moto.tagged(&lineage);
    assert_eq!(ids(&after, "instance").len(), 3, "one new instance, no duplicate: {after:?}");
    assert!(!ids(&after, "instance").contains(&victim));
    assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0, "repaired: nothing left to do");
    let rules = env.infra(&["state", "show", "firewall.web"]).success().stdout;
    assert!(!rules.contains("3306"), "the hand-added rule was revoked:\n{rules}");

    moto.infra(&env, &["destroy", "-auto-approve"]).success();
    assert!(
        moto.tagged(&lineage).is_empty(),
        "destroy leaves nothing tagged by this state: {:?}",
        moto.tagged(&lineage)
    );
}

#[test]
fn refresh_makes_one_describe_call_per_type_whatever_the_instance_count() {
    let env = TestEnv::new();
    let moto = Moto::start();
    let mut per_refresh = Vec::new();
    // 120: more than moto's default page of 100 instances.
    for count in [2, 120] {
        env.write("main.infra", &cloud_config(count));
        moto.infra(&env, &["apply", "-auto-approve"]).success();
        let before = moto.calls().len();
        assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0);
        let calls: Vec<String> = moto.calls()[before..].to_vec();
        let describe_instances = calls.iter().filter(|c| *c == "DescribeInstances").count();
        assert_eq!(describe_instances, 1, "{count} instances, one listing: {calls:?}");
        per_refresh.push(calls.len());
    }
    assert_eq!(per_refresh[0], per_refresh[1], "API calls per refresh do not grow with the instance count");
    moto.infra(&env, &["destroy", "-auto-approve"]).success();
}

#[test]
fn an_apply_killed_mid_way_is_finished_by_the_next_with_no_duplicate_instance() {
    let moto = Moto::start();
    // The crash matrix's AWS column: killed after a seeded number of RunInstances
    // calls (some instances asked for, not all recorded).
    let kill_points = crate::crash::kill_delays(3, 1..20);
    let mut clean = 0;
    for kill_after in &kill_points {
        let env = TestEnv::new();
        env.write("main.infra", &cloud_config(20));
        let run_instances = || moto.calls().iter().filter(|c| *c == "RunInstances").count();
        let already = run_instances();
        let mut apply = moto
            .command(&env, &["apply", "-auto-approve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let started = std::time::Instant::now();
        while run_instances() < already + *kill_after as usize {
            assert!(started.elapsed().as_secs() < 60, "apply never started instances: {:?}", moto.calls());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        apply.kill().expect("SIGKILL");
        let _ = apply.wait();
        let lineage = env.lineage();
        println!(
            "kill -9 after {kill_after} RunInstances: {} instances tagged",
            ids(&moto.tagged(&lineage), "instance").len()
        );

        moto.infra(&env, &["apply", "-auto-approve"]).success();
        let tagged = moto.tagged(&lineage);
        assert_eq!(ids(&tagged, "instance").len(), 20, "exactly the 20 configured: {tagged:?}");
        let mut recorded = state_ids(&env, "instance");
        recorded.sort();
        assert_eq!(recorded, ids(&tagged, "instance"), "every tagged instance is in state and vice versa");
        assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0);
        moto.infra(&env, &["destroy", "-auto-approve"]).success();
        assert!(moto.tagged(&lineage).is_empty());
        clean += 1;
    }
    println!("aws crash matrix: {clean} of {} trials clean", kill_points.len());
}

#[test]
fn a_snapshot_schedule_loosened_by_hand_is_put_back_and_a_bad_interval_is_refused_at_plan() {
    let env = TestEnv::new();
    let moto = Moto::start();
    let schedule = |keep: u32, env_tag: &str, hours: u32| {
        format!(
            "{PROVIDER}snapshot_schedule \"db\" {{\n  target_tags = {{ backup = \"db\" }}\n  every_hours = {hours}\n  keep        = {keep}\n  role        = \"arn:aws:iam::123456789012:role/AWSDataLifecycleManagerDefaultRole\"\n  tags        = {{ env = \"{env_tag}\" }}\n}}\n"
        )
    };
    env.write("main.infra", &schedule(30, "staging", 12));
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let lineage = env.lineage();
    let id = ids(&moto.tagged(&lineage), "snapshot_schedule").pop().expect("one schedule tagged by this state");
    assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0, "refresh reads back what it wrote");

    moto.inspect(&["loosen-schedule", &id]);
    let drift = moto.infra(&env, &["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(drift.stdout.contains("enabled") && drift.stdout.contains("keep"), "{}", drift.stdout);
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let policy: serde_json::Value = serde_json::from_str(&moto.inspect(&["schedule", &id])).expect("JSON");
    assert_eq!(policy["State"], "ENABLED");
    assert_eq!(policy["PolicyDetails"]["Schedules"][0]["RetainRule"]["Count"], 30);

    // A tag changes in place: the same policy, retagged.
    env.write("main.infra", &schedule(30, "production", 12));
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let policy: serde_json::Value = serde_json::from_str(&moto.inspect(&["schedule", &id])).expect("JSON");
    assert_eq!(policy["Tags"]["env"], "production", "{policy}");

    env.write("main.infra", &schedule(30, "production", 5));
    let refused = moto.infra(&env, &["plan", "-no-color"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("main.infra:") && refused.stderr.contains("not 5"), "{}", refused.stderr);

    env.write("main.infra", &schedule(30, "production", 12));
    moto.infra(&env, &["destroy", "-auto-approve"]).success();
    assert!(moto.tagged(&lineage).is_empty(), "{:?}", moto.tagged(&lineage));
}

#[test]
fn an_existing_vpc_is_imported_tagged_and_then_managed() {
    let env = TestEnv::new();
    let moto = Moto::start();
    let vpc = moto.inspect(&["create-vpc", "10.9.0.0/16"]);
    env.write("main.infra", &format!("{PROVIDER}vpc \"legacy\" {{\n  cidr = \"10.9.0.0/16\"\n}}\n"));
    moto.infra(&env, &["import", "vpc.legacy", &vpc]).success();
    let lineage = env.lineage();
    assert_eq!(ids(&moto.tagged(&lineage), "vpc"), [vpc], "tagged as this state's on import");
    // dns_hostnames is not read back from EC2; the first apply sets it as configured.
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0);
    let wrong = moto.infra(&env, &["import", "vpc.legacy", "vpc-00000000"]);
    assert_eq!(wrong.code, 1);
}

#[test]
fn a_replaced_instance_behind_an_elastic_ip_is_created_before_the_old_one_goes() {
    let env = TestEnv::new();
    let moto = Moto::start();
    let config = |ami: &str| {
        format!(
            r#"{PROVIDER}instance "web" {{
  ami  = "{ami}"
  type = "t3.small"
  lifecycle {{
    create_before_destroy = true
  }}
}}

elastic_ip "web" {{
  instance = instance.web.id
}}
"#
        )
    };
    env.write("main.infra", &config("ami-12c6146b"));
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let allocation = state_ids(&env, "elastic_ip")[0].clone();
    let first: serde_json::Value = serde_json::from_str(&moto.inspect(&["address", &allocation])).expect("JSON");

    env.write("main.infra", &config("ami-1812c061"));
    let plan = moto.infra(&env, &["plan", "-no-color"]).stdout;
    assert!(plan.contains("+/- instance \"web\""), "the new instance comes first:\n{plan}");
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let second: serde_json::Value = serde_json::from_str(&moto.inspect(&["address", &allocation])).expect("JSON");
    assert_eq!(first["public_ip"], second["public_ip"], "the address stays");
    assert_ne!(first["instance"], second["instance"], "and points at the new instance");
    let live = ids(&moto.tagged(&env.lineage()), "instance");
    assert_eq!(live, [second["instance"].as_str().unwrap_or_default().to_string()], "the old one is gone");
    moto.infra(&env, &["destroy", "-auto-approve"]).success();
}

#[test]
fn throttled_calls_are_retried_and_an_unreachable_endpoint_is_named() {
    let env = TestEnv::new();
    let moto = Moto::start_with(&["--throttle-every", "4"]);
    env.write("main.infra", &cloud_config(3));
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let throttled = moto.calls().iter().filter(|c| c.starts_with("THROTTLED")).count();
    assert!(throttled > 3, "the apply met throttling ({throttled} calls) and finished anyway");
    assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0);

    // A region having a bad minute: every fifth call a 500, retried like throttling.
    let failing = Moto::start_with(&["--fail-every", "5"]);
    let env_5xx = TestEnv::new();
    env_5xx.write("main.infra", &cloud_config(3));
    failing.infra(&env_5xx, &["apply", "-auto-approve"]).success();
    let failed = failing.calls().iter().filter(|c| c.starts_with("FAILED")).count();
    assert!(failed > 3, "the apply met 500s ({failed} calls) and finished anyway");
    assert_eq!(failing.infra(&env_5xx, &["plan", "-detailed-exitcode"]).code, 0);
    failing.infra(&env_5xx, &["destroy", "-auto-approve"]).success();

    let port = crate::support::docker::free_port();
    let state_before = env.read("infra.state");
    let unreachable: Run = moto
        .command(&env, &["plan"])
        .env("INFRA_VAR_aws_endpoint", format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run")
        .into();
    assert_eq!(unreachable.code, 1);
    let flat = TestEnv::flat(&unreachable.stderr);
    assert!(flat.contains("vpc.main: refreshing failed: listing VPCs"), "names the resource and the call:\n{flat}");
    assert!(!flat.contains("DispatchFailure"), "no SDK debug dump:\n{flat}");
    assert_eq!(env.read("infra.state"), state_before, "state untouched");
    moto.infra(&env, &["destroy", "-auto-approve"]).success();
}

#[test]
fn staging_from_scratch_hardens_both_servers_and_destroy_leaves_nothing() {
    let env = TestEnv::new();
    let moto = Moto::start();
    let key = key_pair(&env);
    let servers = [TestServer::start_with_systemd(&key), TestServer::start_with_systemd(&key)];
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/staging");
    crate::support::docker::copy_dir(&example, env.path());
    // The module is found relative to the example, as in the repository.
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules");
    let text = env.read("main.infra").replace("../../modules", &modules.display().to_string());
    env.write("main.infra", &text);
    let public_key = std::fs::read_to_string(format!("{}.pub", key.display())).expect("public key");
    env.write(
        "staging.auto.infravars",
        &format!(
            "ami = \"ami-12c6146b\"\naccount = \"123456789012\"\nadmin_key = \"{}\"\nprivate_key = \"{}\"\nhost_kernel = false\nssh_endpoints = {{\n  web1 = {{ host = \"127.0.0.1\", port = {} }}\n  web2 = {{ host = \"127.0.0.1\", port = {} }}\n}}\n",
            public_key.trim(),
            key.display(),
            servers[0].port,
            servers[1].port
        ),
    );
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let lineage = env.lineage();
    let tagged = moto.tagged(&lineage);
    let once = ["vpc", "subnet", "internet_gateway", "route_table", "security_group", "key_pair", "snapshot"];
    for kind in once.into_iter().chain(["snapshot_schedule"]) {
        assert_eq!(ids(&tagged, kind).len(), 1, "{kind}: {tagged:?}");
    }
    assert_eq!(ids(&tagged, "instance").len(), 2);
    assert_eq!(ids(&tagged, "volume").len(), 3, "the data disk, and each instance's root disk tagged with it");
    let schedule: serde_json::Value =
        serde_json::from_str(&moto.inspect(&["schedule", &ids(&tagged, "snapshot_schedule")[0]])).expect("JSON");
    let details = &schedule["PolicyDetails"];
    assert_eq!(details["TargetTags"], serde_json::json!([{ "Key": "snapshots", "Value": "staging-daily" }]));
    let rule = &details["Schedules"][0];
    assert_eq!((&rule["CreateRule"]["Interval"], &rule["RetainRule"]["Count"]), (&24.into(), &14.into()), "{schedule}");

    let outputs: serde_json::Value =
        serde_json::from_str(&moto.infra(&env, &["output", "-json"]).success().stdout).expect("JSON outputs");
    assert_eq!(outputs["vpc_id"]["value"].as_str(), ids(&tagged, "vpc").first().map(String::as_str));
    assert!(outputs["public_addresses"]["value"]["web2"].as_str().is_some_and(|a| !a.is_empty()), "{outputs}");
    for server in &servers {
        let sshd = server.sh("sshd -T 2>/dev/null | grep -E '^(permitrootlogin|passwordauthentication) '");
        assert!(sshd.contains("permitrootlogin no") && sshd.contains("passwordauthentication no"), "hardened: {sshd}");
    }
    let again = moto.infra(&env, &["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(again.code, 0, "staging converged in one apply:\n{}", again.stdout);

    // Destroy as it is: the modules undo what they put on the servers while the
    // admin account and its sudo rule still work (those are abandoned, not
    // deleted), the module inputs naming the servers evaluate against the state
    // from before the run, then the instances and the network go.
    let destroyed = moto.infra(&env, &["destroy", "-auto-approve", "-no-color"]);
    assert_eq!(destroyed.code, 0, "{}{}", destroyed.stdout, destroyed.stderr);
    assert!(destroyed.stdout.contains("forgotten (left in place)"), "{}", destroyed.stdout);
    assert!(moto.tagged(&lineage).is_empty(), "nothing tagged by this state: {:?}", moto.tagged(&lineage));
}

#[test]
fn an_instance_stopped_by_hand_is_started_and_a_new_type_is_applied_by_stop_and_start() {
    let env = TestEnv::new();
    let moto = Moto::start();
    let config = |kind: &str| {
        format!(
            r#"{PROVIDER}instance "web" {{
  ami  = "ami-12c6146b"
  type = "{kind}"
}}
"#
        )
    };
    let described =
        |id: &str| -> serde_json::Value { serde_json::from_str(&moto.inspect(&["instance", id])).expect("JSON") };
    env.write("main.infra", &config("t3.small"));
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    let id = instance_id(&env, "instance.web");

    moto.inspect(&["stop", &id]);
    let plan = moto.infra(&env, &["plan", "-no-color"]).stdout;
    assert!(plan.contains(r#"~ state = "stopped" -> "running""#), "planned back to running:\n{plan}");
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    assert_eq!(described(&id)["state"], "running");

    env.write("main.infra", &config("t3.large"));
    moto.infra(&env, &["apply", "-auto-approve"]).success();
    assert_eq!(
        described(&id),
        serde_json::json!({"state": "running", "type": "t3.large"}),
        "the same instance, retyped"
    );
    assert_eq!(moto.infra(&env, &["plan", "-detailed-exitcode"]).code, 0);
    moto.infra(&env, &["destroy", "-auto-approve"]).success();
}
