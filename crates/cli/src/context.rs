//! What every command starts from: the configuration directory, the host facts
//! evaluation may use, root variables, the providers built in, and the state
//! store of the selected environment (`backend.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use infra_core::state::{LockGuard, LockInfo, StateStore};
use infra_core::{ProviderRegistry, ResourceAddress, Value};
use infra_engine::{Graph, Workspace};
use infra_lang::{Config, Host};
use infra_syntax::{Code, Diagnostic};

use crate::args::{Global, VarArgs};
use crate::backend::Selected;
use crate::report::CliError;

/// A loaded, checked configuration. It does not open the state backend:
/// `validate` and `graph` never reach it; commands that need state call
/// [`Session::state_store`].
pub struct Session {
    pub config: Config,
    pub host: Host,
    pub registry: ProviderRegistry,
    /// The selected environment (`-env`, `INFRA_ENV`, `.infra/environment`).
    pub environment: String,
}

/// The providers this binary is built with. The only place that names them.
pub fn registry() -> ProviderRegistry {
    let mut registry = ProviderRegistry::new();
    registry.register("local", Arc::new(infra_provider_local::LocalFactory));
    registry.register("docker", Arc::new(infra_provider_docker::DockerFactory));
    registry.register("ssh", Arc::new(infra_provider_ssh::SshFactory));
    registry.register("aws", Arc::new(infra_provider_aws::AwsFactory));
    registry
}

/// The configuration directory: the working directory, which `-chdir` has
/// already switched (as Terraform does, so relative paths mean the same).
pub fn config_dir(_global: &Global) -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

pub fn host(dir: &Path, environment: &str) -> Host {
    Host {
        env: std::env::vars().collect(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        cwd: std::env::current_dir().unwrap_or_default(),
        root: dir.to_path_buf(),
        environment: environment.to_string(),
    }
}

/// The configuration in the working directory, loaded only to learn where its
/// state is kept (for commands that read state without planning).
pub fn open_state(global: &Global) -> Result<(Selected, Box<dyn StateStore>), CliError> {
    let dir = config_dir(global);
    let (config, diagnostics) = infra_lang::load(&dir);
    // A file that did not parse may hold the backend block: guessing would be wrong.
    if diagnostics.iter().any(|d| matches!(d.code, Code::Syntax | Code::Backend)) {
        return Err(CliError::Config { sources: config.sources, diagnostics });
    }
    let host = host(&dir, "");
    let selected = Selected::open(global, &config, &host, &dir)?;
    let store = selected.store()?;
    Ok((selected, store))
}

impl Session {
    /// Loads and checks the configuration; every problem is reported at once.
    pub fn open(global: &Global) -> Result<(Session, Graph), CliError> {
        let dir = config_dir(global);
        if !dir.is_dir() {
            return Err(CliError::message(format!("{} is not a directory", dir.display())));
        }
        let (config, mut diagnostics) = infra_lang::load(&dir);
        if config.sources.files().next().is_none() && diagnostics.is_empty() {
            return Err(CliError::with_help(
                format!("no .infra files in {}", crate::report::display_path(&dir)),
                "run infra in a directory holding a configuration, or pass -chdir DIR",
            ));
        }
        let registry = registry();
        let environment = crate::backend::selected_environment(global, &dir)?;
        let host = host(&dir, &environment);
        let session = Session { host, config, registry, environment };
        // A file that did not parse would make every reference into it look
        // unknown; otherwise check the graph too, to report every problem at once.
        let unparsed = diagnostics.iter().any(|d| d.code.is_unreadable());
        let graph = if unparsed {
            None
        } else {
            match infra_engine::build_graph(&session.config, &session.registry) {
                Ok(g) => Some(g),
                Err(e) => {
                    diagnostics.extend(e);
                    None
                }
            }
        };
        match graph {
            Some(graph) if !diagnostics.iter().any(Diagnostic::is_error) => Ok((session, graph)),
            _ => Err(session.config_error(diagnostics)),
        }
    }

    pub fn workspace(&self) -> Workspace<'_> {
        Workspace { config: &self.config, registry: &self.registry, host: &self.host }
    }

    /// Turns diagnostics into an error that can show the configuration's files.
    pub fn config_error(self, diagnostics: Vec<Diagnostic>) -> CliError {
        CliError::Config { sources: self.config.sources, diagnostics }
    }

    /// Root variables: `INFRA_VAR_name` from the environment, then `infra.infravars`
    /// and `*.auto.infravars` in the configuration directory, then `-var-file`s in
    /// order, then `-var`s; later sources win (Terraform's order, with its names).
    pub fn root_variables(&mut self, args: &VarArgs) -> Result<BTreeMap<String, Value>, Vec<Diagnostic>> {
        let types: BTreeMap<String, infra_core::Type> =
            self.config.root().variables.iter().map(|(n, v)| (n.clone(), v.ty.clone())).collect();
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        for (key, text) in &self.host.env {
            if let Some(name) = key.strip_prefix("INFRA_VAR_")
                && let Some(ty) = types.get(name)
            {
                match infra_lang::parse_cli_var(text, ty) {
                    Ok(v) => {
                        values.insert(name.to_string(), v);
                    }
                    Err(e) => errors.push(Diagnostic::error(Code::BadVariable, format!("INFRA_VAR_{name}: {e}"))),
                }
            }
        }
        let given = args.var_files.iter().map(|f| self.host.cwd.join(f));
        let environment_file = environment_var_file(&self.host.root, &self.environment);
        for file in auto_var_files(&self.host.root).into_iter().chain(environment_file).chain(given) {
            match infra_lang::load_var_file(&file, &mut self.config.sources, &self.host) {
                Ok(v) => values.extend(v),
                Err(e) => errors.extend(e),
            }
        }
        for assignment in &args.vars {
            let Some((name, text)) = assignment.split_once('=') else {
                errors.push(
                    Diagnostic::error(Code::BadVariable, format!("-var {assignment:?} has no `=`"))
                        .with_help("write -var 'name=value'"),
                );
                continue;
            };
            let ty = types.get(name).cloned().unwrap_or(infra_core::Type::Any);
            match infra_lang::parse_cli_var(text, &ty) {
                Ok(v) => {
                    values.insert(name.to_string(), v);
                }
                Err(e) => errors.push(Diagnostic::error(Code::BadVariable, format!("-var {name}: {e}"))),
            }
        }
        if errors.is_empty() { Ok(values) } else { Err(errors) }
    }

    /// The state store of the selected environment, its backend checked
    /// against the one `infra init` recorded.
    pub fn state_store(&self, global: &Global) -> Result<Box<dyn StateStore>, CliError> {
        let selected = Selected::open(global, &self.config, &host(&self.host.root, ""), &self.host.root)?;
        selected.store()
    }
}

