//! Connections kept open between runs, as OpenSSH's `ControlPersist` (which
//! Ansible turns on by default) keeps them: the first run that needs a server
//! starts a *keeper*, a detached `infra` process that logs in once and serves
//! that login to every later run over a private unix socket, until it has been
//! idle for a while (60 s unless `INFRA_SSH_PERSIST` says otherwise; `0` turns
//! this off). A run then starts without a handshake: a re-check of a fleet
//! costs its commands, not its logins.
//!
//! Invariants:
//! - A keeper is found by a name derived from everything that decides a login
//!   (host, port, user, key file, host-key policy, bastion chain, infra's
//!   protocol): a run never borrows a login its own settings would not make.
//! - Its socket lives in a directory only this user can enter (0700, checked),
//!   and it serves only peers of its own uid.
//! - A keeper only keeps a login as the target's own user; a bootstrap login
//!   (an account still to be created) is never kept, so each run tries the
//!   user first, as without keepers. The keeper's own try counts as the run's:
//!   when the server refuses the user, the run logs in as the bootstrap user
//!   alone, without asking for the user again.
//! - A request the keeper could not start on the server (its connection had
//!   gone) is sent again on a connection of the run's own: a stale keeper
//!   never fails a run.
//! - A fresh login that must be proven (`Pool::probe`) never goes through a
//!   keeper.

mod keeper;
pub(crate) mod wire;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use infra_core::ProviderError;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::target::{Output, Target};
pub use keeper::serve;
use wire::{Reply, Request};

/// The environment variable that sets how long a kept connection outlives its
/// last use, in seconds (`0`: never keep one).
pub const PERSIST_VARIABLE: &str = "INFRA_SSH_PERSIST";
const DEFAULT_IDLE: Duration = Duration::from_secs(60);
const KEEPER_START_TIMEOUT: Duration = Duration::from_secs(90);

/// Set once by the binary: the program to start as a keeper, and for how long
/// keepers stay idle. Unset (a library user, a keeper itself), every
/// connection is the run's own.
static KEEPERS: OnceLock<Keepers> = OnceLock::new();

#[derive(Debug, Clone)]
struct Keepers {
    /// The program and the arguments that make it serve as a keeper.
    program: PathBuf,
    arguments: Vec<String>,
    idle: Duration,
}

/// Turns kept connections on for this process: `program arguments...` must
/// run [`serve`]. The idle time comes from `INFRA_SSH_PERSIST`; a value that is
/// not a whole number of seconds is an error naming the variable.
pub fn enable(program: PathBuf, arguments: Vec<String>) -> Result<(), String> {
    let idle = match std::env::var(PERSIST_VARIABLE) {
        Err(_) => DEFAULT_IDLE,
        Ok(text) => Duration::from_secs(text.trim().parse::<u64>().map_err(|_| {
            format!("{PERSIST_VARIABLE}={text:?} is not a number of seconds (0 turns kept SSH connections off)")
        })?),
    };
    if !idle.is_zero() {
        let _ = KEEPERS.set(Keepers { program, arguments, idle });
    }
    Ok(())
}

/// What a run tells the keeper it starts (on its standard input).
#[derive(Serialize, Deserialize)]
struct Assignment {
    target: Target,
    socket: PathBuf,
    idle_seconds: u64,
}

/// What a keeper answers once its login is done or refused (one line on its
/// standard output).
#[derive(Serialize, Deserialize)]
enum Started {
    Ready {
        host_key: String,
    },
    /// The server refused the target's own user, and the target has a
    /// bootstrap user: a login the keeper does not keep, so the run makes it.
    Bootstrap(Refusal),
    Refused(Refusal),
}

/// A refused login, as a keeper reports it.
#[derive(Serialize, Deserialize)]
struct Refusal {
    kind: u8,
    attribute: Option<String>,
    message: String,
}

impl From<ProviderError> for Refusal {
    fn from(e: ProviderError) -> Refusal {
        Refusal { kind: wire::kind_code(e.kind), attribute: e.attribute, message: e.message }
    }
}

