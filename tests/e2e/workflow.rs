//! The everyday loop: plan → apply → no changes → edit → exactly the edit → destroy.

use crate::support::TestEnv;

const CONFIG: &str = r#"
variable "greeting" {
  default = "hello"
}

directory "out" {
  path = "out"
}

file "motd" {
  path    = "${directory.out.path}/motd"
  content = "${var.greeting}, world\n"
}

file "numbered" {
  count   = 3
  path    = "${directory.out.path}/n${count.index}"
  content = "number ${count.index}\n"
}

output "motd" {
  value = file.motd.path
}
"#;

#[test]
fn plan_apply_edit_destroy() {
    let env = TestEnv::new();
    env.write("main.infra", CONFIG);

    let plan = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 2, "changes pending: {}", plan.stderr);
    assert!(plan.stdout.contains("Plan: 5 to add, 0 to change, 0 to destroy."), "{}", plan.stdout);
    assert!(!env.exists("out"), "plan must not change anything");

    let apply = env.infra(&["apply", "-auto-approve"]).success();
    assert!(apply.stdout.contains("Apply complete! Resources: 5 added, 0 changed, 0 destroyed."), "{}", apply.stdout);
    assert_eq!(env.read("out/motd"), "hello, world\n");
    assert_eq!(env.read("out/n2"), "number 2\n");
    assert!(apply.stdout.contains("motd = \"out/motd\""), "{}", apply.stdout);

    let again = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    env.write("main.infra", &CONFIG.replace("default = \"hello\"", "default = \"goodbye\""));
    let edit = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(edit.code, 2);
    assert!(edit.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{}", edit.stdout);
    assert!(edit.stdout.contains("# file.motd will be updated in place"), "{}", edit.stdout);
    assert!(edit.stdout.contains("- hello, world") && edit.stdout.contains("+ goodbye, world"), "{}", edit.stdout);
    assert!(!edit.stdout.contains("file.numbered"), "only the edit may show: {}", edit.stdout);

    env.infra(&["apply", "-auto-approve"]).success();
    assert_eq!(env.read("out/motd"), "goodbye, world\n");

    let destroy = env.infra(&["destroy", "-auto-approve"]).success();
    assert!(
        destroy.stdout.contains("Destroy complete! Resources: 0 added, 0 changed, 5 destroyed."),
        "{}",
        destroy.stdout
    );
    assert!(!env.exists("out"), "destroy leaves nothing behind");
    let list = env.infra(&["state", "list"]).success();
    assert_eq!(list.stdout, "");
    assert_eq!(env.infra(&["plan", "-destroy", "-detailed-exitcode"]).code, 0);
}

#[test]
fn count_shrinks_and_for_each_keys_are_stable() {
    let env = TestEnv::new();
    let config = |names: &str| {
        format!(
            "file \"site\" {{\n  for_each = toset([{names}])\n  path     = \"site-${{each.key}}\"\n  content  = each.value\n}}\n"
        )
    };
    env.write("main.infra", &config("\"a\", \"b\", \"c\""));
    env.infra(&["apply", "-auto-approve"]).success();
    env.write("main.infra", &config("\"a\", \"c\""));
    let plan = env.infra(&["plan"]).success();
    assert!(plan.stdout.contains("Plan: 0 to add, 0 to change, 1 to destroy."), "{}", plan.stdout);
    assert!(plan.stdout.contains("# file.site[\"b\"] will be destroyed"), "{}", plan.stdout);
    env.infra(&["apply", "-auto-approve"]).success();
    assert!(env.exists("site-a") && !env.exists("site-b") && env.exists("site-c"));
}

#[test]
fn apply_failure_stops_dependents_and_finishes_independent_work() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        r#"
exec "broken" {
  command = ["false"]
}

file "after_broken" {
  path       = "after"
  content    = "x"
  depends_on = [exec.broken]
}

file "independent" {
  path    = "independent"
  content = "y"
}
"#,
    );
    let run = env.infra(&["apply", "-auto-approve"]).failure();
    assert!(run.stderr.contains("exec.broken: creating failed: `false` failed with exit code 1"), "{}", run.stderr);
    assert!(env.exists("independent"), "independent work finishes");
    assert!(!env.exists("after"), "dependents do not run");
    let list = env.infra(&["state", "list"]).success();
    assert_eq!(list.stdout, "file.independent\n");
}

