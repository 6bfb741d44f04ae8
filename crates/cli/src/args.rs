//! The command line: every command, flag and its help, defined once with clap.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Plan and apply servers, containers, firewalls and backups from reviewed .infra files.";

const LONG_ABOUT: &str = "\
infra reads every .infra file in a directory (one configuration), compares it with the
recorded state, and shows a plan of what it would create, change or destroy. `infra apply`
carries that plan out, saving state after every single resource operation.

The everyday loop:
  infra validate            check the configuration without touching anything
  infra plan                show what would change (-out plan.bin to save it for review)
  infra apply               apply, after showing the plan and asking for `yes`
  infra apply plan.bin      apply exactly a reviewed plan
  infra destroy             remove everything this configuration manages

Working as a team:
  backend \"postgres\" { conn = env(\"INFRA_PG\") } in the configuration keeps state (every
  version of it, locked while in use) in PostgreSQL; `infra init -migrate-state` moves it there.
  infra env new staging     one configuration, one state per environment (env.name in expressions)
  infra -env staging plan   work on another environment for one command (or INFRA_ENV=staging)

Servers over SSH: a login is kept open for 60 s after a run (as Ansible's ControlPersist), so
the next command within that time skips the handshake. INFRA_SSH_PERSIST=SECONDS sets the time,
INFRA_SSH_PERSIST=0 logs in afresh every run.

Flags may be written Terraform-style with one dash: `-auto-approve`, `-var name=value`.";

#[derive(Parser, Debug)]
#[command(name = "infra", version, about = ABOUT, long_about = LONG_ABOUT, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Switch to DIR before doing anything: the configuration directory, and what relative paths are relative to
    #[arg(long, global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// State file to read and write with the local backend (default: infra.state in the configuration directory)
    #[arg(long, global = true, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// The environment to work on (default: the one `infra env select` chose, else `default`)
    #[arg(long = "env", global = true, env = "INFRA_ENV", value_name = "NAME")]
    pub environment: Option<String>,
    /// Never colour the output (colour is used only on a terminal, and never when NO_COLOR is set)
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Record where state is kept (the `backend` block), or move state to a new backend
    #[command(long_about = "Record where state is kept: the configuration's `backend` block (or the local \
        default) is remembered in .infra/backend.json. When the block changes, every command stops until \
        `infra init` is run again: -migrate-state copies every environment's state from the old backend \
        to the new one (refusing to overwrite a different state there unless -force-copy), -reconfigure \
        starts using the new backend as it is. The old backend's copy is left in place.")]
    Init(InitArgs),
    /// Check the configuration: syntax, references, types, providers, cycles
    Validate,
    /// Rewrite .infra files in the canonical layout (comments kept)
    Fmt(FmtArgs),
    /// Start a new configuration in a new directory, from a starter
    #[command(long_about = "Start a new configuration in a new directory (it must not exist, or be \
        empty), as `cargo new` does. The starters are the repository's own examples: `quickstart` (a \
        web app with PostgreSQL, Redis and RabbitMQ on Docker, backed up with restic), `server` (one \
        hardened Debian server over SSH, with the hardened-server module copied in), `fleet` (many \
        hardened servers from one map, each running a container). It prints what to run next. \
        (`infra init` keeps Terraform's meaning: it chooses where state lives.)")]
    New(NewArgs),
    /// Convert another tool's configuration into .infra text
    #[command(subcommand)]
    Convert(ConvertCommand),
    /// Run the language server for editors, on standard input and output
    #[command(long_about = "Run the language server (LSP) for editors, speaking JSON-RPC on standard \
        input and output; an editor starts it, not a person. It reports what `infra validate` reports \
        as you type, completes block types, attribute names, references and functions, shows an \
        attribute's or variable's description on hover, goes to definitions, finds references and \
        formats with `infra fmt`. Setup for VS Code, Neovim and Helix: editors/README.md.")]
    Lsp,
    /// Show what apply would do; nothing is changed
    #[command(long_about = "Show what apply would do; nothing is changed.\n\n\
        Refreshes every resource in state first, so changes made outside infra show up as drift.\n\
        With -detailed-exitcode: 0 = no changes, 1 = error, 2 = changes present.")]
    Plan(PlanArgs),
    /// Apply the changes of a fresh plan, or exactly those of a saved plan file
    Apply(ApplyArgs),
    /// Destroy everything this configuration manages (asks first)
    Destroy(ApplyArgs),
    /// Report changes made outside infra: exit 2 when the real world differs from state, 0 when not
    #[command(long_about = "Report changes made outside infra, for a nightly job: the same as \
        `infra plan -refresh-only -detailed-exitcode`. Exits 0 when the real world matches state, 2 when \
        it differs (the report says how), 1 on error. `infra apply -refresh-only` accepts what was found \
        into state; `infra apply` puts the real world back as configured.")]
    Drift(DriftArgs),
    /// Show a saved plan, or the current state when no file is given
    Show(ShowArgs),
    /// Print the root module's outputs from state
    Output(OutputArgs),
    /// Print the dependency graph in Graphviz DOT format
    Graph,
    /// Adopt an existing object into state: infra import ADDRESS ID
    Import(ImportArgs),
    /// Put a resource back as it was before its last change: infra rollback container.web
    #[command(long_about = "Put a resource back as it was before its last change: a container's previous \
        image and settings, rolled out the way any change to it is (behind infra's proxy, without a failed \
        request). Shows the plan and asks first, like apply.\n\n\
        State keeps the last 3 revisions of each container, and the images they ran stay on the host \
        while they are kept. -list shows them; -to N picks an older one (1 is the newest). Rolling back \
        twice returns to where you started.\n\n\
        The configuration still describes the newer revision: the next `infra apply` rolls forward \
        again unless you change the configuration to match.")]
    Rollback(RollbackArgs),
    /// Keep one SSH login open for later runs (started by infra itself; see INFRA_SSH_PERSIST)
    #[command(name = "__keep-ssh", hide = true)]
    KeepSsh,
    /// Print an object's recent output (a container's logs)
    Logs {
        /// The resource address, e.g. container.web
        address: String,
        /// How many lines from the end
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Run a command inside an object: infra exec container.web -- ls /srv
    Exec {
        /// The resource address, e.g. container.web
        address: String,
        /// The program and its arguments, after `--`
        #[arg(last = true, required = true)]
        command: Vec<String>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Run, list, verify and check backups: infra backup run backup.etc
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Restore a backup's snapshot: infra restore backup.etc --to /srv/restored
    #[command(long_about = "Restore a backup's snapshot (the latest unless --snapshot names one) into a \
        directory on the backup's machine. Files come back under their full paths: /etc/motd backed up \
        and restored --to /srv/r lands as /srv/r/etc/motd. Restore into the original place with --to /. \
        A database backup restored without --to is loaded back into its database.")]
    Restore {
        /// The backup's address, e.g. backup.etc
        address: String,
        /// The snapshot id (from `infra backup list`); default the latest
        #[arg(long)]
        snapshot: Option<String>,
        /// The directory to restore into, on the backup's machine; a database backup without
        /// --to goes back into its database
        #[arg(long, value_name = "PATH")]
        to: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Inspect and edit state: list, show, mv, rm, history, pull, push, rollback
    #[command(subcommand)]
    State(StateCommand),
    /// Environments: one configuration, one state per environment (list, new, select, delete, show)
    #[command(subcommand)]
    Env(EnvCommand),
    /// Clear a stale lock left by a process that no longer runs
    ForceUnlock {
        /// The lock id printed when the state was found locked
        lock_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Take a snapshot now (hooks and retention as the schedule would run them)
    Run(BackupArgs),
    /// List the snapshots with their time and size
    List(BackupArgs),
    /// Check the repository (restic check --read-data), restore the latest snapshot to a scratch
    /// directory and compare it with the source; exits 1 on any damage or difference
    Verify(BackupArgs),
    /// The last scheduled runs and verifications and when the next ones are; exits 1 if one failed
    Status(BackupArgs),
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The backup's address, e.g. backup.etc
    pub address: String,
    #[command(flatten)]
    pub vars: VarArgs,
}

impl DriftArgs {
    /// `infra drift` is `infra plan -refresh-only -detailed-exitcode`.
    pub fn into_plan_args(self) -> PlanArgs {
        PlanArgs {
            vars: self.vars,
            out: None,
            format: self.format,
            full: false,
            detailed_exitcode: true,
            destroy: false,
            common: PlanCommon {
                refresh: true,
                refresh_only: true,
                target: Vec::new(),
                replace: Vec::new(),
                parallelism: 10,
                lock_timeout: self.lock_timeout,
            },
        }
    }
}

impl BackupCommand {
    /// The provider operation and the backup it acts on.
    pub fn parts(&self) -> (&'static str, &BackupArgs) {
        match self {
            BackupCommand::Run(a) => ("run", a),
            BackupCommand::List(a) => ("list", a),
            BackupCommand::Verify(a) => ("verify", a),
            BackupCommand::Status(a) => ("status", a),
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct VarArgs {
    /// Set a root variable: -var 'name=value' (lists and maps as expressions: -var 'ports=[80,443]')
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read root variables from a file of `name = value` lines (repeatable; later files win)
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
    Markdown,
}

#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// Save the plan to FILE, to apply exactly it later with `infra apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format: human (default), json (documented schema) or markdown (for pull requests)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Markdown: show every change, even past what one pull-request comment holds (60,000 characters)
    #[arg(long)]
    pub full: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan to destroy everything (what `infra destroy` would do)
    #[arg(long)]
    pub destroy: bool,
    #[command(flatten)]
    pub common: PlanCommon,
}

#[derive(Args, Debug, Clone)]
pub struct DriftArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format: human (default), json or markdown
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Wait up to this long for a held state lock, e.g. 30s or 2m (default: fail at once)
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Args, Debug, Clone)]
pub struct PlanCommon {
    /// Read the real world before planning (-refresh=false trusts state as recorded)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// Only read the real world: plan to record what changed outside infra in state, and nothing else
    #[arg(long)]
    pub refresh_only: bool,
    /// Limit the plan to ADDRESS and what it depends on (repeatable)
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Plan to replace ADDRESS even if nothing changed (repeatable)
    #[arg(long, value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// How many resource operations may run at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Wait up to this long for a held state lock, e.g. 30s or 2m (default: fail at once)
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Args, Debug, Clone)]
pub struct ApplyArgs {
    /// A plan saved with `infra plan -out FILE`: apply exactly it
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Do not ask for confirmation
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub common: PlanCommon,
}

#[derive(Args, Debug, Clone)]
pub struct RollbackArgs {
    /// The resource address, e.g. container.web
    pub address: String,
    /// Which kept revision: 1 is the one before the last change, 2 the one before that
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub to: usize,
    /// List the kept revisions and how each differs from now; change nothing
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Do not ask for confirmation
    #[arg(long)]
    pub auto_approve: bool,
    /// How many operations run at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Wait up to this long for a held state lock, e.g. 30s or 2m (default: fail at once)
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Args, Debug, Clone)]
pub struct InitArgs {
    /// Copy every environment's state from the recorded backend to the configuration's new one
    #[arg(long)]
    pub migrate_state: bool,
    /// Use the configuration's backend as it is, without copying any state
    #[arg(long, conflicts_with = "migrate_state")]
    pub reconfigure: bool,
    /// With -migrate-state: overwrite a different state already in the new backend
    #[arg(long, requires = "migrate_state")]
    pub force_copy: bool,
}

#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// List the environments; the selected one is marked with *
    List,
    /// Print the selected environment's name
    Show,
    /// Create an empty environment and select it
    New { name: String },
    /// Work on another environment from now on (-env NAME does it for one command)
    Select { name: String },
    /// Delete an environment's state (refused while it still manages resources, unless -force)
    Delete {
        name: String,
        /// Delete even though resources are recorded: they are left running, unmanaged
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct FmtArgs {
    /// Only check: exit 3 and list files that are not formatted (for CI)
    #[arg(long)]
    pub check: bool,
    /// Files or directories (default: the configuration directory)
    pub paths: Vec<PathBuf>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ConvertCommand {
    /// A docker compose file: services, builds, volumes, networks, secrets → containers, images, ...
    #[command(long_about = "Convert a docker compose file (the Compose specification) into an .infra \
        configuration for the docker provider, printed on standard output (or written with -out). What \
        compose does implicitly is written out: the project's default network, each service reachable by \
        its name, volumes and networks prefixed with the project name (a variable, default: the file's \
        directory name), ports published on every address, images pulled or built and kept on destroy. \
        Everything that could not be carried over is listed on standard error and at the top of the file, \
        with the reason. ${VAR} in the compose file becomes var.VAR.")]
    Compose(ComposeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ComposeArgs {
    /// The compose file (default: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml here)
    pub file: Option<PathBuf>,
    /// Write the configuration to this file instead of standard output (never over an existing file)
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct NewArgs {
    /// The directory to create
    pub dir: PathBuf,
    /// What to start from
    #[arg(long, value_enum, default_value_t = Starter::Quickstart)]
    pub template: Starter,
}

/// The starters `infra new` writes.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Starter {
    /// A web app, PostgreSQL, Redis and RabbitMQ on Docker, backed up with restic
    Quickstart,
    /// One hardened Debian server over SSH
    Server,
    /// Many hardened servers from one map, each running a container
    Fleet,
}

#[derive(Args, Debug, Clone)]
pub struct ShowArgs {
    pub plan_file: Option<PathBuf>,
    /// Output format for a plan: human (default), json or markdown
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Markdown: show every change, even past what one pull-request comment holds
    #[arg(long)]
    pub full: bool,
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// One output's name (default: all)
    pub name: Option<String>,
    /// Print as JSON. All outputs: sensitive values are null, marked "sensitive": true;
    /// one output by name: its value, sensitive or not (you asked for it)
    #[arg(long)]
    pub json: bool,
    /// Print a string output without quotes, for scripts
    #[arg(long)]
    pub raw: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The resource address to import into, e.g. file.motd
    pub address: String,
    /// The provider's id for the existing object (a path for local files)
    pub id: String,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Wait up to this long for a held state lock, e.g. 30s or 2m (default: fail at once)
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// List resource addresses in state
    List,
    /// Show one resource's recorded attributes (sensitive ones redacted)
    Show { address: String },
    /// Rename a resource in state without touching the real object; given two module
    /// addresses (`module.web1 'module.web["web1"]'`), everything recorded under the first
    Mv { source: String, destination: String },
    /// Forget a resource: infra stops managing it; the real object stays
    Rm { addresses: Vec<String> },
    /// List the kept versions of this environment's state (serial, time, who, checksum)
    History,
    /// Print this environment's state (the file format) to standard output
    Pull {
        /// An earlier version instead of the current one (a serial from `infra state history`)
        #[arg(long)]
        serial: Option<u64>,
    },
    /// Replace this environment's state with FILE (refused for another lineage or an older serial unless -force)
    Push {
        file: PathBuf,
        /// Push even though the lineage differs or the serial is not newer
        #[arg(long)]
        force: bool,
    },
    /// Make an earlier version (by serial, from `infra state history`) the current state again
    Rollback { serial: u64 },
    /// Write this environment's state again, sealed with the current encryption `key` (after a
    /// rotation, while the old key is still `previous_key`; or to encrypt a state written in the clear)
    Rekey,
}

/// Terraform users write `-auto-approve`; clap wants `--auto-approve`. Single-dash
/// words of two or more letters become long flags (before any `--`).
pub fn terraform_style(argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut passthrough = false;
    for (i, arg) in argv.into_iter().enumerate() {
        let text = arg.to_string_lossy();
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if text == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let is_single_dash_word = text.starts_with('-')
            && !text.starts_with("--")
            && text.len() > 2
            && text.as_bytes()[1].is_ascii_alphabetic();
        if is_single_dash_word {
            out.push(OsString::from(format!("-{text}")));
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_long_flags_are_accepted() {
        let argv: Vec<OsString> = ["infra", "apply", "-auto-approve", "-var", "a=-x", "-h", "--", "-keep"]
            .iter()
            .map(OsString::from)
            .collect();
        let rewritten: Vec<String> = terraform_style(argv).iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(rewritten, ["infra", "apply", "--auto-approve", "--var", "a=-x", "-h", "--", "-keep"]);
    }
}