impl From<Refusal> for ProviderError {
    fn from(r: Refusal) -> ProviderError {
        ProviderError { kind: wire::kind_from_code(r.kind), message: r.message, attribute: r.attribute }
    }
}

/// How a run reaches a server.
pub(crate) enum Reached {
    /// Through a keeper's kept login.
    Kept(Keeper),
    /// With a login of the run's own: keepers are off, or none could start.
    Own,
    /// As the bootstrap user, with a login of the run's own: the server
    /// refused the target's user (this error) when the keeper asked.
    AsBootstrap(ProviderError),
}

/// A keeper serving this run.
#[derive(Debug)]
pub(crate) struct Keeper {
    socket: PathBuf,
    pub host_key: String,
}

/// Why a request through a keeper did not give an answer.
pub(crate) enum KeptError {
    /// The keeper or its connection is gone and the request never reached
    /// the server: the run may send it on a connection of its own.
    Gone,
    Failed(ProviderError),
}

/// The keeper for `target`: one already running, else a new one, started and
/// logged in; or how the run logs in itself. An error when the login itself
/// was refused.
pub(crate) async fn reach(target: &Target) -> Result<Reached, ProviderError> {
    let Some(keepers) = KEEPERS.get() else { return Ok(Reached::Own) };
    let Some(socket) = socket_path(target) else { return Ok(Reached::Own) };
    if let Some(keeper) = greet(&socket).await {
        return Ok(Reached::Kept(keeper));
    }
    start(keepers, target, socket).await
}

/// Asks a running keeper whether its connection is alive.
async fn greet(socket: &Path) -> Option<Keeper> {
    let mut stream = UnixStream::connect(socket).await.ok()?;
    wire::send_request(&mut stream, &Request::Hello).await.ok()?;
    let reply = tokio::time::timeout(Duration::from_secs(5), wire::read_reply(&mut stream)).await.ok()?.ok()?;
    match reply {
        Reply::Greeting { alive: true, host_key } => Some(Keeper { socket: socket.to_path_buf(), host_key }),
        _ => None,
    }
}

/// Starts a keeper for `target` and waits for its login.
async fn start(keepers: &Keepers, target: &Target, socket: PathBuf) -> Result<Reached, ProviderError> {
    let assignment =
        Assignment { target: target.clone(), socket: socket.clone(), idle_seconds: keepers.idle.as_secs() };
    let Ok(assignment) = serde_json::to_vec(&assignment) else { return Ok(Reached::Own) };
    let mut command = tokio::process::Command::new(&keepers.program);
    command
        .args(&keepers.arguments)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        // Its own process group: a Ctrl-C meant for the run does not end the
        // keeper in the middle of another run's command.
        .process_group(0)
        .kill_on_drop(false);
    let Ok(mut child) = command.spawn() else { return Ok(Reached::Own) };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else { return Ok(Reached::Own) };
    if stdin.write_all(&assignment).await.is_err() {
        return Ok(Reached::Own);
    }
    drop(stdin);
    let mut line = String::new();
    // The keeper's own login is bounded (handshake and authentication, 15 s
    // each, with a bastion's before them); this bound only guards against a
    // keeper that hangs for another reason.
    let answer =
        tokio::time::timeout(KEEPER_START_TIMEOUT, tokio::io::BufReader::new(stdout).read_line(&mut line)).await;
    // Reaps the keeper if it exits early; a serving keeper outlives the run.
    tokio::spawn(async move { child.wait().await });
    if !matches!(answer, Ok(Ok(n)) if n > 0) {
        return Ok(Reached::Own);
    }
    match serde_json::from_str::<Started>(&line) {
        Ok(Started::Ready { host_key }) => Ok(Reached::Kept(Keeper { socket, host_key })),
        Ok(Started::Refused(refusal)) => Err(refusal.into()),
        Ok(Started::Bootstrap(refusal)) => Ok(Reached::AsBootstrap(refusal.into())),
        Err(_) => Ok(Reached::Own),
    }
}

