//! Where a server is and how to log in (`Target`, read from a `server`
//! object), and what one remote command gave (`Output`): the words shared by
//! a run's own connections and the keepers that hold logins between runs.

use std::path::PathBuf;

use infra_core::{ProviderError, Value};

/// Where a server is and how to log in, as a resource's `server` attribute says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub private_key: Option<PathBuf>,
    /// The environment variable holding the private key's passphrase.
    pub passphrase_env: Option<String>,
    /// The host key in OpenSSH form, pinned by the user or recorded on first use.
    pub host_key: Option<String>,
    pub known_hosts: Option<PathBuf>,
    pub trust_on_first_use: bool,
    pub sudo: bool,
    /// Who to log in as while `user` cannot yet (a fresh server whose admin
    /// account infra is about to create): tried only when `user` is refused.
    pub bootstrap_user: Option<String>,
    /// The server to reach this one through (a bastion), itself maybe behind another.
    pub jump: Option<Box<Target>>,
}

impl Target {
    /// Reads a `server` object (the `server` resource's attributes).
    pub fn from_value(server: &Value) -> Result<Target, ProviderError> {
        let (server, _) = server.unmark();
        let text = |k: &str| server.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        let host = text("host").ok_or_else(|| ProviderError::invalid("server", "the server has no `host`"))?;
        let port = server.get("port").and_then(Value::as_number).unwrap_or(22.0);
        if !(1.0..=65535.0).contains(&port) || port.fract() != 0.0 {
            return Err(ProviderError::invalid("port", format!("port {port} is not a number from 1 to 65535")));
        }
        Ok(Target {
            host,
            port: port as u16,
            user: text("user").unwrap_or_else(|| "root".to_string()),
            private_key: text("private_key").map(|p| expand_home(&p)),
            passphrase_env: text("passphrase_env"),
            host_key: text("host_key").or_else(|| text("host_key_recorded")),
            known_hosts: text("known_hosts").map(|p| expand_home(&p)),
            trust_on_first_use: server.get("trust_on_first_use").and_then(Value::as_bool).unwrap_or(false),
            sudo: server.get("sudo").and_then(Value::as_bool).unwrap_or(false),
            bootstrap_user: text("bootstrap_user"),
            jump: match server.get("jump").filter(|j| !j.is_null()) {
                Some(jump) => Some(Box::new(Target::from_value(jump)?)),
                None => None,
            },
        })
    }

    /// Whether a login refused with `refused` is tried again as the bootstrap
    /// user: the server refused `user` itself, and a bootstrap user is set.
    pub(crate) fn bootstraps_after(&self, refused: &ProviderError) -> bool {
        refused.attribute.as_deref() == Some("user") && self.bootstrap_user.is_some()
    }

    /// `user@host:port` (`... via BASTION` behind a jump host), how messages name a server.
    pub fn name(&self) -> String {
        match &self.jump {
            Some(jump) => format!("{}@{}:{} via {}", self.user, self.host, self.port, jump.name()),
            None => format!("{}@{}:{}", self.user, self.host, self.port),
        }
    }
}

pub(crate) fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// What one remote command did.
#[derive(Debug, Default)]
pub struct Output {
    pub code: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}
