//! Team workflow against a real PostgreSQL (`scripts/postgres-server`): shared
//! state with every version kept, advisory locks that die with their holder,
//! migration between backends, and environments.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::postgres::{BACKEND, Postgres};
use crate::support::{Run, TestEnv};

fn file_config(content: &str) -> String {
    format!("file \"motd\" {{\n  path    = \"motd\"\n  content = \"{content}\"\n}}\n")
}

#[test]
fn every_version_is_kept_loadable_and_can_be_rolled_back_to() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    env.write("backend.infra", BACKEND);
    for content in ["one", "two", "three"] {
        env.write("main.infra", &file_config(content));
        pg.infra(&env, &["apply", "-auto-approve"]).success();
    }
    assert!(!env.exists("infra.state"), "nothing is kept locally");
    assert_eq!(env.read("motd"), "three");

    let history = pg.infra(&env, &["state", "history"]).success().stdout;
    let serials: Vec<u64> = history.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert!(serials.len() >= 3, "one version per apply at least:\n{history}");
    assert!(history.contains("tester@"), "who wrote each version:\n{history}");
    let rows: u64 = pg.sql("SELECT count(*) FROM infra.state_versions").parse().expect("a count");
    assert_eq!(rows as usize, serials.len(), "history lists every stored version");
    let mut contents = Vec::new();
    for serial in &serials {
        let pulled = pg.infra(&env, &["state", "pull", "-serial", &serial.to_string()]).success().stdout;
        let state: serde_json::Value = serde_json::from_str(&pulled).expect("every version loads as a state");
        assert_eq!(state["serial"], *serial);
        if let Some(content) = state["resources"][0]["attributes"]["content"].as_str() {
            contents.push(content.to_string());
        }
    }
    contents.dedup();
    assert_eq!(contents, ["one", "two", "three"], "each apply's result is in history");

    // Back to the version that wrote "one": state says "one", the file still says
    // "three", so the plan shows the difference and apply puts "three" back.
    let first_with_one = serials
        .iter()
        .find(|s| pg.infra(&env, &["state", "pull", "-serial", &s.to_string()]).stdout.contains("\"one\""))
        .expect("a version with `one`");
    let rolled = pg.infra(&env, &["state", "rollback", &first_with_one.to_string()]).success();
    assert!(rolled.stdout.contains("Rolled back"), "{}", rolled.stdout);
    let current: serde_json::Value =
        serde_json::from_str(&pg.infra(&env, &["state", "pull"]).success().stdout).expect("state");
    assert_eq!(current["resources"][0]["attributes"]["content"], "one");
    assert!(current["serial"].as_u64() > serials.last().copied(), "a rollback is a new version, history stays");

    // A version whose stored bytes no longer match their checksum is refused, not used.
    pg.sql("UPDATE infra.state_versions SET body = body || '\\x20'::bytea WHERE serial = (SELECT max(serial) FROM infra.state_versions)");
    let run = pg.infra(&env, &["plan"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("checksum does not match"), "{}", run.stderr);
}

