//! A unix socket on a server made reachable as a private local one, the way
//! `ssh -L local.sock:remote.sock` does it: every local connection becomes a
//! `direct-streamlocal` channel of the server's shared connection. This is how
//! the `docker` provider talks to an engine on a server: its client connects to
//! the local socket as if the engine ran here.
//!
//! The local socket lives in a fresh directory only this user can enter
//! (0700), since whoever reaches it reaches the remote socket (for Docker, root
//! on that server).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use infra_core::ProviderError;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use crate::Connection;

/// A running forward; it stops and its local socket disappears when dropped.
pub struct SocketForward {
    local: PathBuf,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for SocketForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketForward").field("local", &self.local).finish()
    }
}

impl SocketForward {
    /// Forwards `remote` on the connection's server. One channel is opened and
    /// closed first, so a server that refuses (forwarding disabled in sshd, no
    /// such socket, no permission to open it) is reported here, clearly, and
    /// not later as a connection that closes for no visible reason.
    pub async fn open(connection: Arc<Connection>, remote: &str) -> Result<SocketForward, ProviderError> {
        drop(connection.open_socket(remote).await?);
        let dir = tempfile::Builder::new()
            .prefix("infra-ssh-")
            .tempdir()
            .map_err(|e| ProviderError::failed(format!("cannot make a directory for the local socket: {e}")))?;
        let local = dir.path().join("forward.sock");
        let listener = UnixListener::bind(&local)
            .map_err(|e| ProviderError::failed(format!("cannot listen on {}: {e}", local.display())))?;
        let remote = remote.to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let connection = connection.clone();
                let remote = remote.clone();
                tokio::spawn(async move {
                    // A channel that cannot be opened closes the client's
                    // connection, which the client reports as its own error.
                    if let Ok(mut channel) = connection.open_socket(&remote).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut channel).await;
                    }
                });
            }
        });
        Ok(SocketForward { local, task, _dir: dir })
    }

    /// The local socket to connect to.
    pub fn path(&self) -> &Path {
        &self.local
    }
}

impl Drop for SocketForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}
