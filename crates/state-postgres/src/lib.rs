//! State kept in PostgreSQL, for a team that shares it.
//!
//! `backend "postgres" { conn = env("INFRA_PG") }` keeps every environment's state
//! in three tables of one schema (`infra` unless `schema` says otherwise):
//!
//! - `state_versions`: every version ever saved (environment, serial, lineage,
//!   time, who, SHA-256 checksum, the encoded state); append-only, so history is
//!   complete and any version can be loaded or rolled back to. The checksum is
//!   verified on every load.
//! - `state_journal`: resource operations recorded since the last version (one
//!   small row each, as the local journal), folded into a new version and
//!   cleared at the end of every run.
//! - `state_locks`: who holds an environment's lock. The lock itself is a
//!   session-level advisory lock (`pg_try_advisory_lock`), so it goes with the
//!   holder's connection: a process killed with SIGKILL, or a machine gone from
//!   the network (TCP keepalives, about a minute), releases it by itself, and
//!   the row is only believed while the advisory lock is held.
//!
//! The tables are created on first use, under a transaction-level advisory lock
//! so that twenty first runs at once do not race. The connection uses TLS
//! (rustls) when `conn` says `sslmode=require` or `ca_file` is set, and then the
//! server's certificate is always verified, against the system's roots and
//! `ca_file`; otherwise it is plain TCP or a Unix socket.

mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use infra_core::ResourceAddress;
use infra_core::state::{
    Backend, Encryption, LockGuard, LockInfo, State, StateError, StateStore, StateVersion, check_environment_name,
    decode_sealed, encode_journal, encode_sealed, replay_journal,
};
use postgres::Client;
use sha2::{Digest, Sha256};

use worker::Worker;

/// The attributes a `backend "postgres"` block takes.
pub const SETTINGS: [(&str, &str); 3] = [
    ("conn", "connection string: postgres://user:password@host:port/db or key=value pairs (required)"),
    ("schema", "the PostgreSQL schema that holds infra's tables (default \"infra\")"),
    ("ca_file", "PEM file of the CA that signed the server's certificate, trusted besides the system's; turns TLS on"),
];

/// What a `backend "postgres"` block says.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub conn: String,
    pub schema: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
    /// Seals every version and journal entry before it leaves the process.
    pub encryption: Option<Arc<Encryption>>,
}

/// Session settings: a dead peer's session (and so its lock) ends within about a
/// minute, and no statement waits forever.
const SESSION_SETUP: &str = "SET application_name = 'infra';
SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3;
SET statement_timeout = '5min'; SET lock_timeout = '1min';";

/// How long a refused lock is retried even with no `-lock-timeout`: the time
/// PostgreSQL takes to end the session of a holder that was just killed.
const DEAD_HOLDER_GRACE: Duration = Duration::from_secs(2);

/// Every environment's state in one PostgreSQL schema.
#[derive(Clone)]
pub struct PostgresBackend {
    shared: Arc<Shared>,
}

struct Shared {
    worker: Worker,
    schema: String,
    /// `postgres://user@host:port/db`, never the password.
    location: String,
    /// user@host, written beside every version.
    identity: String,
    encryption: Option<Arc<Encryption>>,
    /// The tables are made on the first write, so that reading (`infra show`,
    /// `state list`, a plan) leaves a database it was pointed at untouched.
    tables_made: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend").field("location", &self.shared.location).finish()
    }
}

