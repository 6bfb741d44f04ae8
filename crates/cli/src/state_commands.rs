//! Commands about where state lives rather than what it describes: `infra state`
//! (list, show, mv, rm, history, pull, push, rollback), `infra env` and `infra init`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use infra_core::ResourceAddress;
use infra_core::state::{
    Backend, DEFAULT_ENVIRONMENT, Encryption, LockGuard, State, StateStore, decode, encode, manage,
};
use infra_syntax::Code;

use crate::args::{EnvCommand, Global, InitArgs, StateCommand};
use crate::backend::{Record, Selected, select_environment};
use crate::context::{config_dir, host, lock_info, open_state, parse_addresses};
use crate::render::{self, paint};
use crate::report::{CliError, Outcome, Status};

fn lock(store: &dyn StateStore, operation: &str) -> Result<Box<dyn LockGuard>, CliError> {
    crate::context::lock(store, operation, Duration::ZERO)
}

fn address(text: &str) -> Result<ResourceAddress, CliError> {
    Ok(parse_addresses(&[text.to_string()])?.remove(0))
}

pub fn state_command(global: &Global, command: StateCommand) -> Outcome {
    let (_, store) = open_state(global)?;
    let store = store.as_ref();
    let mutating = matches!(
        command,
        StateCommand::Mv { .. }
            | StateCommand::Rm { .. }
            | StateCommand::Push { .. }
            | StateCommand::Rollback { .. }
            | StateCommand::Rekey
    );
    let _lock = if mutating { Some(lock(store, "state")?) } else { None };
    let stored = store.load()?;
    let exists = stored.is_some();
    let mut state = stored.unwrap_or_default();
    match command {
        StateCommand::List => {
            for address in state.resources.keys() {
                println!("{address}");
            }
        }
        StateCommand::Show { address: text } => {
            let address = address(&text)?;
            manage::find(&state, &address)?;
            let single = State {
                resources: [(address.clone(), state.resources[&address].clone())].into(),
                outputs: Default::default(),
                providers: Default::default(),
                ..state.clone()
            };
            print!("{}", render::human::state(&single, paint(global)));
        }
        StateCommand::Mv { source, destination } => {
            let (from, to) = (address(&source)?, address(&destination)?);
            manage::move_resource(store, &mut state, &from, &to)?;
            println!("Moved {from} to {to}.");
        }
        StateCommand::Rm { addresses } => {
            let found = parse_addresses(&addresses)?;
            manage::remove_resources(store, &mut state, &found)?;
            println!("Removed {} resource(s) from state; the real objects were left alone.", found.len());
        }
        StateCommand::History => history(store)?,
        StateCommand::Pull { serial: None } => {
            let _ = std::io::stdout().write_all(&encode(&state));
        }
        StateCommand::Pull { serial: Some(wanted) } => {
            let _ = std::io::stdout().write_all(&encode(&store.load_version(wanted)?));
        }
        StateCommand::Push { file, force } => push(store, exists.then_some(&state), &file, force)?,
        StateCommand::Rollback { serial: wanted } => {
            let version = manage::rollback(store, &state, wanted)?;
            println!(
                "Rolled back to version {wanted}: it is now the current state, serial {}. Run `infra plan` to see \
                 how the real world differs from it.",
                version.serial
            );
        }
        StateCommand::Rekey if !exists => println!("No state to write again in this environment."),
        StateCommand::Rekey => {
            let serial = state.serial;
            manage::save_next(store, &mut state, serial)?;
            println!(
                "Wrote the state again as serial {} with the configuration's current key. Earlier versions and \
                 backups keep the key they were written with.",
                state.serial
            );
        }
    }
    Ok(Status::Ok)
}

