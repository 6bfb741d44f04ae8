//! Where the Docker Engine is. The local socket or a `tcp://` address is
//! reached (and pinged) when the provider is configured; an engine on a server
//! (`ssh = server.NAME`) is reached through that server's SSH connection, its
//! socket forwarded to a private local one, on first use: a plan that only
//! creates needs no engine yet, so one apply can install Docker on a fresh
//! server and then run containers there.

use bollard::Docker;
use infra_core::{ProviderError, Value};
use infra_ssh::{Pool, SocketForward, Target};
use tokio::sync::OnceCell;

/// The socket a Debian `docker.io` engine listens on.
const REMOTE_SOCKET: &str = "/var/run/docker.sock";
/// Seconds bollard waits for one API call (bollard's own default).
const API_TIMEOUT: u64 = 120;

pub enum Engine {
    /// The client and where it points (`tcp://...` or the local socket).
    Direct(Docker, String),
    OverSsh(Box<Remote>),
}

pub struct Remote {
    target: Target,
    socket: String,
    pool: Pool,
    /// The client, and the forward it talks through (kept alive with it).
    ready: OnceCell<(Docker, SocketForward)>,
}

impl Engine {
    pub async fn from_config(config: &Value) -> Result<Engine, ProviderError> {
        let text = |key: &str| config.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        if let Some(server) = config.get("ssh").filter(|v| !v.is_null()) {
            if text("host").is_some() {
                return Err(ProviderError::invalid("ssh", "set either `host` or `ssh`, not both"));
            }
            return Ok(Engine::OverSsh(Box::new(Remote {
                target: Target::from_value(server)?,
                socket: text("socket").unwrap_or(REMOTE_SOCKET).to_string(),
                pool: Pool::default(),
                ready: OnceCell::new(),
            })));
        }
        let host = text("host");
        let where_ = host.unwrap_or("the local Docker socket");
        let docker = match host {
            Some(h) => Docker::connect_with_host(h),
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(|e| unreachable(where_, &e))?;
        docker.ping().await.map_err(|e| unreachable(where_, &e))?;
        Ok(Engine::Direct(docker, where_.to_string()))
    }

    /// The API client, connecting first if the engine is on a server.
    pub async fn client(&self) -> Result<&Docker, ProviderError> {
        match self {
            Engine::Direct(docker, _) => Ok(docker),
            Engine::OverSsh(remote) => Ok(&remote.ready.get_or_try_init(|| remote.connect()).await?.0),
        }
    }
}

impl Engine {
    /// The server the engine runs on, when it is reached over SSH.
    pub fn server(&self) -> Option<String> {
        match self {
            Engine::Direct(..) => None,
            Engine::OverSsh(remote) => Some(remote.target.name()),
        }
    }

    /// Where the engine is, as errors name it.
    pub fn location(&self) -> String {
        match self {
            Engine::Direct(_, location) => location.clone(),
            Engine::OverSsh(remote) => format!("{} on {}", remote.socket, remote.target.name()),
        }
    }

    /// An error from talking to the engine, with the engine named: "stopped
    /// answering" says little when several daemons are configured.
    pub fn locate(&self, mut error: ProviderError) -> ProviderError {
        let location = self.location();
        if error.kind == infra_core::ProviderErrorKind::Unavailable && !error.message.contains(&location) {
            error.message = format!("{} (the Docker daemon at {location})", error.message);
        }
        error
    }
}

impl Remote {
    async fn connect(&self) -> Result<(Docker, SocketForward), ProviderError> {
        let connection = self.pool.get(&self.target).await?;
        let forward = SocketForward::open(connection, &self.socket).await?;
        let where_ = format!("{} on {}", self.socket, self.target.name());
        let local = forward.path().to_string_lossy().into_owned();
        let docker = Docker::connect_with_unix(&local, API_TIMEOUT, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(&where_, &e))?;
        docker.ping().await.map_err(|e| unreachable(&where_, &e))?;
        Ok((docker, forward))
    }
}

fn unreachable(where_: &str, e: &bollard::errors::Error) -> ProviderError {
    let reason = crate::util::root_cause(e);
    ProviderError::unavailable(format!("the Docker daemon at {where_} cannot be reached ({reason}). Is it running?"))
}
