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

/// A plan too big for one pull-request comment keeps the summary, the list of
/// destroys, and as many diffs as fit, then names the rest; `-full` shows all.
#[test]
fn a_markdown_plan_fits_in_a_pull_request_comment() {
    let env = TestEnv::new();
    env.write("main.infra", "file \"doomed\" {\n  path    = \"doomed\"\n  content = \"x\"\n}\n");
    env.infra(&["apply", "-auto-approve"]).success();
    let long_line = "y".repeat(200);
    env.write(
        "main.infra",
        &format!(
            "file \"many\" {{\n  count   = 400\n  path    = \"many-${{count.index}}\"\n  content = \"{long_line}\"\n}}\n"
        ),
    );
    let bounded = env.infra(&["plan", "-format", "markdown", "-no-color"]).success().stdout;
    assert!(bounded.len() <= 60_000, "{} characters", bounded.len());
    assert!(bounded.contains("**Plan: 400 to add, 0 to change, 1 to destroy.**"), "the summary stays");
    let destroy = bounded.find("<code>file.doomed</code>").expect("the destroy is shown");
    let first_create = bounded.find("<code>file.many[").expect("some creates are shown");
    assert!(destroy < first_create, "destroys come first");
    assert!(bounded.contains("more change(s) not shown"), "a note says what is missing");
    assert!(bounded.contains("… and"), "the note itself is bounded");
    let full = env.infra(&["plan", "-format", "markdown", "-full"]).success().stdout;
    assert!(full.len() > 60_000);
    assert_eq!(full.matches("<details>").count(), 401);
    assert!(!full.contains("not shown"));
}

/// A rename, an import and a drift report, as a reviewer sees them.
#[test]
fn plan_output_for_moves_imports_and_refresh_only() {
    let env = TestEnv::new();
    let without_random = BASE.replace("random_id \"suffix\" {\n  byte_length = 4\n}\n", "");
    env.write("main.infra", &without_random);
    env.infra(&["apply", "-auto-approve"]).success();
    std::fs::write(env.join("legacy.conf"), "kept = true\n").expect("write");
    let refactored = without_random.replace("file \"config\" {", "file \"app_config\" {")
        + "\nmoved {\n  from = file.config\n  to   = file.app_config\n}\n\nfile \"legacy\" {\n  path    = \"legacy.conf\"\n  content = \"kept = true\\n\"\n}\n\nimport {\n  to = file.legacy\n  id = \"legacy.conf\"\n}\n";
    env.write("main.infra", &refactored);
    snapshot_all(&env, "moved_imported");

    env.write("main.infra", &without_random);
    std::fs::write(env.join("motd"), "Welcome to staging.\nSomebody was here.\n").expect("edit");
    for (format, suffix) in [("human", "human"), ("markdown", "md")] {
        let run = env.infra(&["plan", "-refresh-only", "-format", format]).success();
        insta::assert_snapshot!(format!("refresh_only_{suffix}"), env.stable(&run.stdout));
    }
}

const SITE_MODULE: &str = r#"
variable "name" {}

variable "port" {
  type = number
}

file "config" {
  path    = "sites/${var.name}.conf"
  content = "server_name ${var.name};\nlisten ${var.port};\n"
}

output "path" {
  value = file.config.path
}
"#;

fn sites(map: &str) -> String {
    format!(
        r#"
module "site" {{
  source   = "./site"
  for_each = {map}
  name     = each.key
  port     = each.value
}}

file "index" {{
  path    = "sites/index"
  content = "${{join("\n", [for name, site in module.site : site.path])}}\n"
}}
"#
    )
}

#[test]
fn plan_output_for_module_instances() {
    let env = TestEnv::new();
    env.write("site/main.infra", SITE_MODULE);
    env.write("main.infra", &sites("{ blog = 8080, shop = 8081 }"));
    snapshot_all(&env, "module_instances_create");
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.read("sites/index"), "sites/blog.conf\nsites/shop.conf\n");

    // One line more in the map: only that instance's resources, and what reads them.
    env.write("main.infra", &sites("{ blog = 8080, shop = 8081, wiki = 8082 }"));
    let added = env.infra(&["plan", "-no-color"]).success();
    insta::assert_snapshot!("module_instances_added", env.stable(&added.stdout));
    env.infra(&["apply", "-auto-approve"]).success();

    env.write("main.infra", &sites("{ blog = 8080, wiki = 8082 }"));
    let removed = env.infra(&["plan", "-no-color", "-detailed-exitcode"]);
    assert_eq!(removed.code, 2, "{}", removed.stderr);
    insta::assert_snapshot!("module_instances_removed", env.stable(&removed.stdout));
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(!env.exists("sites/shop.conf") && env.exists("sites/wiki.conf"));
    let state = env.infra(&["state", "list"]).success();
    assert_eq!(
        state.stdout.lines().collect::<Vec<_>>(),
        ["file.index", r#"module.site["blog"].file.config"#, r#"module.site["wiki"].file.config"#]
    );
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);
}