#[test]
fn twenty_concurrent_applies_hold_the_lock_one_at_a_time() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    env.write("backend.infra", BACKEND);
    // Each apply runs one command that notes when it starts and ends: with the
    // lock working, no two of those spans overlap.
    env.write(
        "main.infra",
        "variable \"run\" {}\n\nexec \"turn\" {\n  command  = [\"sh\", \"-c\", \"echo start $RUN >> spans; sleep 0.2; echo end $RUN >> spans\"]\n  environment = { RUN = var.run }\n  triggers = { run = var.run }\n}\n",
    );
    pg.infra(&env, &["apply", "-auto-approve", "-var", "run=setup"]).success();

    // All at once without waiting: exactly one gets the lock, the others name it.
    let racers: Vec<Child> = (0..20)
        .map(|i| {
            pg.command(&env, &["apply", "-auto-approve", "-var", &format!("run=race{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let runs: Vec<(u32, Run)> =
        racers.into_iter().map(|c| (c.id(), c.wait_with_output().expect("wait").into())).collect();
    let winners: Vec<&(u32, Run)> = runs.iter().filter(|(_, r)| r.code == 0).collect();
    let refused: Vec<&(u32, Run)> = runs.iter().filter(|(_, r)| r.code != 0).collect();
    assert!(!winners.is_empty(), "someone got the lock");
    for (_, run) in &refused {
        let text = TestEnv::flat(&run.stderr);
        assert!(text.contains("state is locked by tester on"), "{}", run.stderr);
        assert!(text.contains("running `apply`"), "{}", run.stderr);
    }
    // Every refusal names a holder that was one of the racers that succeeded
    // (a racer may win after an earlier winner finished: that is still one at a time).
    let winner_pids: Vec<String> = winners.iter().map(|(pid, _)| format!("(pid {pid})")).collect();
    for (_, run) in &refused {
        let text = TestEnv::flat(&run.stderr);
        assert!(winner_pids.iter().any(|p| text.contains(p)), "holder not a winner: {text}\nwinners: {winner_pids:?}");
    }

    // All twenty again, each waiting its turn: every one applies, one at a time.
    std::fs::remove_file(env.join("spans")).expect("spans");
    let queued: Vec<Child> = (0..20)
        .map(|i| {
            pg.command(&env, &["apply", "-auto-approve", "-lock-timeout", "300s", "-var", &format!("run=turn{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in queued {
        let run: Run = child.wait_with_output().expect("wait").into();
        run.success();
    }
    let spans = env.read("spans");
    let lines: Vec<&str> = spans.lines().collect();
    assert_eq!(lines.len(), 40, "twenty runs, each started and ended:\n{spans}");
    for pair in lines.chunks(2) {
        let (start, end) = (pair[0].strip_prefix("start "), pair[1].strip_prefix("end "));
        assert!(start.is_some() && start == end, "runs overlapped:\n{spans}");
    }
    let history = pg.infra(&env, &["state", "history"]).success().stdout;
    let versions = history.lines().count() - 1;
    assert!(versions >= 22, "every run left its version ({versions}):\n{history}");
    assert_eq!(pg.sql("SELECT count(*) FROM infra.state_locks"), "0", "no lock row is left behind");
}

#[test]
fn a_holder_killed_with_sigkill_releases_the_lock() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    env.write("backend.infra", BACKEND);
    env.write("main.infra", "exec \"slow\" {\n  command = [\"sleep\", \"60\"]\n}\n");
    let mut holder = pg
        .command(&env, &["apply", "-auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Watched through the table (made by the apply), not with infra, which would
    // compete for the lock.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.try_sql("SELECT info->>'pid' FROM infra.state_locks").ok() != Some(holder.id().to_string()) {
        assert!(Instant::now() < deadline, "the apply never held the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = pg.infra(&env, &["plan"]).failure();
    assert!(
        TestEnv::flat(&refused.stderr).contains(&format!("(pid {}) running `apply`", holder.id())),
        "{}",
        refused.stderr
    );
    holder.kill().expect("SIGKILL");
    holder.wait().expect("reaped");
    let started = Instant::now();
    pg.infra(&env, &["plan", "-lock-timeout", "30s"]).success();
    assert!(started.elapsed() < Duration::from_secs(25), "the lock went with the killed session");
    // The dead holder's row was not believed; the plan took it over and removed it with its own lock.
    assert_eq!(pg.sql("SELECT count(*) FROM infra.state_locks"), "0", "no lock row is left behind");
}

#[test]
fn migrating_local_to_postgres_and_back_loses_nothing() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    env.write(
        "main.infra",
        "random_id \"id\" {}\n\nfile \"motd\" {\n  path    = \"motd-${env.name}\"\n  content = \"${env.name} ${random_id.id.hex}\"\n}\n\noutput \"id\" {\n  value = random_id.id.hex\n}\n",
    );
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    pg.infra(&env, &["env", "new", "staging"]).success();
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    let local: Vec<String> =
        ["default", "staging"].iter().map(|e| pg.infra(&env, &["-env", e, "state", "pull"]).success().stdout).collect();

    env.write("backend.infra", BACKEND);
    let run = pg.infra(&env, &["plan"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("backend changed"), "{}", run.stderr);
    let init = pg.infra(&env, &["init", "-migrate-state"]).success();
    assert!(init.stdout.contains("Copied 2 environment(s)"), "{}", init.stdout);
    for (name, before) in ["default", "staging"].iter().zip(&local) {
        let there = pg.infra(&env, &["-env", name, "state", "pull"]).success().stdout;
        assert_eq!(&there, before, "{name} arrived in PostgreSQL as it was");
        assert_eq!(pg.infra(&env, &["-env", name, "plan", "-detailed-exitcode"]).code, 0, "{name}: no changes");
    }

    // Work on PostgreSQL, then move back: the newer state comes home whole.
    env.write(
        "main.infra",
        &env.read("main.infra").replace("random_id \"id\" {}", "random_id \"id\" {}\n\nrandom_id \"extra\" {}"),
    );
    pg.infra(&env, &["-env", "staging", "apply", "-auto-approve"]).success();
    let on_pg: Vec<String> =
        ["default", "staging"].iter().map(|e| pg.infra(&env, &["-env", e, "state", "pull"]).success().stdout).collect();
    std::fs::remove_file(env.join("backend.infra")).expect("rm");
    pg.infra(&env, &["init", "-migrate-state"]).success();
    for (name, before) in ["default", "staging"].iter().zip(&on_pg) {
        let home = pg.infra(&env, &["-env", name, "state", "pull"]).success().stdout;
        assert_eq!(&home, before, "{name} came back from PostgreSQL as it was");
    }
    assert!(env.exists("infra.state.d/staging/infra.state"));
}

#[test]
fn environments_keep_apart_and_rebuild_from_scratch_with_the_same_outputs() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    env.write("backend.infra", BACKEND);
    env.write(
        "main.infra",
        "variable \"greeting\" {\n  default = \"hello\"\n}\n\nrandom_id \"suffix\" {}\n\nfile \"motd\" {\n  path    = \"motd-${env.name}\"\n  content = \"${var.greeting} from ${env.name}\"\n}\n\noutput \"motd\" {\n  value = file.motd.content\n}\n\noutput \"name\" {\n  value = \"app-${env.name}-${random_id.suffix.hex}\"\n}\n",
    );
    env.write("environments/staging.infravars", "greeting = \"hi\"\n");
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    let unknown = pg.infra(&env, &["-env", "stagin", "plan"]).failure();
    assert!(TestEnv::flat(&unknown.stderr).contains("environment `stagin` does not exist"), "{}", unknown.stderr);
    pg.infra(&env, &["env", "new", "staging"]).success();
    assert_eq!(pg.infra(&env, &["env", "show"]).success().stdout.trim(), "staging");
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    assert_eq!(env.read("motd-default"), "hello from default");
    assert_eq!(env.read("motd-staging"), "hi from staging", "staging's var file applies to staging only");
    let listed = pg.infra(&env, &["env", "list"]).success().stdout;
    assert_eq!(listed, "  default\n* staging\n");

    // Rebuild staging from nothing: the same outputs but for generated ids.
    let outputs = |pg: &Postgres| pg.infra(&env, &["-env", "staging", "output", "-json"]).success().stdout;
    let before: serde_json::Value = serde_json::from_str(&outputs(&pg)).expect("json");
    pg.infra(&env, &["destroy", "-auto-approve"]).success();
    assert!(!env.exists("motd-staging"));
    assert!(env.exists("motd-default"), "destroying staging leaves default alone");
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    let after: serde_json::Value = serde_json::from_str(&outputs(&pg)).expect("json");
    assert_eq!(before["motd"], after["motd"]);
    let strip_id =
        |v: &serde_json::Value| v["name"]["value"].as_str().map(|s| s.rsplit_once('-').map(|p| p.0.to_string()));
    assert_eq!(strip_id(&before), strip_id(&after));
    assert_ne!(before["name"], after["name"], "a new random id");

    // An environment that still manages something is not deleted by accident.
    let refused = pg.infra(&env, &["env", "delete", "staging"]).failure();
    assert!(TestEnv::flat(&refused.stderr).contains("is selected"), "{}", refused.stderr);
    pg.infra(&env, &["env", "select", "default"]).success();
    let refused = pg.infra(&env, &["env", "delete", "staging"]).failure();
    assert!(TestEnv::flat(&refused.stderr).contains("still manages 2 resource(s)"), "{}", refused.stderr);
    pg.infra(&env, &["-env", "staging", "destroy", "-auto-approve"]).success();
    pg.infra(&env, &["env", "delete", "staging"]).success();
    assert_eq!(pg.infra(&env, &["env", "list"]).success().stdout, "* default\n");
}

#[test]
fn state_push_refuses_another_lineage_or_an_older_serial() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    env.write("backend.infra", BACKEND);
    env.write("main.infra", &file_config("one"));
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    env.write("old.state", &pg.infra(&env, &["state", "pull"]).success().stdout);
    env.write("main.infra", &file_config("two"));
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    let run = pg.infra(&env, &["state", "push", "old.state"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("is older (serial"), "{}", run.stderr);

    let other = TestEnv::new();
    other.write("main.infra", &file_config("elsewhere"));
    other.infra(&["apply", "-auto-approve"]).success();
    env.write("foreign.state", &other.read("infra.state"));
    let run = pg.infra(&env, &["state", "push", "foreign.state"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("belongs to another state (lineage"), "{}", run.stderr);

    pg.infra(&env, &["state", "push", "-force", "old.state"]).success();
    let current: serde_json::Value =
        serde_json::from_str(&pg.infra(&env, &["state", "pull"]).success().stdout).expect("state");
    assert_eq!(current["resources"][0]["attributes"]["content"], "one");
}

#[test]
fn backend_mistakes_are_named_and_touch_nothing() {
    let env = TestEnv::new();
    env.write("main.infra", &file_config("x"));
    env.write("backend.infra", "backend \"postgres\" {\n  conn = var.url\n}\n");
    let run = env.infra(&["plan"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("cannot refer to variables"), "{}", run.stderr);
    assert!(run.stderr.contains("backend.infra:2"), "points at the line: {}", run.stderr);

    env.write("backend.infra", "backend \"s3\" {}\n");
    let run = env.infra(&["plan"]).failure();
    assert!(TestEnv::flat(&run.stderr).contains("unknown backend `s3`"), "{}", run.stderr);

    // Nothing listens on this port: the error names the server, never the password.
    let port = crate::support::docker::free_port();
    env.write("backend.infra", BACKEND);
    std::fs::remove_dir_all(env.join(".infra")).ok();
    let run: Run = env
        .command(&["plan"])
        .env("INFRA_PG", format!("postgres://infra:hunter2@127.0.0.1:{port}/infra"))
        .output()
        .expect("run")
        .into();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let text = TestEnv::flat(&run.stderr);
    assert!(text.contains(&format!("postgres://infra@127.0.0.1:{port}/infra")), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
    assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"), "the password leaked: {}", run.stderr);
    assert!(!env.exists("infra.state"));
}

#[test]
fn drift_is_reported_with_exit_codes_and_can_be_accepted_into_state() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        "file \"motd\" {\n  path    = \"motd\"\n  content = \"managed\"\n}\n\nfile \"gone\" {\n  path    = \"gone\"\n  content = \"x\"\n}\n\noutput \"motd\" {\n  value = file.motd.content\n}\n",
    );
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.infra(&["drift"]).code, 0, "nothing changed outside infra yet");

    std::fs::write(env.join("motd"), "edited by hand").expect("edit");
    std::fs::remove_file(env.join("gone")).expect("rm");
    let report = env.infra(&["drift", "-no-color"]);
    assert_eq!(report.code, 2, "{}\n{}", report.stdout, report.stderr);
    assert!(report.stdout.contains("# file.motd has changed"), "{}", report.stdout);
    assert!(report.stdout.contains("# file.gone has been deleted"), "{}", report.stdout);
    assert!(report.stdout.contains("refresh-only plan"), "{}", report.stdout);
    assert!(!report.stdout.contains("will be created"), "a drift report proposes no change: {}", report.stdout);
    assert_eq!(env.infra(&["plan", "-refresh-only", "-detailed-exitcode"]).code, 2);
    let state_before = env.read("infra.state");
    env.infra(&["plan", "-refresh-only"]).success();
    assert_eq!(env.read("infra.state"), state_before, "a plan records nothing");

    // A saved refresh-only plan applies as reviewed: state takes the real world.
    env.infra(&["plan", "-refresh-only", "-out", "drift.bin"]).success();
    let applied = env.infra(&["apply", "drift.bin"]).success();
    assert!(applied.stdout.contains("State updated: 2 resource(s) now recorded as found."), "{}", applied.stdout);
    assert_eq!(env.read("motd"), "edited by hand", "nothing real was touched");
    assert!(!env.exists("gone"));
    assert_eq!(env.infra(&["drift"]).code, 0, "state now matches the real world");
    assert_eq!(env.infra(&["output", "-raw", "motd"]).success().stdout, "edited by hand");
    let list = env.infra(&["state", "list"]).success().stdout;
    assert_eq!(list, "file.motd\n", "the deleted file is forgotten");

    // A normal plan still wants the configuration back.
    let plan = env.infra(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains("# file.gone will be created"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# file.motd will be updated in place"), "{}", plan.stdout);
    let refused = env.infra(&["destroy", "-refresh-only", "-auto-approve"]).failure();
    assert!(refused.stderr.contains("cannot be combined"), "{}", refused.stderr);
}

#[test]
fn a_moved_block_plans_a_move_not_a_replacement() {
    let env = TestEnv::new();
    env.write(
        "modules/site/main.infra",
        "variable \"name\" {}\n\nfile \"page\" {\n  path    = \"page-${var.name}\"\n  content = var.name\n}\n",
    );
    env.write(
        "main.infra",
        "file \"motd\" {\n  count   = 2\n  path    = \"motd-${count.index}\"\n  content = \"hello\"\n}\n\nmodule \"web\" {\n  source = \"./modules/site\"\n  name   = \"web\"\n}\n",
    );
    env.infra(&["apply", "-auto-approve"]).success();
    let lineage_ids = env.infra(&["state", "pull"]).success().stdout;

    env.write(
        "main.infra",
        "file \"banner\" {\n  count   = 2\n  path    = \"motd-${count.index}\"\n  content = \"hello\"\n}\n\nmodule \"frontend\" {\n  source = \"./modules/site\"\n  name   = \"web\"\n}\n\nmoved {\n  from = file.motd\n  to   = file.banner\n}\n\nmoved {\n  from = module.web\n  to   = module.frontend\n}\n",
    );
    let plan = env.infra(&["plan", "-no-color", "-detailed-exitcode", "-out", "moves.bin"]);
    assert_eq!(plan.code, 2, "a move is a change to apply\n{}\n{}", plan.stdout, plan.stderr);
    for line in [
        "# file.motd[0] has moved to file.banner[0]",
        "# file.motd[1] has moved to file.banner[1]",
        "# module.web.file.page has moved to module.frontend.file.page",
        "Plan: 0 to add, 0 to change, 0 to destroy, 3 moved.",
    ] {
        assert!(plan.stdout.contains(line), "missing {line:?}:\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains("will be created") && !plan.stdout.contains("destroyed"), "{}", plan.stdout);
    let markdown = env.infra(&["show", "-format", "markdown", "moves.bin"]).success().stdout;
    assert!(markdown.contains("- `file.motd[0]` → `file.banner[0]`"), "{markdown}");

    env.infra(&["apply", "moves.bin"]).success();
    let list = env.infra(&["state", "list"]).success().stdout;
    assert_eq!(list, "file.banner[0]\nfile.banner[1]\nmodule.frontend.file.page\n");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "nothing left to do after the move");
    let after = env.infra(&["state", "pull"]).success().stdout;
    let ids = |text: &str| -> Vec<String> {
        let state: serde_json::Value = serde_json::from_str(text).expect("state");
        state["resources"].as_array().expect("resources").iter().map(|r| r["attributes"]["id"].to_string()).collect()
    };
    let (mut before_ids, mut after_ids) = (ids(&lineage_ids), ids(&after));
    before_ids.sort();
    after_ids.sort();
    assert_eq!(before_ids, after_ids, "the same objects, under new addresses");

    // A moved block that names no address is a diagnostic pointing at it.
    env.write("moved.infra", "moved {\n  from = file.banner\n  to   = \"somewhere\"\n}\n");
    let bad = env.infra(&["plan"]).failure();
    assert!(TestEnv::flat(&bad.stderr).contains("is not a resource or module address"), "{}", bad.stderr);
    assert!(bad.stderr.contains("moved.infra:3"), "{}", bad.stderr);
}

#[test]
fn a_false_check_fails_the_plan_naming_the_block() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        r#"variable "open_ports" {
  default = [22, 443]
}

file "rules" {
  path    = "rules"
  content = join("\n", [for p in var.open_ports : "allow tcp ${p} from 0.0.0.0/0"])
}

random_id "token" {}

check "no_world_ssh" {
  assert {
    condition     = alltrue([for line in split("\n", file.rules.content) : !startswith(line, "allow tcp 22 ")])
    error_message = "port 22 must not be open to the world: use a bastion"
  }
}

check "token_is_long_enough" {
  assert {
    condition     = length(random_id.token.hex) >= 16
    error_message = "the token is too short"
  }
}
"#,
    );
    let plan = env.infra(&["plan", "-no-color"]).failure();
    let text = TestEnv::flat(&plan.stderr);
    assert!(
        text.contains("check `no_world_ssh` failed: port 22 must not be open to the world: use a bastion"),
        "{text}"
    );
    assert!(plan.stderr.contains("main.infra:14"), "points at the condition: {}", plan.stderr);
    assert!(!env.exists("rules"), "nothing applied");
    // A check on a value known only after apply (the random id) passes the plan;
    // apply judges it once the value exists (a 16-hex-digit id passes).
    env.infra(&["apply", "-auto-approve", "-var", "open_ports=[443]"]).success();
    assert_eq!(env.read("rules"), "allow tcp 443 from 0.0.0.0/0");
    let validate = env.infra(&["validate"]).success();
    assert!(validate.stdout.contains("valid"), "{}", validate.stdout);
}

#[test]
fn an_import_block_is_planned_reviewed_and_applied_like_any_change() {
    let env = TestEnv::new();
    std::fs::write(env.join("motd"), "written by hand").expect("write");
    env.write(
        "main.infra",
        "file \"motd\" {\n  path    = \"motd\"\n  content = \"managed\"\n}\n\nimport {\n  to = file.motd\n  id = \"motd\"\n}\n",
    );
    let plan = env.infra(&["plan", "-no-color", "-detailed-exitcode", "-out", "import.bin"]);
    assert_eq!(plan.code, 2, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("# file.motd will be imported (id \"motd\")"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# file.motd will be updated in place"), "the difference shows: {}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 1 to import, 0 to add, 1 to change, 0 to destroy."), "{}", plan.stdout);
    assert!(!plan.stdout.contains("changed outside"), "an import is not drift: {}", plan.stdout);
    assert_eq!(env.read("motd"), "written by hand", "planning changes nothing");
    assert_eq!(env.infra(&["state", "list"]).success().stdout, "", "and records nothing");

    env.infra(&["apply", "import.bin"]).success();
    assert_eq!(env.read("motd"), "managed");
    assert_eq!(env.infra(&["state", "list"]).success().stdout, "file.motd\n");
    assert_eq!(env.infra(&["plan", "-detailed-exitcode"]).code, 0, "an import block of something managed is a no-op");

    env.write("more.infra", "file \"ghost\" {\n  path    = \"ghost\"\n  content = \"x\"\n}\n\nimport {\n  to = file.ghost\n  id = \"no-such-file\"\n}\n");
    let missing = env.infra(&["plan"]).failure();
    assert!(
        TestEnv::flat(&missing.stderr).contains("file.ghost: cannot import \"no-such-file\""),
        "{}",
        missing.stderr
    );
    env.write(
        "more.infra",
        "variable \"where\" {\n  default = \"x\"\n}\n\nimport {\n  to = file.motd\n  id = var.where\n}\n",
    );
    let reference = env.infra(&["validate"]).failure();
    assert!(TestEnv::flat(&reference.stderr).contains("a reference is not allowed here"), "{}", reference.stderr);
}

/// examples/ci/ci.sh as a CI system runs it: the plan a pull request reviews,
/// applied after merge, refused once a teammate's merge moved the state on.
#[test]
fn the_pull_request_flow_of_examples_ci_with_shared_state() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    let config = env.join("config");
    std::fs::create_dir_all(&config).expect("mkdir");
    env.write("config/backend.infra", BACKEND);
    env.write("config/main.infra", &file_config("v1"));
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/ci.sh");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_infra")).parent().expect("bin dir").to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let stage = |workdir: &str, stage: &str| -> Run {
        let dir = env.join(workdir);
        std::fs::create_dir_all(&dir).expect("workdir");
        Command::new("bash")
            .arg(&ci)
            .arg(stage)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", env.join("home"))
            .env("USER", "tester")
            .env("INFRA_PG", &pg.url)
            .env("INFRA_DIR", &config)
            .stdin(Stdio::null())
            .output()
            .expect("ci.sh runs")
            .into()
    };

    // Pull request 1: plan and comment.
    let planned = stage("pr1", "plan");
    assert_eq!(planned.code, 0, "{}{}", planned.stdout, planned.stderr);
    let comment = env.read("pr1/plan.md");
    assert!(comment.starts_with("## infra plan"), "{comment}");
    assert!(comment.contains("<code>file.motd</code>"), "{comment}");
    assert!(env.exists("pr1/plan.bin") && env.exists("pr1/plan-full.md"));
    assert!(!config.join("motd").exists(), "a plan changes nothing");

    // Pull request 2 is planned too, then merged and applied first.
    env.write("config/main.infra", &file_config("v2"));
    stage("pr2", "plan").success();
    stage("pr2", "apply").success();
    assert_eq!(std::fs::read_to_string(config.join("motd")).expect("motd"), "v2");

    // Pull request 1's reviewed plan is now stale: refused, nothing touched.
    env.write("config/main.infra", &file_config("v1"));
    let stale = stage("pr1", "apply");
    assert_eq!(stale.code, 1, "{}{}", stale.stdout, stale.stderr);
    assert!(
        TestEnv::flat(&stale.stderr).contains("the state was created since the plan was made")
            || TestEnv::flat(&stale.stderr).contains("the state changed since the plan was made"),
        "{}",
        stale.stderr
    );
    assert_eq!(std::fs::read_to_string(config.join("motd")).expect("motd"), "v2", "the stale plan changed nothing");

    // Re-planned and reviewed again, it applies.
    stage("pr1", "plan").success();
    stage("pr1", "apply").success();
    assert_eq!(std::fs::read_to_string(config.join("motd")).expect("motd"), "v1");

    // The nightly drift job.
    assert_eq!(stage("nightly", "drift").code, 0);
    std::fs::write(config.join("motd"), "hand edit").expect("edit");
    let drift = stage("nightly", "drift");
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    assert!(drift.stdout.contains("# file.motd has changed"), "{}", drift.stdout);
}

#[test]
fn tls_to_postgres_verifies_the_server_certificate() {
    let pg = Postgres::start_with(&["--tls"]);
    let ca = pg.ca_file.clone().expect("a CA");
    let env = TestEnv::new();
    env.write("main.infra", &file_config("over tls"));

    // The server turns plain connections away: infra says so, naming the server.
    env.write("backend.infra", BACKEND);
    let plain = pg.infra(&env, &["plan"]).failure();
    let text = TestEnv::flat(&plain.stderr);
    assert!(text.contains("cannot connect") && text.contains("no encryption"), "{text}");

    // TLS without the test CA: the certificate is not trusted, nothing is sent.
    let require = |pg: &Postgres, extra: &str| {
        pg.command(&env, &["apply", "-auto-approve"])
            .env("INFRA_PG", format!("{}?sslmode=require{extra}", pg.url))
            .output()
            .expect("run")
    };
    let untrusted: Run = require(&pg, "").into();
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
    assert!(TestEnv::flat(&untrusted.stderr).to_lowercase().contains("certificate"), "{}", untrusted.stderr);
    assert!(!env.exists("motd"));

    // With ca_file the server is verified and state goes over TLS.
    env.write(
        "backend.infra",
        &format!("backend \"postgres\" {{\n  conn    = env(\"INFRA_PG\")\n  ca_file = \"{ca}\"\n}}\n"),
    );
    std::fs::remove_dir_all(env.join(".infra")).ok();
    let applied: Run = pg.command(&env, &["apply", "-auto-approve"]).output().expect("run").into();
    applied.success();
    assert_eq!(env.read("motd"), "over tls");
    // The server takes nothing but TLS (the plain attempt above was turned away).
    let history = pg.infra(&env, &["state", "history"]).success().stdout;
    assert!(history.lines().count() >= 2, "{history}");
}

#[test]
fn state_encrypted_in_postgres_shows_no_value_to_the_database() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    let key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8s=";
    env.write("backend.infra", BACKEND);
    env.write("state.infra", "state {\n  encryption {\n    key = env(\"INFRA_STATE_KEY\")\n  }\n}\n");
    env.write("main.infra", &file_config("db-visible-value"));
    let with_key = |key: &str, args: &[&str]| -> Run {
        pg.command(&env, args).env("INFRA_STATE_KEY", key).output().expect("run infra").into()
    };
    with_key(key, &["apply", "-auto-approve"]).success();
    env.write("main.infra", &file_config("db-second-value"));
    with_key(key, &["apply", "-auto-approve"]).success();

    let stored = pg.sql(
        "SELECT convert_from(body, 'UTF8') FROM infra.state_versions UNION ALL \
         SELECT convert_from(entry, 'UTF8') FROM infra.state_journal",
    );
    assert!(stored.contains("infra_encrypted"), "{stored}");
    for hidden in ["db-visible-value", "db-second-value", "file.motd"] {
        assert!(!stored.contains(hidden), "the database sees {hidden}:\n{stored}");
    }
    let history = with_key(key, &["state", "history"]).success().stdout;
    let first: String = history.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("a serial").into();
    let old = with_key(key, &["state", "pull", "-serial", &first]).success().stdout;
    assert!(old.contains("\"serial\""), "every version opens with the key:\n{old}");
    assert_eq!(with_key(key, &["plan", "-detailed-exitcode"]).code, 0);
    let wrong = with_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &["plan"]).failure();
    assert!(TestEnv::flat(&wrong.stderr).contains("it was encrypted with another key"), "{}", wrong.stderr);
}

#[test]
fn reading_commands_leave_a_database_nothing_was_written_to_untouched() {
    let pg = Postgres::start();
    let env = TestEnv::new();
    env.write("backend.infra", BACKEND);
    env.write("main.infra", &file_config("one"));
    let schema_exists = || pg.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'infra'");
    for command in [&["validate"][..], &["graph"], &["show"], &["output"], &["state", "list"], &["env", "list"]] {
        pg.infra(&env, command).success();
        assert_eq!(schema_exists(), "0", "`infra {}` made the schema", command.join(" "));
    }
    let history = pg.infra(&env, &["state", "history"]).success().stdout;
    assert!(history.contains("No state versions yet"), "{history}");
    assert_eq!(schema_exists(), "0", "`infra state history` made the schema");
    pg.infra(&env, &["apply", "-auto-approve"]).success();
    assert_eq!(schema_exists(), "1", "the first write makes it");
    assert_eq!(pg.infra(&env, &["state", "list"]).success().stdout.trim(), "file.motd");
}
