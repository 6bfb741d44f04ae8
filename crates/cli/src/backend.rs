//! Where state is kept and which environment is worked on: the `backend` block
//! (the only place that names state backends), the record of it that
//! `infra init` keeps in `.infra/backend.json`, and the selected environment
//! (`-env`, `INFRA_ENV`, or `.infra/environment` written by `infra env select`).
//!
//! The record holds the block's source text, not its evaluated settings, so no
//! password is written to disk; `infra init -migrate-state` evaluates the old
//! text again to reach the old backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use infra_core::Value;
use infra_core::state::{Backend, DEFAULT_ENVIRONMENT, Encryption, LocalBackend, StateStore, check_environment_name};
use infra_lang::{BackendBlock, Config, Host};
use infra_syntax::{Code, Diagnostic};
use serde::{Deserialize, Serialize};

use crate::args::Global;
use crate::report::CliError;

pub const STATE_FILE: &str = "infra.state";
const WORK_DIR: &str = ".infra";

/// What `infra init` recorded: the backend's kind and its block as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub kind: String,
    /// The `backend` block's text; empty for the default local backend.
    pub block: String,
}

impl Record {
    /// The backend the configuration asks for now.
    pub fn of(config: &Config) -> Record {
        match config.root().backends.first() {
            Some(b) => Record { kind: b.kind.name.clone(), block: config.sources.snippet(b.span).to_string() },
            None => Record { kind: "local".into(), block: String::new() },
        }
    }

    fn path(dir: &Path) -> PathBuf {
        dir.join(WORK_DIR).join("backend.json")
    }

    /// The record `infra init` left, if any.
    pub fn read(dir: &Path) -> Result<Option<Record>, CliError> {
        let path = Record::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                CliError::with_help(
                    format!("{} is not a backend record: {e}", path.display()),
                    "run `infra init -reconfigure` to record the configuration's backend again",
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::message(format!("cannot read {}: {e}", path.display()))),
        }
    }

    pub fn write(&self, dir: &Path) -> Result<(), CliError> {
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        write_private(&Record::path(dir), &bytes)
    }

    pub fn describe(&self) -> String {
        if self.block.is_empty() { "local (the default)".into() } else { format!("{} backend", self.kind) }
    }
}

/// Writes a small file under `.infra/` (made private), replacing it whole.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |e: std::io::Error| CliError::message(format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

const ENCRYPTION_SETTINGS: [(&str, &str); 2] = [
    ("key", "32 random bytes in base64 that seal state from now on, e.g. env(\"INFRA_STATE_KEY\")"),
    ("previous_key", "the key before `key`, still accepted for reading while rotating"),
];

/// The keys `state { encryption { ... } }` gives, if the configuration has one.
pub fn encryption(config: &Config, host: &Host, dir: &Path) -> Result<Option<Arc<Encryption>>, Vec<Diagnostic>> {
    let Some(block) = config.root().state_settings.first().and_then(|s| s.encryption.as_ref()) else {
        return Ok(None);
    };
    let settings = infra_lang::eval_settings(&block.body, &ENCRYPTION_SETTINGS, host, dir, "encryption")?;
    let refused = |message: String| {
        vec![
            Diagnostic::error(Code::Encryption, message)
                .with_label(block.kind.span, "state encryption")
                .with_help("make a key with `openssl rand -base64 32` and keep it where CI and every user find it"),
        ]
    };
    let Some(key) = string_setting(&settings, "key") else {
        return Err(refused("`key` is missing or empty: state would be written in the clear".into()));
    };
    let previous = string_setting(&settings, "previous_key");
    Encryption::new(&key, previous.as_deref()).map(|e| Some(Arc::new(e))).map_err(|e| refused(e.to_string()))
}