impl PostgresBackend {
    /// Connects. The tables are made before the first write. `identity`
    /// (user@host) is recorded with every version written.
    pub fn connect(settings: &Settings, identity: &str) -> Result<PostgresBackend, StateError> {
        let schema = settings.schema.clone().unwrap_or_else(|| "infra".into());
        let bad =
            |message: String| StateError::Remote { store: "the postgres backend".into(), action: "connect", message };
        let valid_schema = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid_schema {
            return Err(bad(format!(
                "schema {schema:?} is not a plain lower-case name (letters, digits, `_`, starting with a letter)"
            )));
        }
        // The parse error would quote the string, password and all.
        let mut config: postgres::Config = settings.conn.parse().map_err(|_| {
            bad("`conn` is not a PostgreSQL connection string (postgres://user:password@host:port/db, or \
                 host=... user=... dbname=...)"
                .into())
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        let location = location(&config);
        let remote = |message: String| StateError::Remote { store: location.clone(), action: "connect", message };
        let wants_tls = config.get_ssl_mode() == postgres::config::SslMode::Require || settings.ca_file.is_some();
        let tls = if wants_tls {
            config.ssl_mode(postgres::config::SslMode::Require);
            Some(tls_connector(settings.ca_file.as_deref()).map_err(remote)?)
        } else {
            None
        };
        let worker = Worker::start(config, tls, SESSION_SETUP).map_err(remote)?;
        let backend = PostgresBackend {
            shared: Arc::new(Shared {
                worker,
                schema,
                location,
                identity: identity.into(),
                encryption: settings.encryption.clone(),
                tables_made: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        Ok(backend)
    }

    /// Makes the schema and tables if this process has not yet (idempotent, and
    /// serialised between processes by a transaction-level advisory lock).
    fn make_tables(&self) -> Result<(), StateError> {
        use std::sync::atomic::Ordering;
        if self.shared.tables_made.load(Ordering::SeqCst) {
            return Ok(());
        }
        let ddl = self.schema_sql();
        self.run("create its tables", move |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key("infra-schema", "")])?;
            tx.batch_execute(&ddl)?;
            tx.commit()
        })?;
        self.shared.tables_made.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn schema_sql(&self) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.state_versions (
                 environment text NOT NULL,
                 serial bigint NOT NULL,
                 lineage text NOT NULL,
                 created_at timestamptz NOT NULL DEFAULT now(),
                 created_by text NOT NULL,
                 checksum text NOT NULL,
                 resources integer NOT NULL,
                 body bytea NOT NULL,
                 PRIMARY KEY (environment, serial));
             CREATE TABLE IF NOT EXISTS {s}.state_journal (
                 environment text NOT NULL,
                 seq bigserial NOT NULL,
                 serial bigint NOT NULL,
                 entry bytea NOT NULL,
                 PRIMARY KEY (environment, seq));
             CREATE TABLE IF NOT EXISTS {s}.state_locks (
                 environment text PRIMARY KEY,
                 lock_id text NOT NULL,
                 backend_pid integer NOT NULL,
                 info jsonb NOT NULL);",
            s = self.shared.schema
        )
    }

    /// Runs a request on the connection; errors name the backend and what it was doing.
    fn run<T, F>(&self, action: &'static str, request: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    {
        self.answer(action, self.shared.worker.call(request))
    }

    /// Runs a read; where nothing was ever written (no schema or tables yet)
    /// it finds nothing (`T::default()`) instead of failing.
    fn read<T, F>(&self, action: &'static str, request: F) -> Result<T, StateError>
    where
        T: Default + Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    {
        match self.shared.worker.call(request) {
            Some(Err(e)) if never_written(&e) => Ok(T::default()),
            answer => self.answer(action, answer),
        }
    }

    fn answer<T>(&self, action: &'static str, answer: Option<Result<T, postgres::Error>>) -> Result<T, StateError> {
        let remote = |message: String| StateError::Remote { store: self.shared.location.clone(), action, message };
        match answer {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(remote(error_text(&e))),
            None => Err(remote("the connection thread is gone".into())),
        }
    }
}

impl Backend for PostgresBackend {
    fn describe(&self) -> String {
        format!("{} (schema {})", self.shared.location, self.shared.schema)
    }

    fn store(&self, environment: &str) -> Result<Box<dyn StateStore>, StateError> {
        check_environment_name(environment)?;
        Ok(Box::new(PostgresStore { backend: self.clone(), environment: environment.to_string() }))
    }

    fn environments(&self) -> Result<Vec<String>, StateError> {
        let sql = format!("SELECT DISTINCT environment FROM {}.state_versions ORDER BY 1", self.shared.schema);
        self.read("list environments", move |c| {
            Ok(c.query(sql.as_str(), &[])?.iter().map(|row| row.get::<_, String>(0)).collect())
        })
    }

    fn delete_environment(&self, environment: &str) -> Result<(), StateError> {
        check_environment_name(environment)?;
        self.make_tables()?;
        let s = self.shared.schema.clone();
        let environment = environment.to_string();
        self.run("delete the environment", move |c| {
            let mut tx = c.transaction()?;
            tx.execute(&format!("DELETE FROM {s}.state_versions WHERE environment = $1"), &[&environment])?;
            tx.execute(&format!("DELETE FROM {s}.state_journal WHERE environment = $1"), &[&environment])?;
            tx.commit()
        })
    }
}

/// One environment's state.
pub struct PostgresStore {
    backend: PostgresBackend,
    environment: String,
}

impl PostgresStore {
    fn schema(&self) -> &str {
        &self.backend.shared.schema
    }

    fn corrupt(&self, serial: i64, reason: &str) -> StateError {
        StateError::Corrupt { path: format!("{} version {serial}", self.describe()), reason: reason.to_string() }
    }

    /// A version's row checked against its checksum and decoded.
    fn decode_version(&self, serial: i64, checksum: &str, body: &[u8]) -> Result<State, StateError> {
        if hex::encode(Sha256::digest(body)) != checksum {
            return Err(self.corrupt(serial, "its checksum does not match its contents"));
        }
        decode_sealed(&format!("{} version {serial}", self.describe()), body, self.encryption())
    }

    fn encryption(&self) -> Option<&Encryption> {
        self.backend.shared.encryption.as_deref()
    }

    fn lock_key(&self) -> i64 {
        lock_key(self.schema(), &self.environment)
    }

    /// Who holds the lock, from its row; `None` when the row is not (yet) there.
    fn holder(&self) -> Result<Option<LockInfo>, StateError> {
        let sql = format!("SELECT info::text FROM {}.state_locks WHERE environment = $1", self.schema());
        let environment = self.environment.clone();
        let text: Option<String> = self
            .backend
            .read("read the lock", move |c| Ok(c.query_opt(sql.as_str(), &[&environment])?.map(|row| row.get(0))))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Whether some session holds the advisory lock now.
    fn lock_is_held(&self) -> Result<bool, StateError> {
        let key = self.lock_key();
        self.backend.run("read the lock", move |c| {
            // A bigint key shows in pg_locks as two 32-bit halves (objsubid 1).
            let row = c.query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                   AND classid::bigint = (($1::bigint >> 32) & 4294967295) AND objid::bigint = ($1::bigint & 4294967295)",
                &[&key],
            )?;
            Ok(row.get::<_, i64>(0) > 0)
        })
    }

    fn try_lock(&self, info: &LockInfo) -> Result<bool, StateError> {
        self.backend.make_tables()?;
        let key = self.lock_key();
        let s = self.schema().to_string();
        let environment = self.environment.clone();
        let info_json = serde_json::to_string(info).unwrap_or_default();
        let id = info.id.clone();
        self.backend.run("take the lock", move |c| {
            let got: bool = c.query_one("SELECT pg_try_advisory_lock($1)", &[&key])?.get(0);
            if got {
                c.execute(
                    &format!(
                        "INSERT INTO {s}.state_locks (environment, lock_id, backend_pid, info)
                         VALUES ($1, $2, pg_backend_pid(), $3::text::jsonb)
                         ON CONFLICT (environment) DO UPDATE
                         SET lock_id = EXCLUDED.lock_id, backend_pid = EXCLUDED.backend_pid, info = EXCLUDED.info"
                    ),
                    &[&environment, &id, &info_json],
                )?;
            }
            Ok(got)
        })
    }

    fn guard(&self, info: LockInfo) -> Box<dyn LockGuard> {
        Box::new(PostgresLock {
            backend: self.backend.clone(),
            environment: self.environment.clone(),
            key: self.lock_key(),
            info,
        })
    }

    /// The refusal once the wait is over, naming who holds the lock. The holder
    /// writes its row just after taking the lock, and deletes it just before
    /// letting go: with no row, the lock is either about to be named or free
    /// again, so both are looked at for a moment before "another session".
    fn name_the_holder(&self, info: LockInfo) -> Result<Box<dyn LockGuard>, StateError> {
        for _ in 0..10 {
            if let Some(holder) = self.holder()? {
                return Err(StateError::Locked { path: self.describe(), info: Box::new(holder) });
            }
            if self.try_lock(&info)? {
                return Ok(self.guard(info));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let unknown = LockInfo {
            id: "unknown".into(),
            operation: "unknown".into(),
            who: "another session".into(),
            host: "unknown".into(),
            pid: 0,
            created: "unknown".into(),
        };
        Err(StateError::Locked { path: self.describe(), info: Box::new(unknown) })
    }
}

impl StateStore for PostgresStore {
    fn describe(&self) -> String {
        format!("{} environment {}", self.backend.describe(), self.environment)
    }

    fn load(&self) -> Result<Option<State>, StateError> {
        let s = self.schema().to_string();
        let environment = self.environment.clone();
        let found = self.backend.read("read state", move |c| {
            let mut tx = c.build_transaction().read_only(true).start()?;
            let latest = tx.query_opt(
                &format!(
                    "SELECT serial, checksum, body FROM {s}.state_versions WHERE environment = $1
                     ORDER BY serial DESC LIMIT 1"
                ),
                &[&environment],
            )?;
            let Some(latest) = latest else { return Ok(None) };
            let serial: i64 = latest.get(0);
            let journal: Vec<Vec<u8>> = tx
                .query(
                    &format!("SELECT entry FROM {s}.state_journal WHERE environment = $1 ORDER BY seq"),
                    &[&environment],
                )?
                .iter()
                .map(|row| row.get(0))
                .collect();
            tx.commit()?;
            Ok(Some((serial, latest.get::<_, String>(1), latest.get::<_, Vec<u8>>(2), journal.concat())))
        })?;
        let Some((serial, checksum, body, journal)) = found else { return Ok(None) };
        let mut state = self.decode_version(serial, &checksum, &body)?;
        replay_journal(&format!("{} journal", self.describe()), &mut state, &journal, self.encryption())?;
        Ok(Some(state))
    }

    fn save(&self, state: &State) -> Result<(), StateError> {
        self.backend.make_tables()?;
        let body = encode_sealed(state, self.encryption());
        let checksum = hex::encode(Sha256::digest(&body));
        let serial = i64::try_from(state.serial).unwrap_or(i64::MAX);
        let resources = i32::try_from(state.resources.len()).unwrap_or(i32::MAX);
        let (s, environment, lineage, who) = (
            self.schema().to_string(),
            self.environment.clone(),
            state.lineage.clone(),
            self.backend.shared.identity.clone(),
        );
        let expected = checksum.clone();
        let stored: String = self.backend.run("save state", move |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                &format!(
                    "INSERT INTO {s}.state_versions (environment, serial, lineage, created_by, checksum, resources, body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (environment, serial) DO NOTHING"
                ),
                &[&environment, &serial, &lineage, &who, &checksum, &resources, &body],
            )?;
            let stored: String = tx
                .query_one(
                    &format!("SELECT checksum FROM {s}.state_versions WHERE environment = $1 AND serial = $2"),
                    &[&environment, &serial],
                )?
                .get(0);
            if stored == checksum {
                tx.execute(&format!("DELETE FROM {s}.state_journal WHERE environment = $1"), &[&environment])?;
                tx.commit()?;
            }
            Ok(stored)
        })?;
        if stored != expected {
            return Err(StateError::Remote {
                store: self.describe(),
                action: "save state",
                message: format!(
                    "version {serial} was already written with other contents: another process wrote this \
                     environment without its lock; nothing was overwritten"
                ),
            });
        }
        Ok(())
    }

    fn record(&self, state: &State, touched: &[ResourceAddress]) -> Result<(), StateError> {
        self.backend.make_tables()?;
        let entry = encode_journal(state, touched, self.encryption());
        let serial = i64::try_from(state.serial).unwrap_or(i64::MAX);
        let (s, environment) = (self.schema().to_string(), self.environment.clone());
        let has_version = self.backend.run("record an operation", move |c| {
            let mut tx = c.transaction()?;
            let exists = tx
                .query_opt(
                    &format!("SELECT 1 FROM {s}.state_versions WHERE environment = $1 LIMIT 1"),
                    &[&environment],
                )?
                .is_some();
            if exists {
                tx.execute(
                    &format!("INSERT INTO {s}.state_journal (environment, serial, entry) VALUES ($1, $2, $3)"),
                    &[&environment, &serial, &entry],
                )?;
            }
            tx.commit()?;
            Ok(exists)
        })?;
        // The first operation of a new environment writes its first version: the
        // lineage is then recorded before anything else.
        if has_version { Ok(()) } else { self.save(state) }
    }

    fn backup(&self) -> Result<(), StateError> {
        // Every version is kept already.
        Ok(())
    }

    fn lock(&self, info: LockInfo, timeout: Duration) -> Result<Box<dyn LockGuard>, StateError> {
        // A holder killed a moment ago still holds the lock until PostgreSQL has
        // seen its connection close: wait that long before naming it.
        let deadline = Instant::now() + timeout.max(DEAD_HOLDER_GRACE);
        loop {
            if self.try_lock(&info)? {
                return Ok(self.guard(info));
            }
            if Instant::now() >= deadline {
                return self.name_the_holder(info);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let holder = self.holder()?.ok_or(StateError::NotLocked)?;
        if holder.id != id {
            return Err(StateError::LockIdMismatch { given: id.into(), actual: holder.id });
        }
        if self.lock_is_held()? {
            return Err(StateError::LockHeldByLiveProcess { info: Box::new(holder) });
        }
        let (s, environment, id) = (self.schema().to_string(), self.environment.clone(), id.to_string());
        self.backend.run("clear the lock", move |c| {
            c.execute(
                &format!("DELETE FROM {s}.state_locks WHERE environment = $1 AND lock_id = $2"),
                &[&environment, &id],
            )
            .map(|_| ())
        })
    }

    fn history(&self) -> Result<Vec<StateVersion>, StateError> {
        let (s, environment) = (self.schema().to_string(), self.environment.clone());
        self.backend.read("read the history", move |c| {
            let rows = c.query(
                &format!(
                    "SELECT serial, lineage, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                            created_by, checksum, resources
                     FROM {s}.state_versions WHERE environment = $1 ORDER BY serial"
                ),
                &[&environment],
            )?;
            Ok(rows
                .iter()
                .map(|row| StateVersion {
                    serial: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                    lineage: row.get(1),
                    created: row.get(2),
                    who: row.get(3),
                    checksum: row.get(4),
                    resources: usize::try_from(row.get::<_, i32>(5)).unwrap_or(0),
                })
                .collect())
        })
    }

    fn load_version(&self, serial: u64) -> Result<State, StateError> {
        let wanted = i64::try_from(serial).unwrap_or(i64::MAX);
        let (s, environment) = (self.schema().to_string(), self.environment.clone());
        let row = self.backend.read("read a version", move |c| {
            let row = c.query_opt(
                &format!("SELECT checksum, body FROM {s}.state_versions WHERE environment = $1 AND serial = $2"),
                &[&environment, &wanted],
            )?;
            Ok(row.map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1))))
        })?;
        let (checksum, body) = row.ok_or_else(|| StateError::NoSuchVersion { store: self.describe(), serial })?;
        self.decode_version(wanted, &checksum, &body)
    }
}

struct PostgresLock {
    backend: PostgresBackend,
    environment: String,
    key: i64,
    info: LockInfo,
}

impl LockGuard for PostgresLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for PostgresLock {
    fn drop(&mut self) {
        let (s, environment, id, key) =
            (self.backend.shared.schema.clone(), self.environment.clone(), self.info.id.clone(), self.key);
        // If this fails the connection is gone, and the advisory lock with it.
        let _ = self.backend.run("release the lock", move |c| {
            c.execute(
                &format!("DELETE FROM {s}.state_locks WHERE environment = $1 AND lock_id = $2"),
                &[&environment, &id],
            )?;
            c.query_one("SELECT pg_advisory_unlock($1)", &[&key]).map(|_| ())
        });
    }
}

/// TLS that verifies the server: the system's CA certificates and `ca_file`'s.
fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ca_file {} is not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("ca_file {} holds no certificate", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A 64-bit advisory lock key for one environment of one schema.
fn lock_key(schema: &str, environment: &str) -> i64 {
    let digest = Sha256::digest(format!("infra-state\0{schema}\0{environment}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// `postgres://user@host:port/db` for messages: the password never appears.
fn location(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { String::new() } else { format!("{user}@") };
    format!("postgres://{at}{host}:{port}/{db}")
}

/// The schema or a table is not there: nothing was ever written to it.
fn never_written(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|code| *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME)
}

/// The server's own message where there is one (`ERROR: ...`), else the client's.
pub(crate) fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_never_show_the_password() {
        let config: postgres::Config = "postgres://alice:s3cret@db.internal:5433/infra".parse().expect("parses");
        assert_eq!(location(&config), "postgres://alice@db.internal:5433/infra");
        let config: postgres::Config = "host=/run/postgresql user=bob password=s3cret".parse().expect("parses");
        assert_eq!(location(&config), "postgres://bob@/run/postgresql:5432/bob");
    }

    #[test]
    fn a_bad_connection_string_is_not_quoted_back() {
        let err = PostgresBackend::connect(
            &Settings { conn: "postgres://alice:s3cret@[bad".into(), ..Settings::default() },
            "t@h",
        )
        .expect_err("refused");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        let err = PostgresBackend::connect(
            &Settings { conn: "host=localhost".into(), schema: Some("x; DROP TABLE y".into()), ..Settings::default() },
            "t@h",
        )
        .expect_err("refused");
        assert!(err.to_string().contains("plain lower-case name"), "{err}");
    }

    #[test]
    fn lock_keys_differ_by_environment_and_schema() {
        assert_ne!(lock_key("infra", "staging"), lock_key("infra", "production"));
        assert_ne!(lock_key("infra", "staging"), lock_key("other", "staging"));
        assert_eq!(lock_key("infra", "staging"), lock_key("infra", "staging"));
    }
}