/// Two sites written out by hand, as a configuration starts.
const SITE_COPIES: &str = r#"
module "blog" {
  source = "./site"
  name   = "blog"
  port   = 8080
}

module "shop" {
  source = "./site"
  name   = "shop"
  port   = 8081
}
"#;

/// The same two sites from one map, each file written through its own
/// provider instance, with the moves that keep what exists.
const SITE_LOOP: &str = r#"
locals {
  sites = { blog = 8080, shop = 8081 }
}

provider "local" {
  alias    = "site"
  for_each = local.sites
}

module "site" {
  source    = "./site"
  for_each  = local.sites
  providers = { local = local.site[each.key] }
  name      = each.key
  port      = each.value
}

moved {
  from = module.blog
  to   = module.site["blog"]
}

moved {
  from = module.shop
  to   = module.site["shop"]
}
"#;

#[test]
fn moving_copies_into_a_loop_plans_no_change_and_provider_instances_show_in_the_plan() {
    let env = TestEnv::new();
    env.write("site/main.infra", SITE_MODULE);
    env.write("main.infra", SITE_COPIES);
    env.infra(&["apply", "-auto-approve"]).success();
    let before = env.read("sites/shop.conf");

    env.write("main.infra", SITE_LOOP);
    snapshot_all(&env, "copies_into_a_loop");
    let json = env.infra(&["plan", "-format", "json"]).success();
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    let providers: Vec<(String, String, String)> = json["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default().to_string();
            (text("address"), text("provider"), text("action"))
        })
        .collect();
    assert_eq!(
        providers,
        [
            (r#"module.site["blog"].file.config"#.into(), r#"local.site["blog"]"#.into(), "no_op".into()),
            (r#"module.site["shop"].file.config"#.into(), r#"local.site["shop"]"#.into(), "no_op".into()),
        ],
        "moved, and managed through the instance of each site from now on; the files do not change"
    );
    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.read("sites/shop.conf"), before);
    let state: serde_json::Value = serde_json::from_str(&env.read("infra.state")).expect("state JSON");
    let recorded: Vec<&str> =
        state["resources"].as_array().expect("resources").iter().filter_map(|r| r["provider"].as_str()).collect();
    assert_eq!(recorded, [r#"local.site["blog"]"#, r#"local.site["shop"]"#], "state records the new managers");
    let settled = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);
}

/// examples/swarm planned from nothing for two servers (no server is reached:
/// a plan that only creates needs none): the swarm, the node joining it with
/// the tokens not shown, the members, the overlay network and the service with
/// its zero-downtime update settings.
#[test]
fn plan_output_for_a_swarm() {
    let env = TestEnv::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::support::docker::copy_dir(&root.join("examples/swarm"), env.path());
    let modules = root.join("modules").display().to_string();
    env.write("main.infra", &env.read("main.infra").replace("../../modules", &modules));
    env.write(
        "swarm.auto.infravars",
        "harden = false\nmanagers = [\"s1\"]\nprivate_key = \"id_ed25519\"\nimage = \"web:2\"\n\
         servers = {\n  s1 = { host = \"192.0.2.10\", host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC6S9ej+Djldn8dAUjHyLemuQgDXx2GP7qM1ZH4rNeoy\" }\n  \
         s2 = { host = \"192.0.2.11\", host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKlgCXTGJlhufHs8RteOeJaBS8Qfq2ROY5EcwOJD0U8A\", labels = { zone = \"b\" } }\n}\n",
    );
    let plan = env.infra(&["plan", "-no-color"]).success();
    assert!(!plan.stdout.contains("SWMTKN"));
    insta::assert_snapshot!("swarm_create_human", env.stable(&plan.stdout));
}
