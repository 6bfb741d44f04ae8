//! Connections: one SSH connection per server (user, host, port), opened on
//! first use and shared by every resource on that server, commands multiplexed
//! on channels. The server's host key is checked strictly: against a key pinned
//! in the configuration (or recorded on first use), or a known_hosts file; a
//! key never seen is accepted only with `trust_on_first_use`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use infra_core::ProviderError;
use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use crate::persist::{self, Keeper, KeptError, Reached};
use crate::shell;
use crate::target::expand_home;
pub use crate::target::{Output, Target};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Channels open at once on one connection: sshd's MaxSessions, which hardening
/// guides set to 2, caps them; more would be refused.
const SESSIONS_PER_CONNECTION: usize = 2;
/// How long one remote command may take (a large apt-get run included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The open connections of one provider instance.
#[derive(Default)]
pub struct Pool {
    open: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Connection>>>>>,
}

impl Pool {
    /// The connection to `target`, opened on first use. Concurrent callers for
    /// the same server wait for one handshake instead of making several.
    /// A resource that pins a host key gets the shared connection only if the
    /// server presented that very key.
    pub async fn get(&self, target: &Target) -> Result<Arc<Connection>, ProviderError> {
        let cell = self.open.lock().await.entry(target.name()).or_default().clone();
        let connection = cell
            .get_or_try_init(|| async {
                match persist::reach(target).await? {
                    Reached::Kept(keeper) => Ok(Arc::new(Connection::kept(target, keeper))),
                    Reached::Own => self.open_direct(target, None).await,
                    Reached::AsBootstrap(refused) => self.open_direct(target, Some(refused)).await,
                }
            })
            .await?
            .clone();
        if let policy @ HostKeyPolicy::Pinned(pinned) = &host_key_policy(target)? {
            let presented = PublicKey::from_openssh(&connection.host_key).ok();
            if presented.as_ref().is_none_or(|p| p.key_data() != pinned.key_data()) {
                return Err(host_key_refused(target, policy, presented));
            }
        }
        Ok(connection)
    }

    /// A login of this process's own, through the target's bastion if it has
    /// one; straight as the bootstrap user when the target's user was already
    /// `refused`.
    async fn open_direct(
        &self,
        target: &Target,
        refused: Option<ProviderError>,
    ) -> Result<Arc<Connection>, ProviderError> {
        let via = match &target.jump {
            // A bastion's connection is shared like any other.
            Some(jump) => Some(Box::pin(self.get(jump)).await?),
            None => None,
        };
        let via = match &via {
            Some(bastion) => Some(Box::pin(bastion.direct()).await?),
            None => None,
        };
        match refused {
            Some(refused) => Connection::open_bootstrap(target, via, refused).await.map(Arc::new),
            None => Connection::open(target, via).await.map(Arc::new),
        }
    }
}

