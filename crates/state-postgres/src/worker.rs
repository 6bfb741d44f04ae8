//! The one connection to PostgreSQL, owned by a thread of its own.
//!
//! `StateStore` is synchronous and is called from inside infra's tokio runtime,
//! where the synchronous `postgres` client (which runs a runtime of its own)
//! must not block. So the client lives on a plain thread and every request is a
//! closure sent to it. One connection also means one session: the advisory lock
//! taken through it is held exactly as long as the connection lives, and a
//! process killed with SIGKILL loses it with its socket.

use std::sync::mpsc;
use std::thread;

use postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

type Job = Box<dyn FnOnce(&mut Client) + Send>;

pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Connects (on the worker thread, over TLS when `tls` is given) and returns
    /// once the session is ready.
    pub(crate) fn start(
        config: postgres::Config,
        tls: Option<MakeRustlsConnect>,
        setup: &'static str,
    ) -> Result<Worker, String> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = thread::Builder::new().name("infra-postgres".into()).spawn(move || {
            let connected = match tls {
                Some(tls) => config.connect(tls),
                None => config.connect(NoTls),
            };
            let mut client = match connected.and_then(|mut c| c.batch_execute(setup).map(|()| c)) {
                Ok(client) => client,
                Err(e) => {
                    let _ = ready_tx.send(Err(crate::error_text(&e)));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            for job in queue {
                job(&mut client);
            }
        });
        if let Err(e) = spawned {
            return Err(format!("cannot start a thread for the connection: {e}"));
        }
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Worker { jobs }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the connection thread ended before connecting".into()),
        }
    }

    /// Runs `request` on the connection and waits for its answer. `None` if the
    /// worker is gone (it only ends when the connection thread panicked).
    pub(crate) fn call<T, F>(&self, request: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> T + Send + 'static,
    {
        let (answer_tx, answer_rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let _ = answer_tx.send(request(client));
        });
        self.jobs.send(job).ok()?;
        answer_rx.recv().ok()
    }
}
