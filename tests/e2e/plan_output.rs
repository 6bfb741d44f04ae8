//! Snapshots of what a reviewer sees: the plan in human, JSON and Markdown form
//! for create, no-op, update, replace, delete and drift.

use crate::support::TestEnv;

const BASE: &str = r#"
file "motd" {
  path    = "motd"
  content = <<-EOT
    Welcome to staging.
    Changes go through infra.
  EOT
}

file "config" {
  path    = "app.conf"
  content = "port = 8080\n"
  mode    = "0640"
}

random_id "suffix" {
  byte_length = 4
}
"#;

fn snapshot_all(env: &TestEnv, name: &str) {
    for (format, suffix) in [("human", "human"), ("json", "json"), ("markdown", "md")] {
        let run = env.infra(&["plan", "-format", format]).success();
        // The serial counts durable writes, and operations that finish together
        // share one: it depends on timing.
        let stable: String = env
            .stable(&run.stdout)
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("\"prior_serial\"") {
                    "  \"prior_serial\": [SERIAL],".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        insta::assert_snapshot!(format!("{name}_{suffix}"), stable);
    }
}

#[test]
fn plan_output_for_every_kind_of_change() {
    let env = TestEnv::new();
    env.write("main.infra", BASE);
    snapshot_all(&env, "create");

    env.infra(&["apply", "-auto-approve"]).success();
    // random_id's value differs per run: keep it out of the remaining snapshots.
    env.write("main.infra", &BASE.replace("random_id \"suffix\" {\n  byte_length = 4\n}\n", ""));
    env.infra(&["apply", "-auto-approve"]).success();
    snapshot_all(&env, "noop");

    let updated = BASE
        .replace("random_id \"suffix\" {\n  byte_length = 4\n}\n", "")
        .replace("Welcome to staging.", "Welcome to production.")
        .replace("\"0640\"", "\"0600\"");
    env.write("main.infra", &updated);
    snapshot_all(&env, "update");

    let replaced = updated.replace("path    = \"app.conf\"", "path    = \"app-v2.conf\"");
    env.write("main.infra", &replaced);
    snapshot_all(&env, "replace");

    let deleted = BASE.replace("random_id \"suffix\" {\n  byte_length = 4\n}\n", "").replace(
        "file \"config\" {\n  path    = \"app.conf\"\n  content = \"port = 8080\\n\"\n  mode    = \"0640\"\n}\n",
        "",
    );
    env.write("main.infra", &deleted);
    snapshot_all(&env, "delete");

    env.write("main.infra", &BASE.replace("random_id \"suffix\" {\n  byte_length = 4\n}\n", ""));
    std::fs::write(env.join("motd"), "Welcome to staging.\nSomebody was here.\n").expect("edit");
    std::fs::remove_file(env.join("app.conf")).expect("remove");
    snapshot_all(&env, "drift");
}

#[test]
fn a_firewall_plan_lists_its_rules_one_by_one() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        r#"
server "web" {
  host               = "203.0.113.10"
  trust_on_first_use = true
}

firewall "web" {
  server      = server.web
  log_dropped = true

  set "office" {
    elements = ["198.51.100.0/24", "203.0.113.7"]
  }

  rule "ssh" {
    port = 22
    from = ["@office"]
    rate = "10/minute"
  }

  rule "https" {
    port = [443, "8443-8445"]
  }
}
"#,
    );
    snapshot_all(&env, "firewall_create");
}
