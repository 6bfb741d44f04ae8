//! `infra convert compose`: every compose file of the awesome-compose corpus
//! converts to a configuration `infra validate` accepts, and a two-service app
//! run by docker-compose and, converted, by infra answers the same.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::TestEnv;
use crate::support::docker::{base_image, copy_dir, free_port, remove_labelled};

#[test]
fn every_corpus_file_converts_to_a_configuration_that_validates() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/compose/tests/corpus");
    let env = TestEnv::new();
    let mut converted = 0;
    let mut samples: Vec<PathBuf> =
        std::fs::read_dir(&corpus).expect("corpus").flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    samples.sort();
    for sample in samples {
        let name = sample.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let file = ["compose.yaml", "compose.yml"]
            .iter()
            .map(|f| sample.join(f))
            .find(|f| f.is_file())
            .expect("a compose file");
        std::fs::create_dir_all(env.join(&name)).expect("dir");
        let out = env.join(&format!("{name}/main.infra"));
        let convert = env
            .infra(&["convert", "compose", &file.display().to_string(), "-out", &out.display().to_string()])
            .success();
        assert!(convert.stderr.starts_with(&format!("Wrote {}.", out.display())), "{name}: {}", convert.stderr);
        let validate = env.infra(&["-chdir", &name, "validate"]);
        assert_eq!(
            validate.code,
            0,
            "{name} does not validate:\n{}\n{}",
            validate.stderr,
            env.read(&format!("{name}/main.infra"))
        );
        converted += 1;
    }
    assert_eq!(converted, 39);
    // Never over an existing file.
    let again = env
        .infra(&[
            "convert",
            "compose",
            &corpus.join("flask/compose.yaml").display().to_string(),
            "-out",
            "flask/main.infra",
        ])
        .failure();
    assert!(TestEnv::flat(&again.stderr).contains("never overwrites a file"), "{}", again.stderr);
}

fn get(port: u16) -> Option<serde_json::Value> {
    let url = format!("http://127.0.0.1:{port}/");
    let out = Command::new("curl").args(["-fsS", "--max-time", "5", &url]).output().ok()?;
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

/// The first answer within two minutes (images build, then the healthcheck
/// passes), then a second one.
fn two_answers(port: u16, who: &str) -> [serde_json::Value; 2] {
    let deadline = Instant::now() + Duration::from_secs(120);
    let first = loop {
        if let Some(answer) = get(port) {
            break answer;
        }
        assert!(Instant::now() < deadline, "{who} did not answer on {port}");
        std::thread::sleep(Duration::from_millis(500));
    };
    [first, get(port).unwrap_or_else(|| panic!("{who}'s second answer"))]
}

/// Removes both runs' objects whatever happened.
struct Cleanup {
    compose_dir: PathBuf,
    compose_project: String,
    infra_state: PathBuf,
    images: [String; 2],
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["-p", &self.compose_project, "down", "-v", "--rmi", "local"])
            .current_dir(&self.compose_dir)
            .env("BASE_IMAGE", "unused")
            .output();
        let state = std::fs::read_to_string(&self.infra_state).unwrap_or_default();
        let lineage = serde_json::from_str::<serde_json::Value>(&state)
            .ok()
            .and_then(|s| s["lineage"].as_str().map(str::to_string));
        if let Some(lineage) = lineage {
            remove_labelled(&lineage);
        }
        for image in &self.images {
            let ids = crate::support::docker::docker(&["images", "-q", image]);
            for id in ids.lines() {
                let _ = Command::new("docker").args(["rmi", "-f", id]).output();
            }
        }
    }
}

#[test]
fn a_converted_stack_answers_like_its_compose_original() {
    let env = TestEnv::new();
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose-app");
    copy_dir(&app, &env.join("compose"));
    copy_dir(&app, &env.join("infra"));
    let base = base_image();
    let suffix = env.docker_suffix();
    let (compose_project, infra_project) = (format!("cmp-{suffix}"), format!("inf-{suffix}"));
    let cleanup = Cleanup {
        compose_dir: env.join("compose"),
        compose_project: compose_project.clone(),
        infra_state: env.join("infra/infra.state"),
        images: [format!("{infra_project}/counter"), format!("{infra_project}/web")],
    };

    let compose_port = free_port();
    let up = Command::new("docker-compose")
        .args(["-p", &compose_project, "up", "-d", "--build"])
        .current_dir(env.join("compose"))
        .env("BASE_IMAGE", &base)
        .env("WEB_PORT", compose_port.to_string())
        .output()
        .expect("docker-compose runs");
    assert!(up.status.success(), "docker-compose up: {}", String::from_utf8_lossy(&up.stderr));
    let compose_answers = two_answers(compose_port, "docker-compose's stack");
    assert_eq!(compose_answers[1]["counter"]["visits"], 2, "{compose_answers:?}");

    let convert = env.infra(&["-chdir", "infra", "convert", "compose", "-out", "main.infra"]).success();
    assert_eq!(convert.stderr.trim(), "Wrote main.infra.", "nothing left out");
    let infra_port = free_port();
    let vars = [format!("BASE_IMAGE={base}"), format!("WEB_PORT={infra_port}"), format!("project={infra_project}")];
    let with_vars = |command: &[&str]| {
        let mut args: Vec<String> = ["-chdir", "infra"].iter().chain(command).map(|s| s.to_string()).collect();
        for v in &vars {
            args.extend(["-var".to_string(), v.clone()]);
        }
        env.infra(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let apply = with_vars(&["apply", "-auto-approve"]).success();
    assert!(apply.stdout.contains("Apply complete! Resources: 6 added"), "{}", apply.stdout);
    let infra_answers = two_answers(infra_port, "infra's stack");
    assert_eq!(infra_answers, compose_answers, "the same answers from the same app");

    let plan = with_vars(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 0, "applied means no changes: {}", plan.stdout);
    with_vars(&["destroy", "-auto-approve"]).success();
    let lineage = env.lineage_of("infra/infra.state");
    for list in [&["ps", "-a"][..], &["network", "ls"], &["volume", "ls"]] {
        assert_eq!(crate::support::docker::labelled(list, &lineage), Vec::<String>::new(), "left by destroy: {list:?}");
    }
    drop(cleanup);
}