impl Pool {
    /// Opens and closes a new connection, bypassing the pool: proof that a
    /// fresh login still works (after the sshd settings changed, say). A
    /// daemon that is still restarting gets a few seconds; a refused login
    /// is an answer at once.
    pub async fn probe(&self, target: &Target) -> Result<(), ProviderError> {
        let bastion = match &target.jump {
            Some(jump) => Some(self.get(jump).await?),
            None => None,
        };
        let via = match &bastion {
            Some(bastion) => Some(bastion.direct().await?),
            None => None,
        };
        let mut attempts = 0;
        loop {
            // As the user itself: the bootstrap login proves nothing about it.
            match Connection::open_as(target, via).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind == infra_core::ProviderErrorKind::Unavailable && attempts < 20 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// How the presented host key is judged.
enum HostKeyPolicy {
    Pinned(PublicKey),
    KnownHosts(PathBuf),
    FirstUse,
}

struct Checker {
    policy: Arc<HostKeyPolicy>,
    host: String,
    port: u16,
    presented: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else { return Ok(false) };
        if let Ok(mut presented) = self.presented.lock() {
            *presented = Some(key.clone());
        }
        Ok(match self.policy.as_ref() {
            HostKeyPolicy::Pinned(pinned) => pinned.key_data() == key.key_data(),
            HostKeyPolicy::KnownHosts(path) => {
                russh::keys::check_known_hosts_path(&self.host, self.port, key, path).unwrap_or(false)
            }
            HostKeyPolicy::FirstUse => true,
        })
    }
}

pub struct Connection {
    transport: Transport,
    /// Who is logged in where: the server's target, or its bootstrap login.
    pub target: Target,
    /// The host key the server presented, in OpenSSH form.
    pub host_key: String,
}

enum Transport {
    /// This process's own SSH connection.
    Direct { handle: Handle<Checker>, sessions: tokio::sync::Semaphore },
    /// A login kept by a keeper process (`persist`), with a login of this
    /// process's own made only if the keeper's has gone, or a tunnel to a
    /// server behind this one needs it.
    Kept { keeper: Keeper, own: tokio::sync::OnceCell<Arc<Connection>>, pool: Pool },
}

/// Why a command on a connection of this process's own gave no output.
pub(crate) struct ExecError {
    pub error: ProviderError,
    /// Whether the command may have reached the server.
    pub started: bool,
}

impl From<ExecError> for ProviderError {
    fn from(e: ExecError) -> ProviderError {
        e.error
    }
}

/// A byte stream to a socket on a server: a channel of this process's
/// connection, or a keeper's relay of one.
pub trait SocketStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> SocketStream for T {}

/// The error of a command whose run went away (only a keeper sees it, and
/// nobody is left to read it).
fn abandoned_error(name: &str) -> ProviderError {
    ProviderError::failed(format!("{name}: the run that asked for the command has gone"))
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl Connection {
    /// Opens a connection as the target's user, or as its bootstrap user when
    /// the server refuses the first.
    async fn open(target: &Target, via: Option<&Connection>) -> Result<Connection, ProviderError> {
        match Connection::open_as(target, via).await {
            Err(e) if target.bootstraps_after(&e) => Connection::open_bootstrap(target, via, e).await,
            other => other,
        }
    }

    /// Opens a connection as the target's bootstrap user, the server having
    /// `refused` the target's own.
    async fn open_bootstrap(
        target: &Target,
        via: Option<&Connection>,
        refused: ProviderError,
    ) -> Result<Connection, ProviderError> {
        let bootstrap =
            Target { user: target.bootstrap_user.clone().unwrap_or_default(), bootstrap_user: None, ..target.clone() };
        Connection::open_as(&bootstrap, via).await.map_err(|bootstrap_error| ProviderError {
            message: format!("{}; then, as the bootstrap user: {}", refused.message, bootstrap_error.message),
            ..bootstrap_error
        })
    }

    /// Opens a connection: directly, or through a channel of the bastion's
    /// connection (`direct-tcpip`, as `ssh -J` does).
    async fn open_as(target: &Target, via: Option<&Connection>) -> Result<Connection, ProviderError> {
        let name = target.name();
        let policy = Arc::new(host_key_policy(target)?);
        let presented = Arc::new(Mutex::new(None));
        let checker = Checker {
            policy: policy.clone(),
            host: target.host.clone(),
            port: target.port,
            presented: presented.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            ..Default::default()
        });
        let handshake = async {
            match via {
                Some(bastion) => {
                    let channel = bastion
                        .handle()
                        .map_err(|_| russh::Error::Disconnect)?
                        .channel_open_direct_tcpip(target.host.clone(), u32::from(target.port), "127.0.0.1", 0)
                        .await?;
                    client::connect_stream(config, channel.into_stream(), checker).await
                }
                None => client::connect(config, (target.host.as_str(), target.port), checker).await,
            }
        };
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, handshake).await;
        let presented_key = || presented.lock().ok().and_then(|k| k.clone());
        let mut handle = match connected {
            Err(_) => {
                return Err(ProviderError::unavailable(format!(
                    "{name} is unreachable: no SSH handshake within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(russh::Error::UnknownKey)) => {
                return Err(host_key_refused(target, &policy, presented_key()));
            }
            Ok(Err(e)) => return Err(ProviderError::unavailable(format!("{name} is unreachable: {e}"))),
            Ok(Ok(handle)) => handle,
        };
        // A server that dies during authentication would otherwise be waited for.
        tokio::time::timeout(CONNECT_TIMEOUT, authenticate(&mut handle, target)).await.map_err(|_| {
            ProviderError::unavailable(format!(
                "{name} is unreachable: no answer to authentication within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })??;
        let host_key = presented_key().and_then(|k| k.to_openssh().ok()).unwrap_or_default();
        let sessions = tokio::sync::Semaphore::new(SESSIONS_PER_CONNECTION);
        Ok(Connection { transport: Transport::Direct { handle, sessions }, target: target.clone(), host_key })
    }

    fn kept(target: &Target, keeper: Keeper) -> Connection {
        let host_key = keeper.host_key.clone();
        let transport = Transport::Kept { keeper, own: tokio::sync::OnceCell::new(), pool: Pool::default() };
        Connection { transport, target: target.clone(), host_key }
    }

    /// A connection of this process's own to the same server: itself, or
    /// for a kept one, a login made now (once).
    async fn direct(&self) -> Result<&Connection, ProviderError> {
        match &self.transport {
            Transport::Direct { .. } => Ok(self),
            Transport::Kept { own, pool, .. } => {
                Ok(own.get_or_try_init(|| Box::pin(pool.open_direct(&self.target, None))).await?.as_ref())
            }
        }
    }

    fn handle(&self) -> Result<&Handle<Checker>, ProviderError> {
        match &self.transport {
            Transport::Direct { handle, .. } => Ok(handle),
            Transport::Kept { .. } => Err(self.not_own()),
        }
    }

    fn not_own(&self) -> ProviderError {
        ProviderError::failed(format!(
            "{}: a kept connection was used as one of this process's own (a defect of infra)",
            self.target.name()
        ))
    }

    /// Whether this process's own connection has ended (a kept one: never
    /// known here; its keeper answers for it).
    pub(crate) fn is_closed(&self) -> bool {
        match &self.transport {
            Transport::Direct { handle, .. } => handle.is_closed(),
            Transport::Kept { .. } => false,
        }
    }

    /// Runs `script` with bash on the server (through `sudo -n` when the server
    /// says so), `args` as its positional parameters, `stdin` as its input. User
    /// data travels only in `args` (each quoted) and `stdin`, never in the script.
    pub async fn run(&self, script: &str, args: &[&str], stdin: &[u8]) -> Result<Output, ProviderError> {
        self.exec(shell::command(self.target.sudo, script, args), stdin).await
    }

    /// The port sshd answered this connection on, as the server sees it
    /// (`$SSH_CONNECTION`, read without sudo, which would clear it): behind a
    /// port forward it differs from the port infra dialled.
    pub async fn login_port(&self) -> Result<u16, ProviderError> {
        let output = self.exec(shell::command(false, r#"printf '%s' "${SSH_CONNECTION:-}""#, &[]), &[]).await?;
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text.split_whitespace().nth(3).and_then(|p| p.parse().ok()).unwrap_or(self.target.port))
    }

    async fn exec(&self, command: String, stdin: &[u8]) -> Result<Output, ProviderError> {
        let output = match &self.transport {
            Transport::Direct { .. } => self.exec_direct(command, stdin, std::future::pending()).await?,
            Transport::Kept { keeper, .. } => match keeper.exec(&command, stdin).await {
                Ok(output) => output,
                Err(KeptError::Gone) => {
                    self.direct().await?.exec_direct(command, stdin, std::future::pending()).await?
                }
                Err(KeptError::Failed(e)) => return Err(e),
            },
        };
        if self.target.sudo && output.code == 1 && output.stderr_text().starts_with("sudo:") {
            return Err(ProviderError::failed(format!(
                "{}: sudo refused ({}); infra needs sudo without a password (NOPASSWD) for {}",
                self.target.name(),
                output.stderr_text(),
                self.target.user
            )));
        }
        Ok(output)
    }

    /// Runs a command on this process's own connection. When `abandoned`
    /// resolves first (a keeper's run went away), the command's channel is
    /// closed: the server then ends the command's input, as the end of the
    /// run's own connection would have, instead of leaving it waiting.
    pub(crate) async fn exec_direct(
        &self,
        command: String,
        stdin: &[u8],
        abandoned: impl Future<Output = ()>,
    ) -> Result<Output, ExecError> {
        let name = self.target.name();
        let not_started = |error| ExecError { error, started: false };
        let Transport::Direct { sessions, .. } = &self.transport else {
            return Err(not_started(self.not_own()));
        };
        let mut abandoned = std::pin::pin!(abandoned);
        // A command still waiting for a session when its run goes away never starts.
        let _session = tokio::select! {
            permit = sessions.acquire() => permit.map_err(|e| not_started(ProviderError::unavailable(e.to_string())))?,
            () = &mut abandoned => return Err(not_started(abandoned_error(&name))),
        };
        // A channel of a connection that died can wait forever (for window
        // space to send stdin, say): the connection's end ends the command.
        tokio::select! {
            output = self.exec_on_channel(&name, command, stdin, abandoned) => output,
            () = self.closed() => Err(ExecError {
                error: ProviderError::unavailable(format!("{name}: the connection was lost")),
                started: true,
            }),
        }
    }

    /// Resolves once the connection has ended (closed, reset, or given up by
    /// keepalive).
    async fn closed(&self) {
        while !self.is_closed() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn exec_on_channel(
        &self,
        name: &str,
        command: String,
        stdin: &[u8],
        abandoned: impl Future<Output = ()>,
    ) -> Result<Output, ExecError> {
        let lost = |e: russh::Error| ProviderError::unavailable(format!("{name}: the connection failed: {e}"));
        let mut channel = self.open_channel().await.map_err(|e| ExecError { error: lost(e), started: false })?;
        // A dropped russh channel is not closed on the server: close it here.
        let outcome = tokio::select! {
            result = self.run_on_channel(name, &mut channel, command, stdin) => Some(result),
            () = abandoned => None,
        };
        match outcome {
            Some(result) => result.map_err(|error| ExecError { error, started: true }),
            None => {
                let _ = channel.close().await;
                Err(ExecError { error: abandoned_error(name), started: true })
            }
        }
    }

    async fn run_on_channel(
        &self,
        name: &str,
        channel: &mut russh::Channel<client::Msg>,
        command: String,
        stdin: &[u8],
    ) -> Result<Output, ProviderError> {
        let lost = |e: russh::Error| ProviderError::unavailable(format!("{name}: the connection failed: {e}"));
        channel.exec(true, command).await.map_err(lost)?;
        if !stdin.is_empty() {
            channel.data_bytes(stdin.to_vec()).await.map_err(lost)?;
        }
        channel.eof().await.map_err(lost)?;
        let mut output = Output::default();
        let mut code = None;
        let collect = async {
            while let Some(message) = channel.wait().await {
                match message {
                    ChannelMsg::Data { data } => output.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => output.stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        return Err(ProviderError::failed(format!(
                            "{name}: the remote command was killed ({signal_name:?})"
                        )));
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        tokio::time::timeout(COMMAND_TIMEOUT, collect).await.map_err(|_| {
            ProviderError::unavailable(format!(
                "{name}: the remote command gave no result within {} minutes",
                COMMAND_TIMEOUT.as_secs() / 60
            ))
        })??;
        output.code =
            code.ok_or_else(|| ProviderError::unavailable(format!("{name}: the command ended without a status")))?;
        Ok(output)
    }

    /// A byte stream to the unix socket `path` on the server (a
    /// `direct-streamlocal` channel). sshd opens the socket as the logged-in
    /// user, never through sudo.
    pub async fn open_socket(&self, path: &str) -> Result<Box<dyn SocketStream>, ProviderError> {
        match &self.transport {
            Transport::Direct { .. } => Ok(Box::new(self.open_socket_direct(path).await?)),
            Transport::Kept { keeper, .. } => match keeper.open_socket(path).await {
                Ok(stream) => Ok(Box::new(stream)),
                Err(KeptError::Gone) => Ok(Box::new(self.direct().await?.open_socket_direct(path).await?)),
                Err(KeptError::Failed(e)) => Err(e),
            },
        }
    }

    pub(crate) async fn open_socket_direct(
        &self,
        path: &str,
    ) -> Result<russh::ChannelStream<client::Msg>, ProviderError> {
        match self.handle()?.channel_open_direct_streamlocal(path).await {
            Ok(channel) => Ok(channel.into_stream()),
            Err(russh::Error::ChannelOpenFailure(reason)) => Err(ProviderError::failed(format!(
                "{}: the server would not connect infra to its socket {path} ({reason:?}). sshd must allow it \
                 (`AllowStreamLocalForwarding local` and `DisableForwarding no`), the socket must exist, and \
                 {} must be allowed to open it (for Docker: root, or a member of the docker group)",
                self.target.name(),
                self.target.user
            ))),
            Err(e) => Err(ProviderError::unavailable(format!("{}: the connection failed: {e}", self.target.name()))),
        }
    }

    /// A session channel. sshd counts a closed session a moment after the
    /// close (MaxSessions), so a refusal is retried briefly before it counts.
    async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, russh::Error> {
        let mut attempts = 0;
        loop {
            let handle = self.handle().map_err(|_| russh::Error::Disconnect)?;
            match handle.channel_open_session().await {
                Err(russh::Error::ChannelOpenFailure(_)) if attempts < 40 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    /// [`Connection::run`], failing on a non-zero exit with its code and stderr.
    pub async fn run_ok(&self, what: &str, script: &str, args: &[&str], stdin: &[u8]) -> Result<Output, ProviderError> {
        let output = self.run(script, args, stdin).await?;
        if output.code != 0 {
            return Err(ProviderError::failed(format!(
                "{}: {what} failed (exit {}): {}",
                self.target.name(),
                output.code,
                output.stderr_text()
            )));
        }
        Ok(output)
    }
}

fn host_key_policy(target: &Target) -> Result<HostKeyPolicy, ProviderError> {
    if let Some(pinned) = &target.host_key {
        let key = PublicKey::from_openssh(pinned.trim())
            .map_err(|e| ProviderError::invalid("host_key", format!("host_key is not an OpenSSH public key: {e}")))?;
        return Ok(HostKeyPolicy::Pinned(key));
    }
    if target.trust_on_first_use {
        return Ok(HostKeyPolicy::FirstUse);
    }
    let path = target.known_hosts.clone().unwrap_or_else(|| expand_home("~/.ssh/known_hosts"));
    Ok(HostKeyPolicy::KnownHosts(path))
}

fn host_key_refused(target: &Target, policy: &HostKeyPolicy, presented: Option<PublicKey>) -> ProviderError {
    let name = target.name();
    let shown = presented.as_ref().map_or("(none)".to_string(), fingerprint);
    let offered = presented.and_then(|k| k.to_openssh().ok()).unwrap_or_default();
    ProviderError::failed(match policy {
        HostKeyPolicy::Pinned(pinned) => format!(
            "host key mismatch for {name}: expected {}, the server presented {shown}. \
             If the server was rebuilt, pin its new key; otherwise someone may be in the middle",
            fingerprint(pinned)
        ),
        HostKeyPolicy::KnownHosts(path) => format!(
            "the host key of {name} ({shown}) is not in {} or differs from the key recorded there. \
             Pin it with host_key = \"{offered}\", add it to known_hosts, or set trust_on_first_use = true",
            path.display()
        ),
        HostKeyPolicy::FirstUse => format!("{name} refused the connection during the key exchange"),
    })
}

async fn authenticate(handle: &mut Handle<Checker>, target: &Target) -> Result<(), ProviderError> {
    let name = target.name();
    let refused = || ProviderError {
        attribute: Some("user".into()),
        ..ProviderError::failed(format!(
            "{name}: authentication refused for user {} (is the key authorised on the server?)",
            target.user
        ))
    };
    let failed = |e: russh::Error| ProviderError::unavailable(format!("{name}: authentication failed: {e}"));
    let hash = handle.best_supported_rsa_hash().await.map_err(failed)?.flatten();
    let Some(path) = &target.private_key else {
        return authenticate_with_agent(handle, target, hash).await;
    };
    let passphrase = match &target.passphrase_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            ProviderError::invalid("passphrase_env", format!("the passphrase variable {var} is not set"))
        })?),
        None => None,
    };
    let key = russh::keys::load_secret_key(path, passphrase.as_deref()).map_err(|e| {
        ProviderError::invalid("private_key", format!("cannot load the private key {}: {e}", path.display()))
    })?;
    let result = handle
        .authenticate_publickey(target.user.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .map_err(failed)?;
    if result.success() { Ok(()) } else { Err(refused()) }
}

async fn authenticate_with_agent(
    handle: &mut Handle<Checker>,
    target: &Target,
    hash: Option<HashAlg>,
) -> Result<(), ProviderError> {
    let name = target.name();
    let mut agent = russh::keys::agent::client::AgentClient::connect_env().await.map_err(|e| {
        ProviderError::invalid(
            "private_key",
            format!("{name}: no private_key given and no ssh-agent reachable through SSH_AUTH_SOCK ({e})"),
        )
    })?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| ProviderError::unavailable(format!("{name}: ssh-agent did not list its keys: {e}")))?;
    for identity in identities {
        let key = identity.public_key().into_owned();
        let result = handle.authenticate_publickey_with(target.user.clone(), key, hash, &mut agent).await;
        if result.is_ok_and(|r| r.success()) {
            return Ok(());
        }
    }
    Err(ProviderError {
        attribute: Some("user".into()),
        ..ProviderError::failed(format!(
            "{name}: authentication refused for user {}: no key in ssh-agent was accepted",
            target.user
        ))
    })
}
