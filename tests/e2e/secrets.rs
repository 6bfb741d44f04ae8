//! Secrets never show: every command a user or a CI job runs, in every format,
//! with sensitive values from a `-var`, an `INFRA_VAR_` variable, `env()` and
//! a generated `random_password`, and the saved plan file a CI job keeps as an
//! artifact. Only asking for a sensitive output by name prints it, as with
//! `terraform output -raw`.

use crate::support::{Run, TestEnv};

const CONFIG: &str = r#"
variable "token" {
  sensitive = true
}

variable "api_key" {
  sensitive = true
}

random_password "db" {
  length = 24
}

file "token" {
  path    = "token"
  content = "${var.token}/${var.api_key}"
}

file "cloud" {
  path    = "cloud.conf"
  content = "secret=${sensitive(env("INFRA_TEST_CLOUD_SECRET"))}"
}

file "db" {
  path    = "db.conf"
  content = "password=${random_password.db.result}"
}

output "token" {
  value     = var.token
  sensitive = true
}

output "db_password" {
  value     = random_password.db.result
  sensitive = true
}
"#;

const TOKEN: &str = "tok-7f3a91c2e5";
const API_KEY: &str = "key-b81d55e0aa";
const CLOUD: &str = "cloud-4c0ffee93d";

struct Secrets {
    env: TestEnv,
    /// Known once applied: the generated password.
    generated: Option<String>,
}

impl Secrets {
    fn run(&self, args: &[&str]) -> Run {
        let run = self
            .env
            .command(args)
            .env("INFRA_VAR_api_key", API_KEY)
            .env("INFRA_TEST_CLOUD_SECRET", CLOUD)
            .output()
            .expect("run infra")
            .into();
        self.assert_hidden(&format!("infra {}", args.join(" ")), &run_text(&run));
        run
    }

    fn assert_hidden(&self, what: &str, text: &str) {
        for secret in [TOKEN, API_KEY, CLOUD].into_iter().chain(self.generated.as_deref()) {
            assert!(!text.contains(secret), "{what} shows the secret {secret}:\n{text}");
        }
    }
}