fn history(store: &dyn StateStore) -> Result<(), CliError> {
    let versions = store.history()?;
    if versions.is_empty() {
        println!("No state versions yet in {}.", store.describe());
        return Ok(());
    }
    println!("{:>7}  {:<20}  {:<24}  {:>9}  {:<12}  lineage", "serial", "written", "by", "resources", "checksum");
    let mut previous: Option<&str> = None;
    for v in &versions {
        let lineage = if previous == Some(v.lineage.as_str()) { "" } else { v.lineage.as_str() };
        let checksum: String = v.checksum.chars().take(12).collect();
        println!("{:>7}  {:<20}  {:<24}  {:>9}  {:<12}  {lineage}", v.serial, v.created, v.who, v.resources, checksum);
        previous = Some(&v.lineage);
    }
    Ok(())
}

/// `infra state push FILE` (the rules are `manage::push`).
fn push(store: &dyn StateStore, current: Option<&State>, file: &Path, force: bool) -> Result<(), CliError> {
    let bytes = std::fs::read(file).map_err(|e| CliError::message(format!("cannot read {}: {e}", file.display())))?;
    let pushed = decode(&file.display().to_string(), &bytes)?;
    match manage::push(store, current, pushed, &file.display().to_string(), force)? {
        manage::Pushed::Identical => {
            println!("The state is already identical to {}; nothing pushed.", file.display());
        }
        manage::Pushed::Written(serial) => {
            println!("Pushed {} to {} (serial {serial}).", file.display(), store.describe());
        }
    }
    Ok(())
}

pub fn env_command(global: &Global, command: EnvCommand) -> Outcome {
    let dir = config_dir(global);
    let (config, diagnostics) = infra_lang::load(&dir);
    if diagnostics.iter().any(|d| matches!(d.code, Code::Syntax | Code::Backend)) {
        return Err(CliError::Config { sources: config.sources, diagnostics });
    }
    // The selected environment may be the one being created: open as default.
    let as_default = Global { environment: Some(DEFAULT_ENVIRONMENT.into()), ..global.clone() };
    let Selected { backend, .. } = Selected::open(&as_default, &config, &host(&dir, ""), &dir)?;
    let current = crate::backend::selected_environment(global, &dir)?;
    match command {
        EnvCommand::Show => println!("{current}"),
        EnvCommand::List => {
            let mut names = backend.environments()?;
            names.extend([DEFAULT_ENVIRONMENT.to_string(), current.clone()]);
            names.sort();
            names.dedup();
            for name in names {
                println!("{} {name}", if name == current { "*" } else { " " });
            }
        }
        EnvCommand::New { name } => {
            infra_core::state::check_environment_name(&name)?;
            if backend.has_environment(&name)? {
                return Err(CliError::with_help(
                    format!("environment `{name}` already exists"),
                    format!("select it with `infra env select {name}`"),
                ));
            }
            let store = backend.store(&name)?;
            let _lock = lock(store.as_ref(), "env new")?;
            store.save(&State::new())?;
            select_environment(&dir, &name)?;
            println!("Created and selected environment `{name}`. It is empty: `infra apply` builds it from nothing.");
        }
        EnvCommand::Select { name } => {
            infra_core::state::check_environment_name(&name)?;
            if !backend.has_environment(&name)? {
                return Err(CliError::with_help(
                    format!("environment `{name}` does not exist"),
                    format!("create it with `infra env new {name}`"),
                ));
            }
            select_environment(&dir, &name)?;
            println!("Selected environment `{name}`.");
        }
        EnvCommand::Delete { name, force } => delete_environment(backend.as_ref(), &name, &current, force)?,
    }
    Ok(Status::Ok)
}

fn delete_environment(backend: &dyn Backend, name: &str, current: &str, force: bool) -> Result<(), CliError> {
    if name == DEFAULT_ENVIRONMENT {
        return Err(CliError::message("the default environment cannot be deleted"));
    }
    if name == current {
        return Err(CliError::with_help(
            format!("environment `{name}` is selected"),
            "select another one first: `infra env select default`",
        ));
    }
    if !backend.has_environment(name)? {
        return Err(CliError::message(format!("environment `{name}` does not exist")));
    }
    let store = backend.store(name)?;
    let _lock = lock(store.as_ref(), "env delete")?;
    let managed = store.load()?.map_or(0, |s| s.resources.len());
    if managed > 0 && !force {
        return Err(CliError::with_help(
            format!("environment `{name}` still manages {managed} resource(s)"),
            format!(
                "destroy them first (`infra -env {name} destroy`), or -force to forget them and leave them running"
            ),
        ));
    }
    backend.delete_environment(name)?;
    println!("Deleted environment `{name}`.");
    Ok(())
}

