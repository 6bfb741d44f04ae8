//! The quickstart stack end to end on real Docker: from nothing to a working web
//! app on PostgreSQL, Redis and RabbitMQ; a no-op plan; one env var changed →
//! exactly that container replaced, data kept; destroy leaves nothing labelled.

use std::process::Command;

use crate::support::TestEnv;
use crate::support::docker::{base_image, copy_dir, free_port};

fn get(url: &str) -> serde_json::Value {
    let out = Command::new("curl").args(["-fsS", "--max-time", "10", url]).output().expect("curl runs");
    assert!(out.status.success(), "GET {url} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the app answers JSON")
}

#[test]
fn quickstart_from_nothing_to_edit_to_destroy() {
    let env = TestEnv::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&root.join("examples/quickstart"), env.path());
    let base = base_image();
    let stack = format!("qs-{}", env.docker_suffix());
    let port = free_port();
    let vars = [format!("base_image={base}"), format!("stack={stack}"), format!("web_port={port}")];
    let with_vars = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        for v in &vars {
            all.push("-var".into());
            all.push(v.clone());
        }
        all
    };
    let run = |args: &[&str]| {
        let args = with_vars(args);
        env.infra(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let cleanup = Cleanup { stack: stack.clone() };

    let apply = run(&["apply", "-auto-approve"]).success();
    assert!(apply.stdout.contains("Apply complete!"), "{}", apply.stdout);
    let running = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Health.Status}}", &format!("{stack}-web")])
        .output()
        .expect("docker");
    assert_eq!(
        String::from_utf8_lossy(&running.stdout).trim(),
        "healthy",
        "the stack runs under this test's own names"
    );
    let url = format!("http://127.0.0.1:{port}/");
    let first = get(&url);
    assert_eq!(first["greeting"], "hello");
    let second = get(&url);
    assert_eq!(second["visits"].as_i64(), first["visits"].as_i64().map(|v| v + 1), "PostgreSQL counts visits");
    assert_eq!(second["hits"].as_i64(), first["hits"].as_i64().map(|v| v + 1), "Redis counts hits");

    let noop = run(&["plan", "-detailed-exitcode"]);
    assert_eq!(noop.code, 0, "{}{}", noop.stdout, noop.stderr);

    let edited = {
        let mut args = with_vars(&["plan", "-detailed-exitcode"]);
        args.extend(["-var".to_string(), "greeting=bonjour".to_string()]);
        env.infra(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert_eq!(edited.code, 2);
    assert!(edited.stdout.contains("# container.web will be updated in place"), "{}", edited.stdout);
    assert!(edited.stdout.contains("rolling update behind infra's proxy"), "{}", edited.stdout);
    assert!(
        edited.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "only the web container: {}",
        edited.stdout
    );
    let password = env.infra(&["output", "-raw", "database_password"]).success().stdout;
    assert!(password.len() >= 24, "a generated password: {password:?}");
    for shown in [&apply.stdout, &noop.stdout, &edited.stdout] {
        assert!(!shown.contains(&password), "the database password was printed");
    }
    // The change rolls out behind infra's proxy while requests run: none fails.
    let mut args = with_vars(&["apply", "-auto-approve"]);
    args.extend(["-var".to_string(), "greeting=bonjour".to_string()]);
    let load = crate::rollout::Load::start(port);
    std::thread::sleep(std::time::Duration::from_millis(500));
    env.infra(&args.iter().map(String::as_str).collect::<Vec<_>>()).success();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let seen = load.finish();
    assert!(seen.failures.is_empty(), "{} requests failed during the update: {:?}", seen.failures.len(), seen.failures);
    assert!(seen.answers.len() > 20, "the loop ran through the update: {} answers", seen.answers.len());
    println!("greeting changed under load: {} requests, none failed", seen.answers.len());
    let third = get(&url);
    assert_eq!(third["greeting"], "bonjour");
    let counted = |v: &serde_json::Value| v["visits"].as_i64().unwrap_or_default();
    assert!(counted(&third) > counted(&second), "the data survived the update: {third} after {second}");

    // The database backed up, lost with its volume, and restored: the same rows.
    let rows = || {
        let out = Command::new("docker")
            .args(["exec", &format!("{stack}-postgres"), "psql", "-U", "app", "-d", "app", "-At", "-c"])
            .arg("SELECT count(*) || ' ' || max(id) || ' ' || md5(string_agg(at::text, ',' ORDER BY id)) FROM visits")
            .output()
            .expect("docker exec");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = rows();
    assert!(before.starts_with(&format!("{} ", third["visits"])), "{before}");
    let backup = run(&["backup", "run", "backup.db"]).success();
    assert!(backup.stdout.contains("saved"), "{}", backup.stdout);
    let verify = run(&["backup", "verify", "backup.db"]).success();
    assert!(verify.stdout.contains("0 differ"), "{}", verify.stdout);
    let state: serde_json::Value = serde_json::from_str(&env.read("infra.state")).expect("state");
    let recorded = state["resources"].as_array().expect("resources").iter().find(|r| r["address"] == "backup.db");
    let recorded = recorded.expect("backup.db in state").to_string();
    assert!(!recorded.contains(&password), "the backup's copy of the database password is not recorded");
    run(&["destroy", "-auto-approve", "-target", "volume.db"]).success();
    run(&["apply", "-auto-approve"]).success();
    assert_ne!(rows(), before, "a new, empty database");
    run(&["restore", "backup.db"]).success();
    assert_eq!(rows(), before, "restored: the same rows");

    let lineage = env.lineage();
    let filter = format!("label=infra.lineage={lineage}");
    run(&["destroy", "-auto-approve"]).success();
    let kept = Command::new("docker").args(["images", "-q", "--filter", &filter]).output().expect("docker");
    assert_eq!(String::from_utf8_lossy(&kept.stdout).lines().count(), 5, "keep_locally: the built images stay");
    crate::support::docker::remove_labelled(&lineage);
    for list in [&["ps", "-aq"][..], &["network", "ls", "-q"], &["volume", "ls", "-q"]] {
        let mut args = list.to_vec();
        args.extend(["--filter", &filter]);
        let out = Command::new("docker").args(&args).output().expect("docker");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "left behind by destroy: docker {args:?}");
    }
    drop(cleanup);
}

/// Removes the stack's containers, network and volumes whatever happened.
struct Cleanup {
    stack: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let stack = &self.stack;
        let containers = ["web", "web-proxy", "queue", "redis", "postgres"].map(|n| format!("{stack}-{n}"));
        for name in containers.iter().chain([&format!("infra-backup-{stack}-db")]) {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
        for network in ["app", "web-edge"] {
            let _ = Command::new("docker").args(["network", "rm", &format!("{stack}-{network}")]).output();
        }
        for volume in [format!("{stack}-db"), format!("{stack}-backups"), format!("infra-backup-{stack}-db")] {
            let _ = Command::new("docker").args(["volume", "rm", &volume]).output();
        }
    }
}