impl Keeper {
    /// Runs `command` (quoted, sudo included) on the keeper's connection.
    pub async fn exec(&self, command: &str, stdin: &[u8]) -> Result<Output, KeptError> {
        let request = Request::Exec { command: command.to_string(), stdin: stdin.to_vec() };
        let mut stream = self.request(&request).await?;
        match wire::read_reply(&mut stream).await {
            Ok(Reply::Output { code, stdout, stderr }) => Ok(Output { code, stdout, stderr }),
            other => Err(self.failure(other)),
        }
    }

    /// A byte stream to the unix socket `path` on the server, relayed by the keeper.
    pub async fn open_socket(&self, path: &str) -> Result<UnixStream, KeptError> {
        let mut stream = self.request(&Request::Socket { path: path.to_string() }).await?;
        match wire::read_reply(&mut stream).await {
            Ok(Reply::SocketOpen) => Ok(stream),
            other => Err(self.failure(other)),
        }
    }

    /// Sends `request` on a new connection to the keeper. A keeper that does
    /// not answer has gone (idle, or its server went away).
    async fn request(&self, request: &Request) -> Result<UnixStream, KeptError> {
        let mut stream = UnixStream::connect(&self.socket).await.map_err(|_| KeptError::Gone)?;
        wire::send_request(&mut stream, request).await.map_err(|_| KeptError::Gone)?;
        Ok(stream)
    }

    fn failure(&self, reply: std::io::Result<Reply>) -> KeptError {
        match reply {
            Ok(Reply::Error { started: false, .. }) => KeptError::Gone,
            Ok(Reply::Error { kind, attribute, message, started: true }) => {
                KeptError::Failed(ProviderError { kind, message, attribute })
            }
            // The keeper ended after it took the request: whether the command
            // ran is unknown, as when a connection of the run's own drops.
            Ok(_) | Err(_) => KeptError::Failed(ProviderError::unavailable(format!(
                "the kept SSH connection ({}) ended during a command",
                self.socket.display()
            ))),
        }
    }
}

/// Where the keeper for `target` listens, in a private directory (created
/// 0700; refused if another user owns it or could enter it). `None` when
/// there is no such place.
fn socket_path(target: &Target) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("infra-ssh"),
        None => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cache/infra/ssh"),
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).ok()?;
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    if !meta.is_dir() || meta.uid() != own_uid()? || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    Some(dir.join(format!("{}.sock", login_identity(target))))
}

/// This process's uid: the owner of its `/proc` entry.
pub(crate) fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// A name for everything that decides a login. Paths are made absolute, so
/// the same relative key path from two directories is two logins.
fn login_identity(target: &Target) -> String {
    fn absolute(path: &Option<PathBuf>) -> Option<PathBuf> {
        path.as_ref().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
    }
    fn normal(target: &Target) -> Target {
        Target {
            // sudo is part of each command, not of the login.
            sudo: false,
            private_key: absolute(&target.private_key),
            known_hosts: absolute(&target.known_hosts),
            jump: target.jump.as_ref().map(|j| Box::new(normal(j))),
            ..target.clone()
        }
    }
    let described =
        serde_json::to_vec(&(wire::PROTOCOL, env!("CARGO_PKG_VERSION"), normal(target))).unwrap_or_default();
    let digest = sha2::Sha256::digest(&described);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: 2222,
            user: "root".into(),
            private_key: Some("/keys/id".into()),
            passphrase_env: None,
            host_key: None,
            known_hosts: None,
            trust_on_first_use: true,
            sudo: false,
            bootstrap_user: None,
            jump: None,
        }
    }

    #[test]
    fn a_login_is_shared_only_by_targets_that_would_log_in_alike() {
        let base = login_identity(&target());
        assert_eq!(login_identity(&Target { sudo: true, ..target() }), base, "sudo is per command");
        for other in [
            Target { port: 2223, ..target() },
            Target { user: "admin".into(), ..target() },
            Target { private_key: Some("/keys/other".into()), ..target() },
            Target { trust_on_first_use: false, ..target() },
            Target { host_key: Some("ssh-ed25519 AAAA".into()), ..target() },
            Target { jump: Some(Box::new(target())), ..target() },
        ] {
            assert_ne!(login_identity(&other), base, "{other:?}");
        }
    }
}