#[test]
fn targets_and_replace() {
    let env = TestEnv::new();
    env.write("main.infra", "file \"a\" {\n  path    = \"a\"\n  content = \"1\"\n}\n\nfile \"b\" {\n  path    = \"b\"\n  content = \"2\"\n}\n");
    let run = env.infra(&["apply", "-auto-approve", "-target", "file.a"]).success();
    assert!(run.stdout.contains("1 added"), "{}", run.stdout);
    assert!(env.exists("a") && !env.exists("b"));
    env.infra(&["apply", "-auto-approve"]).success();
    let plan = env.infra(&["plan", "-replace", "file.b"]).success();
    assert!(plan.stdout.contains("# file.b must be replaced"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."), "{}", plan.stdout);
}

#[test]
fn sensitive_values_never_print() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        r#"
variable "token" {
  sensitive = true
}

file "secret" {
  path    = "secret"
  content = var.token
}

output "token" {
  value     = var.token
  sensitive = true
}
"#,
    );
    for args in [
        &["plan", "-var", "token=hunter2-secret"][..],
        &["plan", "-var", "token=hunter2-secret", "-format", "json"],
        &["plan", "-var", "token=hunter2-secret", "-format", "markdown"],
    ] {
        let run = env.infra(args).success();
        assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"), "leaked: {}", run.stdout);
    }
    let apply = env.infra(&["apply", "-auto-approve", "-var", "token=hunter2-secret"]).success();
    assert!(!apply.stdout.contains("hunter2"), "{}", apply.stdout);
    assert_eq!(env.read("secret"), "hunter2-secret");
    let show = env.infra(&["show"]).success();
    assert!(!show.stdout.contains("hunter2"), "{}", show.stdout);
    assert!(show.stdout.contains("(sensitive value)"));
    // Asking for the output by name is asking for the secret.
    let output = env.infra(&["output", "-raw", "token"]).success();
    assert_eq!(output.stdout, "hunter2-secret");
}

#[test]
fn state_surgery_import_output_and_graph() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        "file \"a\" {\n  path    = \"a\"\n  content = \"x\"\n}\n\nfile \"b\" {\n  path    = \"b\"\n  content = file.a.id\n}\n\noutput \"b\" {\n  value = file.b.path\n}\n",
    );
    env.infra(&["apply", "-auto-approve"]).success();

    let graph = env.infra(&["graph"]).success();
    assert!(graph.stdout.starts_with("digraph infra {"), "{}", graph.stdout);
    assert!(graph.stdout.contains("\"file.b\" -> \"file.a\";"), "{}", graph.stdout);

    let json = env.infra(&["output", "-json"]).success();
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("output -json is JSON");
    assert_eq!(parsed["b"]["value"], "b");

    env.infra(&["state", "rm", "file.b"]).success();
    assert!(env.exists("b"), "state rm leaves the real object alone");
    let plan = env.infra(&["plan"]).success();
    assert!(plan.stdout.contains("# file.b will be created"), "{}", plan.stdout);

    env.infra(&["import", "file.b", "b"]).success();
    let plan = env.infra(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 0, "imported object matches: {}", plan.stdout);

    env.infra(&["state", "mv", "file.a", "file.renamed"]).success();
    assert_eq!(env.infra(&["state", "list"]).success().stdout, "file.b\nfile.renamed\n");
    let missing = env.infra(&["state", "show", "file.nope"]).failure();
    assert!(missing.stderr.contains("file.nope is not in state"), "{}", missing.stderr);
}

#[test]
fn variables_come_from_files_environment_and_flags_in_terraform_order() {
    let env = TestEnv::new();
    env.write(
        "main.infra",
        "variable \"a\" {}\nvariable \"b\" {}\nvariable \"c\" {}\nvariable \"ports\" {\n  type = list(number)\n}\n\nfile \"out\" {\n  path    = \"out\"\n  content = \"${var.a} ${var.b} ${var.c} ${join(\",\", var.ports)}\"\n}\n",
    );
    env.write(
        "infra.infravars",
        "a = \"from-default-file\"\nb = \"from-default-file\"\nc = \"from-default-file\"\nports = [1]\n",
    );
    env.write("x.auto.infravars", "b = \"from-auto-file\"\nc = \"from-auto-file\"\n");
    env.write("extra.vars", "c = \"from-var-file\"\n");
    let run = env
        .command(&["apply", "-auto-approve", "-var-file", "extra.vars", "-var", "ports=[80, 443]"])
        .env("INFRA_VAR_a", "from-env")
        .output()
        .expect("run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // The environment is the weakest source, the command line the strongest.
    assert_eq!(env.read("out"), "from-default-file from-auto-file from-var-file 80,443");
}
