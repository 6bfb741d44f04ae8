//! SSH connections, shared by every provider that reaches a machine over SSH
//! (the `ssh` provider's resources, the `docker` provider's remote engines).
//!
//! Where a server is and how to log in (`target.rs`). One connection per
//! server and login (`connection.rs`), its host key judged
//! strictly; remote commands built from fixed scripts and quoted arguments
//! (`shell.rs`); a remote unix socket made reachable as a private local one
//! (`forward.rs`), which is how a Docker Engine on a server is driven; logins
//! kept open between runs by a keeper process (`persist/`).

mod connection;
mod forward;
pub mod persist;
pub mod shell;
mod target;

pub use connection::{Connection, Pool, SocketStream, fingerprint};
pub use forward::SocketForward;
pub use target::{Output, Target};