pub fn init(global: &Global, args: &InitArgs) -> Outcome {
    let dir = config_dir(global);
    let (config, diagnostics) = infra_lang::load(&dir);
    if diagnostics.iter().any(infra_syntax::Diagnostic::is_error) {
        return Err(CliError::Config { sources: config.sources, diagnostics });
    }
    let wanted = Record::of(&config);
    let recorded = Record::read(&dir)?;
    let host = host(&dir, "");
    let config_error = |diagnostics| CliError::Config { sources: config.sources.clone(), diagnostics };
    let encryption = crate::backend::encryption(&config, &host, &dir).map_err(config_error)?;
    let new_backend = crate::backend::build(config.root().backends.first(), encryption.clone(), global, &host, &dir)
        .map_err(config_error)?;
    match recorded {
        Some(old) if old != wanted && args.migrate_state => {
            let old_backend = old_backend(&old, encryption, global, &host, &dir)?;
            migrate(old_backend.as_ref(), new_backend.as_ref(), args.force_copy)?;
        }
        Some(old) if old != wanted && !args.reconfigure => {
            return Err(CliError::with_help(
                format!("the backend changed from the recorded {} to the {}", old.describe(), wanted.describe()),
                "-migrate-state copies every environment's state across; -reconfigure uses the new backend as it is",
            ));
        }
        _ => {}
    }
    wanted.write(&dir)?;
    println!("infra is initialised: state is kept in {}.", new_backend.describe());
    Ok(Status::Ok)
}

/// The backend a record describes, its block parsed again and evaluated now
/// (with today's environment variables: the password was never written down).
fn old_backend(
    record: &Record,
    encryption: Option<Arc<Encryption>>,
    global: &Global,
    host: &infra_lang::Host,
    dir: &Path,
) -> Result<Box<dyn Backend>, CliError> {
    if record.block.is_empty() {
        return crate::backend::build(None, encryption, global, host, dir)
            .map_err(|_| CliError::message("the local backend"));
    }
    let mut sources = infra_syntax::SourceMap::new();
    let id = sources.add(dir.join(".infra/backend.json"), record.block.as_str());
    let parsed = infra_syntax::parse(id, &record.block)
        .map_err(|diagnostics| CliError::Config { sources: sources.clone(), diagnostics })?;
    let block = parsed.body.blocks().next().ok_or_else(|| CliError::message("the recorded backend block is empty"))?;
    let label = block.labels.first().ok_or_else(|| CliError::message("the recorded backend block has no kind"))?;
    let backend = infra_lang::BackendBlock { kind: label.clone(), body: block.body.clone(), span: block.span };
    crate::backend::build(Some(&backend), encryption, global, host, dir)
        .map_err(|diagnostics| CliError::Config { sources, diagnostics })
}

/// Copies every environment's latest state from `old` to `new` (the rules are
/// `manage::migrate`), telling the user about each.
fn migrate(old: &dyn Backend, new: &dyn Backend, force: bool) -> Result<(), CliError> {
    let lock = || lock_info("init -migrate-state");
    let count = manage::migrate(old, new, force, &lock, &mut |name, migrated| match migrated {
        manage::Migrated::AlreadyThere { serial } => println!("  {name}: already there (serial {serial})"),
        manage::Migrated::Copied { serial, resources } => {
            println!("  {name}: copied (serial {serial}, {resources} resources)");
        }
    })?;
    println!(
        "Copied {count} environment(s) from {} to {}. The old copy was left in place.",
        old.describe(),
        new.describe()
    );
    Ok(())
}