/// Builds the backend a block (or its absence) describes, sealing state with
/// `encryption` when given. The only place that names state backends.
pub fn build(
    block: Option<&BackendBlock>,
    encryption: Option<Arc<Encryption>>,
    global: &Global,
    host: &Host,
    dir: &Path,
) -> Result<Box<dyn Backend>, Vec<Diagnostic>> {
    let default_path = || global.state.clone().unwrap_or_else(|| dir.join(STATE_FILE));
    let Some(block) = block else {
        return Ok(Box::new(LocalBackend::new(default_path()).with_encryption(encryption)));
    };
    let unreachable = |e: infra_core::state::StateError| {
        vec![Diagnostic::error(Code::Backend, e.to_string()).with_label(block.kind.span, "this backend")]
    };
    match block.kind.name.as_str() {
        "local" => {
            let settings = infra_lang::eval_settings(&block.body, &LOCAL_SETTINGS, host, dir, "backend \"local\"")?;
            let path = match string_setting(&settings, "path") {
                Some(p) if global.state.is_none() => dir.join(p),
                _ => default_path(),
            };
            Ok(Box::new(LocalBackend::new(path).with_encryption(encryption)))
        }
        "postgres" => {
            let settings = infra_lang::eval_settings(
                &block.body,
                &infra_state_postgres::SETTINGS,
                host,
                dir,
                "backend \"postgres\"",
            )?;
            let Some(conn) = string_setting(&settings, "conn") else {
                return Err(vec![
                    Diagnostic::error(Code::Backend, "backend \"postgres\" needs `conn`")
                        .with_label(block.kind.span, "no connection string")
                        .with_help("conn = env(\"INFRA_PG\"), with INFRA_PG=postgres://user:password@host/db"),
                ]);
            };
            let settings = infra_state_postgres::Settings {
                conn,
                schema: string_setting(&settings, "schema"),
                ca_file: string_setting(&settings, "ca_file").map(|f| dir.join(f)),
                encryption,
            };
            infra_state_postgres::PostgresBackend::connect(&settings, &identity())
                .map(|b| Box::new(b) as Box<dyn Backend>)
                .map_err(unreachable)
        }
        other => Err(vec![
            Diagnostic::error(Code::Backend, format!("unknown backend `{other}`"))
                .with_label(block.kind.span, "not a backend")
                .with_help("backends: local (the default, files beside the configuration), postgres (shared)"),
        ]),
    }
}

const LOCAL_SETTINGS: [(&str, &str); 1] = [("path", "the default environment's state file (default infra.state)")];

/// A string setting (an empty string counts as not set, as `env()` of an unset variable gives).
fn string_setting(settings: &BTreeMap<String, Value>, name: &str) -> Option<String> {
    match settings.get(name).map(|v| v.unmark().0) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// user@host, for lock records and the history of versions.
pub fn identity() -> String {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("{who}@{}", hostname())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The environment to work on: `-env` / `INFRA_ENV`, else the one `infra env
/// select` recorded, else `default`.
pub fn selected_environment(global: &Global, dir: &Path) -> Result<String, CliError> {
    let name = match &global.environment {
        Some(name) => name.clone(),
        None => match std::fs::read_to_string(dir.join(WORK_DIR).join("environment")) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
            _ => DEFAULT_ENVIRONMENT.to_string(),
        },
    };
    check_environment_name(&name)?;
    Ok(name)
}

pub fn select_environment(dir: &Path, name: &str) -> Result<(), CliError> {
    write_private(&dir.join(WORK_DIR).join("environment"), format!("{name}\n").as_bytes())
}

/// The backend and environment a command works with, checked: the backend is the
/// one `infra init` recorded (recorded now if nothing was), and the environment exists.
pub struct Selected {
    pub backend: Box<dyn Backend>,
    pub environment: String,
}

impl Selected {
    pub fn open(global: &Global, config: &Config, host: &Host, dir: &Path) -> Result<Selected, CliError> {
        let wanted = Record::of(config);
        let recorded = Record::read(dir)?;
        match &recorded {
            Some(recorded) if *recorded != wanted => {
                return Err(CliError::with_help(
                    format!(
                        "the configuration's backend changed (recorded: {}; now: {})",
                        recorded.describe(),
                        wanted.describe()
                    ),
                    "run `infra init -migrate-state` to copy every environment's state to the new backend, or \
                     `infra init -reconfigure` to use the new backend as it is",
                ));
            }
            _ => {}
        }
        let config_error = |diagnostics| CliError::Config { sources: config.sources.clone(), diagnostics };
        let encryption = encryption(config, host, dir).map_err(config_error)?;
        let backend = build(config.root().backends.first(), encryption, global, host, dir).map_err(config_error)?;
        // Recorded once it works, so a mistake in a first backend block is not remembered.
        if recorded.is_none() {
            wanted.write(dir)?;
        }
        let environment = selected_environment(global, dir)?;
        if !backend.has_environment(&environment)? {
            let known = backend.environments()?;
            let help = match infra_lang::did_you_mean(&environment, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`? Or create it with `infra env new {environment}`"),
                None => format!("create it with `infra env new {environment}`; `infra env list` shows those there are"),
            };
            return Err(CliError::with_help(format!("environment `{environment}` does not exist"), help));
        }
        Ok(Selected { backend, environment })
    }

    pub fn store(&self) -> Result<Box<dyn StateStore>, CliError> {
        Ok(self.backend.store(&self.environment)?)
    }
}