fn run_text(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

#[test]
fn no_command_and_no_plan_file_shows_a_secret() {
    let mut s = Secrets { env: TestEnv::new(), generated: None };
    s.env.write("main.infra", CONFIG);
    let token = format!("token={TOKEN}");
    let var = ["-var", token.as_str()];

    for format in ["human", "json", "markdown"] {
        let args = [&["plan", "-format", format][..], &var].concat();
        s.run(&args).success();
    }
    let args = [&["plan", "-out", "plan.bin"][..], &var].concat();
    s.run(&args).success();
    let saved = std::fs::read(s.env.join("plan.bin")).expect("plan file");
    s.assert_hidden("the saved plan file", &String::from_utf8_lossy(&saved));
    for format in ["human", "json", "markdown"] {
        s.run(&["show", "-format", format, "plan.bin"]).success();
    }

    // The plan file holds no secret: apply takes them from the same inputs again.
    let refused = s.run(&["apply", "plan.bin"]).failure();
    assert!(
        run_text(&refused).contains("withholds the sensitive value of `var.token`, and none was given"),
        "{}",
        run_text(&refused)
    );
    let wrong = s.run(&["apply", "plan.bin", "-var", "token=not-the-reviewed-one"]).failure();
    assert!(
        run_text(&wrong).contains("the sensitive value of `var.token` is not the one in the reviewed plan"),
        "{}",
        run_text(&wrong)
    );
    let args = [&["apply", "plan.bin"][..], &var].concat();
    s.run(&args).success();
    assert_eq!(s.env.read("token"), format!("{TOKEN}/{API_KEY}"));
    assert_eq!(s.env.read("cloud.conf"), format!("secret={CLOUD}"));
    let generated = s.env.read("db.conf").trim_start_matches("password=").to_string();
    assert_eq!(generated.len(), 24, "{generated}");
    s.generated = Some(generated.clone());

    let args = [&["plan", "-detailed-exitcode"][..], &var].concat();
    assert_eq!(s.run(&args).code, 0, "applied as planned");
    for args in [
        &["show"][..],
        &["show", "-format", "json"],
        &["output"],
        &["output", "-json"],
        &["state", "list"],
        &["state", "show", "file.db"],
        &["state", "show", "random_password.db"],
        &["env", "list"],
    ] {
        s.run(args).success();
    }
    let args = [&["drift"][..], &var].concat();
    s.run(&args).success();
    for format in ["human", "json", "markdown"] {
        let args = [&["plan", "-refresh-only", "-format", format][..], &var].concat();
        s.run(&args).success();
        let args = [&["plan", "-destroy", "-format", format][..], &var].concat();
        s.run(&args).success();
    }
    // A change to a secret shows as a change, never as its values.
    let other = "token=tok-second-one";
    let changed = s.run(&["plan", "-var", other]).success();
    assert!(changed.stdout.contains("# file.token will be updated in place"), "{}", changed.stdout);
    assert!(!changed.stdout.contains("tok-second-one"), "{}", changed.stdout);

    // Asking for a sensitive output by name is asking for the secret.
    let asked = s.env.command(&["output", "-raw", "db_password"]).output().expect("run infra");
    assert_eq!(String::from_utf8_lossy(&asked.stdout), generated);

    let args = [&["destroy", "-auto-approve"][..], &var].concat();
    s.run(&args).success();
}

const ENCRYPTED: &str = r#"
state {
  encryption {
    key          = env("INFRA_STATE_KEY")
    previous_key = env("INFRA_STATE_KEY_OLD", "")
  }
}

random_password "db" {
  length = 20
}

file "motd" {
  path    = "motd"
  content = "plain-attribute-value"
}

output "where" {
  value = file.motd.path
}
"#;

const KEY_A: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8s=";
const KEY_B: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn with_keys(env: &TestEnv, key: Option<&str>, previous: Option<&str>, args: &[&str]) -> Run {
    let mut command = env.command(args);
    command.env_remove("INFRA_STATE_KEY").env_remove("INFRA_STATE_KEY_OLD");
    if let Some(key) = key {
        command.env("INFRA_STATE_KEY", key);
    }
    if let Some(previous) = previous {
        command.env("INFRA_STATE_KEY_OLD", previous);
    }
    command.output().expect("run infra").into()
}

#[test]
fn encrypted_state_shows_nothing_refuses_a_wrong_key_and_rotates() {
    let env = TestEnv::new();
    env.write("main.infra", ENCRYPTED);
    with_keys(&env, Some(KEY_A), None, &["apply", "-auto-approve"]).success();
    let password = with_keys(&env, Some(KEY_A), None, &["output", "-json"]).success();
    assert!(password.stdout.contains("\"where\""), "{}", password.stdout);
    let state_files = ["infra.state", "infra.state.backup"];
    with_keys(&env, Some(KEY_A), None, &["apply", "-auto-approve", "-replace", "random_password.db"]).success();
    let generated = with_keys(&env, Some(KEY_A), None, &["state", "pull"]).success().stdout;
    let result = generated.split("\"result\": \"").nth(1).and_then(|r| r.split('"').next()).expect("a password");
    for file in state_files {
        let text = env.read(file);
        for hidden in ["plain-attribute-value", "file.motd", "random_password", result] {
            assert!(!text.contains(hidden), "{file} shows {hidden}:\n{text}");
        }
    }
    let plan = with_keys(&env, Some(KEY_A), None, &["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 0, "encrypted state round-trips: {}{}", plan.stdout, plan.stderr);

    // A wrong or missing key is a clear error, and the state stays as it was.
    let before = std::fs::read(env.join("infra.state")).expect("state");
    let wrong = with_keys(&env, Some(KEY_B), None, &["apply", "-auto-approve"]).failure();
    assert!(TestEnv::flat(&wrong.stderr).contains("it was encrypted with another key"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains(KEY_A) && !wrong.stderr.contains(KEY_B), "{}", wrong.stderr);
    let missing = with_keys(&env, None, None, &["plan"]).failure();
    assert!(missing.stderr.contains("environment variable INFRA_STATE_KEY is not set"), "{}", missing.stderr);
    let not_a_key = with_keys(&env, Some("hunter2"), None, &["plan"]).failure();
    assert!(not_a_key.stderr.contains("infra::encryption"), "{}", not_a_key.stderr);
    assert!(!not_a_key.stderr.contains("hunter2"), "{}", not_a_key.stderr);
    assert_eq!(std::fs::read(env.join("infra.state")).expect("state"), before);

    // Rotation: the new key writes, the old one still reads until rekeyed.
    with_keys(&env, Some(KEY_B), Some(KEY_A), &["state", "rekey"]).success();
    assert_eq!(with_keys(&env, Some(KEY_B), None, &["plan", "-detailed-exitcode"]).code, 0);
    let old = with_keys(&env, Some(KEY_A), None, &["plan"]).failure();
    assert!(TestEnv::flat(&old.stderr).contains("it was encrypted with another key"), "{}", old.stderr);
    with_keys(&env, Some(KEY_B), None, &["destroy", "-auto-approve"]).success();
}

/// Errors say which value is wrong without showing a secret: a sensitive
/// value of the wrong shape for a provider, a `validation` message that
/// interpolates one (not shown at all, as Terraform does), and a plan saved
/// against a state that holds secrets which drifted.
#[test]
fn errors_and_plans_against_drifted_state_show_no_secret() {
    let s = Secrets { env: TestEnv::new(), generated: None };
    let token = format!("token={TOKEN}");
    let var = ["-var", token.as_str()];
    s.env.write(
        "main.infra",
        &format!("{CONFIG}\nfile \"mode\" {{\n  path    = \"m\"\n  content = \"x\"\n  mode    = var.token\n}}\n"),
    );
    let wrong_shape = s.run(&[&["plan"][..], &var].concat()).failure();
    let text = TestEnv::flat(&run_text(&wrong_shape));
    assert!(text.contains("file.mode: mode \"(sensitive value)\" is not octal"), "{text}");

    let validated = r#"
variable "pin" {
  sensitive = true

  validation {
    condition     = var.pin == "0000"
    error_message = "pin ${var.pin} is not the agreed one"
  }
}
"#;
    s.env.write("main.infra", &format!("{CONFIG}{validated}"));
    let pin = format!("pin={API_KEY}");
    let refused = s.run(&[&["plan", "-var", &pin][..], &var].concat()).failure();
    let text = TestEnv::flat(&run_text(&refused));
    assert!(text.contains("the error message includes a sensitive value, so it is not shown"), "{text}");

    s.env.write("main.infra", CONFIG);
    s.run(&[&["apply", "-auto-approve"][..], &var].concat()).success();
    let s = Secrets { generated: Some(s.env.read("db.conf").trim_start_matches("password=").to_string()), ..s };
    // Secrets in state, and a secret changed outside infra.
    s.env.write("token", "changed-by-hand");
    s.env.write("db.conf", "password=changed-by-hand");
    let args = [&["plan", "-out", "drifted.bin"][..], &var].concat();
    let plan = s.run(&args);
    assert_eq!(plan.code, 0, "{}", run_text(&plan));
    let saved = std::fs::read(s.env.join("drifted.bin")).expect("plan file");
    s.assert_hidden("the plan file saved against drifted state", &String::from_utf8_lossy(&saved));
    for format in ["human", "json", "markdown"] {
        s.run(&["show", "-format", format, "drifted.bin"]).success();
        s.run(&["show", "-format", format]).success();
    }
    s.run(&[&["apply", "drifted.bin"][..], &var].concat()).success();
    assert_eq!(s.env.read("token"), format!("{TOKEN}/{API_KEY}"));
}
