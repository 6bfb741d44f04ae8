//! The keeper process: logs in once, then serves that connection on its unix
//! socket to every run that asks, until it has been idle for its time or the
//! connection ends. Started by [`super::reach`]; `infra` runs it as a hidden
//! command with no terminal and no output but its one line of readiness.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::wire::{self, Reply, Request};
use super::{Assignment, Started};
use crate::target::Target;
use crate::{Connection, Pool};

/// Serves one assignment read from standard input; returns when the keeper's
/// work is over. Errors are for the log of whoever runs it by hand: a run
/// learns everything from the line on standard output.
pub async fn serve() -> Result<(), String> {
    let mut input = Vec::new();
    tokio::io::stdin().read_to_end(&mut input).await.map_err(|e| e.to_string())?;
    let assignment: Assignment = serde_json::from_slice(&input).map_err(|e| e.to_string())?;
    let pool = Pool::default();
    // The target's own user only: a bootstrap login is not kept, and the run
    // that asked makes it itself, told that the user was refused.
    let own_user = Target { bootstrap_user: None, ..assignment.target.clone() };
    let connection = match pool.get(&own_user).await {
        Ok(connection) => connection,
        Err(e) if assignment.target.bootstraps_after(&e) => return announce(&Started::Bootstrap(e.into())).await,
        Err(e) => return announce(&Started::Refused(e.into())).await,
    };
    let listener = listen(&assignment.socket).map_err(|e| format!("{}: {e}", assignment.socket.display()))?;
    let own = socket_identity(&assignment.socket);
    announce(&Started::Ready { host_key: connection.host_key.clone() }).await?;
    // Nothing after the login reads a relative path: leave the run's directory.
    let _ = std::env::set_current_dir("/");
    let idle = Duration::from_secs(assignment.idle_seconds);
    serve_until_idle(listener, connection, &assignment.socket, own, idle).await;
    Ok(())
}

async fn announce(started: &Started) -> Result<(), String> {
    let mut line = serde_json::to_string(started).map_err(|e| e.to_string())?;
    line.push('\n');
    let mut stdout = tokio::io::stdout();
    stdout.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
    stdout.flush().await.map_err(|e| e.to_string())
}

/// Binds under a name of its own, then renames onto the socket's name, so a
/// run never finds a half-made socket and two keepers started at once for
/// one login leave exactly one reachable (the other idles out).
fn listen(socket: &Path) -> std::io::Result<UnixListener> {
    let staging = socket.with_extension(format!("{}.new", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&staging, socket)?;
    Ok(listener)
}

/// The socket file's device and inode: whether the name still leads here.
fn socket_identity(socket: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(socket).ok().map(|m| (m.dev(), m.ino()))
}

/// Removes the socket's name if it is still this keeper's.
fn withdraw(socket: &Path, own: Option<(u64, u64)>) {
    if own.is_some() && socket_identity(socket) == own {
        let _ = std::fs::remove_file(socket);
    }
}

async fn serve_until_idle(
    listener: UnixListener,
    connection: Arc<Connection>,
    socket: &Path,
    own: Option<(u64, u64)>,
    idle: Duration,
) {
    let uid = super::own_uid();
    let active = Arc::new(AtomicUsize::new(0));
    let last_use = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // The directory already keeps others out; this is the second lock.
                if uid.is_none() || stream.peer_cred().ok().map(|c| c.uid()) != uid {
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let (connection, active, last_use) = (connection.clone(), active.clone(), last_use.clone());
                tokio::spawn(async move {
                    handle(stream, &connection).await;
                    if let Ok(mut last) = last_use.lock() {
                        *last = Instant::now();
                    }
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            }
            _ = tick.tick() => {
                let busy = active.load(Ordering::SeqCst) > 0;
                let quiet = last_use.lock().map(|l| l.elapsed() >= idle).unwrap_or(true);
                if connection.is_closed() {
                    // No new run may pick a dead connection; running requests finish.
                    withdraw(socket, own);
                    if !busy {
                        return;
                    }
                }
                let replaced = socket_identity(socket) != own;
                if !busy && (quiet || replaced) {
                    withdraw(socket, own);
                    return;
                }
            }
        }
    }
}

/// One request from a run. A run that goes away mid-command (killed) has the
/// command's channel closed, as the end of its own connection would have.
async fn handle(mut stream: UnixStream, connection: &Connection) {
    let Ok(request) = wire::read_request(&mut stream).await else { return };
    match request {
        Request::Hello => {
            let reply = Reply::Greeting { alive: !connection.is_closed(), host_key: connection.host_key.clone() };
            let _ = wire::send_reply(&mut stream, &reply).await;
        }
        Request::Exec { command, stdin } => {
            let (mut reader, mut writer) = stream.split();
            // A run sends nothing after its request: a read ends only when it has gone.
            let gone = async {
                let mut probe = [0u8; 1];
                let _ = reader.read(&mut probe).await;
            };
            let reply = match connection.exec_direct(command, &stdin, gone).await {
                Ok(output) => Reply::Output { code: output.code, stdout: output.stdout, stderr: output.stderr },
                Err(e) => Reply::error(&e.error, e.started),
            };
            // To a run that has gone, this write fails, and that is all.
            let _ = wire::send_reply(&mut writer, &reply).await;
        }
        Request::Socket { path } => match connection.open_socket_direct(&path).await {
            Ok(mut channel) => {
                if wire::send_reply(&mut stream, &Reply::SocketOpen).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut channel).await;
                }
            }
            Err(e) => {
                let started = !connection.is_closed();
                let _ = wire::send_reply(&mut stream, &Reply::error(&e, started)).await;
            }
        },
    }
}