/// Takes the state lock for `operation`, waiting up to `timeout` for a holder.
pub fn lock(store: &dyn StateStore, operation: &str, timeout: Duration) -> Result<Box<dyn LockGuard>, CliError> {
    Ok(store.lock(lock_info(operation), timeout)?)
}

/// Var files loaded without being named, like Terraform's `terraform.tfvars`
/// and `*.auto.tfvars`: `infra.infravars` first, then the others by name.
fn auto_var_files(dir: &Path) -> Vec<PathBuf> {
    let mut auto: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    auto.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".auto.infravars")));
    auto.sort();
    let default = dir.join("infra.infravars");
    if default.is_file() {
        auto.insert(0, default);
    }
    auto
}

/// `environments/NAME.infravars`: the variables of one environment, loaded after
/// the shared var files and before `-var-file`s.
fn environment_var_file(dir: &Path, environment: &str) -> Option<PathBuf> {
    Some(dir.join("environments").join(format!("{environment}.infravars"))).filter(|p| p.is_file())
}

pub fn lock_info(operation: &str) -> LockInfo {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    LockInfo::new(operation, &who, &crate::backend::hostname())
}

pub fn parse_duration(text: &str) -> Result<Duration, CliError> {
    let bad = || CliError::with_help(format!("{text:?} is not a duration"), "write durations like 0s, 30s, 5m or 1h");
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(seconds))
}

pub fn parse_addresses(texts: &[String]) -> Result<Vec<ResourceAddress>, CliError> {
    texts
        .iter()
        .map(|t| {
            t.parse().map_err(|e: infra_core::AddressParseError| {
                CliError::with_help(e.to_string(), "addresses look like file.motd, file.x[0] or module.web.file.motd")
            })
        })
        .collect()
}
