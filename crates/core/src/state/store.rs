//! Where state lives: the [`StateStore`] contract and the local-file store.
//!
//! The local store writes atomically (temporary file, fsync, rename, fsync of the
//! directory), keeps the state from before each run as `PATH.backup`, creates
//! files with mode 0600, and locks with a kernel lock on `PATH.lock`: a process
//! killed with SIGKILL releases it by itself, and the file names the holder.
//!
//! Between snapshots, each resource operation is appended to `PATH.journal` and
//! fsynced, so recording one operation costs one small write instead of
//! rewriting the whole state; the journal is folded into a new snapshot once it
//! outgrows it, and at the end of every run. Loading replays it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Encryption, State, StateError, decode_sealed, encode_sealed};

/// Who holds a lock, written into the lock so a refused run can say so.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    pub id: String,
    pub operation: String,
    pub who: String,
    pub host: String,
    pub pid: u32,
    pub created: String,
}

impl LockInfo {
    pub fn new(operation: &str, who: &str, host: &str) -> LockInfo {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_string(),
            who: who.to_string(),
            host: host.to_string(),
            pid: std::process::id(),
            created: rfc3339(SystemTime::now()),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} on {} (pid {}) running `{}` since {} [lock id {}]",
            self.who, self.host, self.pid, self.operation, self.created, self.id
        )
    }
}

/// One kept version of a state, as `infra state history` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateVersion {
    pub serial: u64,
    pub lineage: String,
    /// When it was written (RFC 3339).
    pub created: String,
    /// Who wrote it (user@host).
    pub who: String,
    /// SHA-256 of the encoded state, checked whenever the version is loaded.
    pub checksum: String,
    pub resources: usize,
}

/// A held lock; dropping it releases the lock.
pub trait LockGuard: Send {
    fn info(&self) -> &LockInfo;
}

/// A place that keeps state. Implementations must make `save` atomic: after a
/// crash at any point, `load` returns either the previous or the new state.
pub trait StateStore: Send + Sync {
    /// Human-readable location, for messages.
    fn describe(&self) -> String;
    fn load(&self) -> Result<Option<State>, StateError>;
    fn save(&self, state: &State) -> Result<(), StateError>;
    /// Durably records that the resources at `touched` changed to what `state`
    /// now holds (or were removed), after one or more resource operations.
    /// Stores without a cheaper way simply save everything.
    fn record(&self, state: &State, touched: &[crate::ResourceAddress]) -> Result<(), StateError> {
        let _ = touched;
        self.save(state)
    }
    /// Keeps a copy of the current state before an operation changes it.
    fn backup(&self) -> Result<(), StateError>;
    fn lock(&self, info: LockInfo, timeout: Duration) -> Result<Box<dyn LockGuard>, StateError>;
    fn force_unlock(&self, id: &str) -> Result<(), StateError>;
    /// Every kept version, oldest first.
    fn history(&self) -> Result<Vec<StateVersion>, StateError> {
        Err(StateError::Unsupported { store: self.describe(), reason: NO_HISTORY })
    }
    /// One kept version, by its serial.
    fn load_version(&self, serial: u64) -> Result<State, StateError> {
        let _ = serial;
        Err(StateError::Unsupported { store: self.describe(), reason: NO_HISTORY })
    }
}

const NO_HISTORY: &str = "keeps only the latest state and one backup (.backup), not a history of versions; \
     a backend such as postgres keeps every version";

#[derive(Clone, Debug)]
pub struct LocalStore {
    path: PathBuf,
    encryption: Option<Arc<Encryption>>,
}

impl LocalStore {
    pub fn new(path: impl Into<PathBuf>) -> LocalStore {
        LocalStore { path: path.into(), encryption: None }
    }

    /// Seals everything it writes (snapshot, journal, backup) with these keys.
    pub fn with_encryption(mut self, encryption: Option<Arc<Encryption>>) -> LocalStore {
        self.encryption = encryption;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    fn journal_path(&self) -> PathBuf {
        self.sibling(".journal")
    }

    fn file_len(path: &Path) -> u64 {
        fs::metadata(path).map_or(0, |m| m.len())
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
        let path = path.display().to_string();
        move |source| StateError::Io { action, path, source }
    }

    fn open_lock_file(&self) -> Result<File, StateError> {
        let path = self.lock_path();
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(self.io("open the lock of", &path))
    }

    fn read_holder(file: &mut File) -> Option<LockInfo> {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).ok()?;
        file.read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    // A fixed name: only the lock holder writes, and a temporary file left by a
    // killed process is overwritten next time instead of piling up.
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A crash mid-append can leave a last line without its newline; cut it off so
/// the next entry starts on a line of its own.
fn drop_torn_tail(file: &mut File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    file.set_len(keep as u64)
}

struct LocalLock {
    file: File,
    info: LockInfo,
}

impl LockGuard for LocalLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for LocalLock {
    fn drop(&mut self) {
        // Clearing the holder first means a stale name is never shown; the
        // kernel lock itself goes with the file handle.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

impl StateStore for LocalStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Option<State>, StateError> {
        let mut state = match fs::read(&self.path) {
            Ok(bytes) => decode_sealed(&self.describe(), &bytes, self.encryption.as_deref())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("read", &self.path)(e)),
        };
        let journal = self.journal_path();
        match fs::read(&journal) {
            Ok(bytes) => super::format::replay_journal(
                &journal.display().to_string(),
                &mut state,
                &bytes,
                self.encryption.as_deref(),
            )?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("read", &journal)(e)),
        }
        Ok(Some(state))
    }

    fn save(&self, state: &State) -> Result<(), StateError> {
        write_atomically(&self.path, &encode_sealed(state, self.encryption.as_deref()))
            .map_err(self.io("write", &self.path))?;
        // The snapshot holds everything the journal did; entries left behind by a
        // crash right here are older than the snapshot's serial and are skipped.
        match fs::remove_file(self.journal_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("remove", &self.journal_path())(e)),
        }
    }

    fn record(&self, state: &State, touched: &[crate::ResourceAddress]) -> Result<(), StateError> {
        if !self.path.exists() {
            return self.save(state);
        }
        let journal = self.journal_path();
        let appended = (|| {
            let mut file =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&journal)?;
            drop_torn_tail(&mut file)?;
            file.seek(SeekFrom::End(0))?;
            file.write_all(&super::format::encode_journal(state, touched, self.encryption.as_deref()))?;
            file.sync_data()
        })();
        appended.map_err(self.io("append to", &journal))?;
        if Self::file_len(&journal) > Self::file_len(&self.path).max(64 * 1024) {
            self.save(state)?;
        }
        Ok(())
    }

    fn backup(&self) -> Result<(), StateError> {
        let backup = self.sibling(".backup");
        match self.load()? {
            Some(state) => write_atomically(&backup, &encode_sealed(&state, self.encryption.as_deref()))
                .map_err(self.io("write", &backup)),
            None => Ok(()),
        }
    }

    fn lock(&self, info: LockInfo, timeout: Duration) -> Result<Box<dyn LockGuard>, StateError> {
        let mut file = self.open_lock_file()?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = LocalStore::read_holder(&mut file).unwrap_or_else(|| LockInfo {
                        id: "unknown".into(),
                        operation: "unknown".into(),
                        who: "another process".into(),
                        host: "unknown".into(),
                        pid: 0,
                        created: "unknown".into(),
                    });
                    return Err(StateError::Locked { path: self.describe(), info: Box::new(holder) });
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(self.io("lock", &self.lock_path())(e));
                }
            }
        }
        let written = (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&serde_json::to_vec_pretty(&info).unwrap_or_default())?;
            file.sync_all()
        })();
        written.map_err(self.io("write the lock of", &self.lock_path()))?;
        Ok(Box::new(LocalLock { file, info }))
    }

    fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        let mut file = self.open_lock_file()?;
        let holder = LocalStore::read_holder(&mut file);
        match file.try_lock() {
            Err(fs::TryLockError::WouldBlock) => {
                let info = holder.ok_or(StateError::NotLocked)?;
                if info.id != id {
                    return Err(StateError::LockIdMismatch { given: id.into(), actual: info.id });
                }
                Err(StateError::LockHeldByLiveProcess { info: Box::new(info) })
            }
            Err(fs::TryLockError::Error(e)) => Err(self.io("lock", &self.lock_path())(e)),
            Ok(()) => {
                // Nobody holds the kernel lock: what is left is a stale record.
                let info = holder.ok_or(StateError::NotLocked)?;
                if info.id != id {
                    return Err(StateError::LockIdMismatch { given: id.into(), actual: info.id });
                }
                file.set_len(0).map_err(self.io("clear the lock of", &self.lock_path()))?;
                Ok(())
            }
        }
    }
}

/// `2026-11-24T11:31:21Z` from a system time, without a date-time dependency.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn info(op: &str) -> LockInfo {
        LockInfo::new(op, "alice", "laptop")
    }

    #[test]
    fn save_is_private_and_load_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("infra.state"));
        assert!(store.load().expect("loads").is_none());
        let state = State::new();
        store.save(&state).expect("saves");
        let mode = fs::metadata(store.path()).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.load().expect("loads"), Some(state));
    }

    #[test]
    fn second_lock_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("infra.state"));
        let held = store.lock(info("apply"), Duration::ZERO).expect("first lock");
        let second = LocalStore::new(dir.path().join("infra.state"));
        match second.lock(info("plan"), Duration::ZERO) {
            Err(StateError::Locked { info, .. }) => {
                assert_eq!(info.operation, "apply");
                assert_eq!(info.who, "alice");
            }
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("second lock was granted"),
        }
        assert!(matches!(store.force_unlock(&held.info().id), Err(StateError::LockHeldByLiveProcess { .. })));
        drop(held);
        second.lock(info("plan"), Duration::ZERO).expect("lock after release");
    }

    #[test]
    fn journal_records_replay_and_fold_into_snapshots() {
        use crate::state::ResourceState;
        use crate::{InstanceKey, ResourceAddress, Value};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("infra.state"));
        let mut state = State::new();
        store.save(&state).expect("snapshot");
        let address = |i: u64| ResourceAddress::new(vec![], "file", "x", InstanceKey::Int(i));
        for i in 0..3 {
            state.resources.insert(
                address(i),
                ResourceState {
                    provider: "local".into(),
                    attributes: Value::object([("n", Value::Number(i as f64))]),
                    dependencies: vec![],
                    create_before_destroy: false,
                    revisions: Vec::new(),
                },
            );
            state.serial += 1;
            store.record(&state, &[address(i)]).expect("record");
        }
        state.resources.remove(&address(1));
        state.serial += 1;
        store.record(&state, &[address(1)]).expect("record removal");
        assert_eq!(store.load().expect("loads"), Some(state.clone()));

        // A write cut short by a crash leaves a partial last line: it is ignored.
        let journal = dir.path().join("infra.state.journal");
        let mut f = OpenOptions::new().append(true).open(&journal).expect("journal");
        f.write_all(b"{\"lineage\":\"x\",\"ser").expect("write");
        assert_eq!(store.load().expect("loads"), Some(state.clone()));
        // ... and cut off before the next entry is appended.
        state.resources.remove(&address(2));
        state.serial += 1;
        store.record(&state, &[address(2)]).expect("record after a torn write");
        assert_eq!(store.load().expect("loads"), Some(state.clone()));

        store.save(&state).expect("snapshot");
        assert!(!journal.exists(), "a snapshot folds the journal in");
        assert_eq!(store.load().expect("loads"), Some(state));
    }

    #[test]
    fn an_encrypted_store_writes_no_address_or_value_and_needs_its_key() {
        use crate::state::ResourceState;
        use crate::{InstanceKey, ResourceAddress, Value};
        let key = |k: &str| Some(Arc::new(Encryption::new(k, None).expect("a key")));
        let (key_a, key_b) =
            ("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8s=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("infra.state")).with_encryption(key(key_a));
        let mut state = State::new();
        store.save(&state).expect("snapshot");
        let address = ResourceAddress::new(vec![], "file", "motd", InstanceKey::None);
        state.resources.insert(
            address.clone(),
            ResourceState {
                provider: "local".into(),
                attributes: Value::object([("content", Value::string("visible-attribute-value"))]),
                dependencies: vec![],
                create_before_destroy: false,
                revisions: Vec::new(),
            },
        );
        state.serial += 1;
        store.record(&state, &[address]).expect("journal");
        store.backup().expect("backup");
        assert_eq!(store.load().expect("loads"), Some(state.clone()));
        for file in ["infra.state", "infra.state.journal", "infra.state.backup"] {
            let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
            assert!(text.starts_with("{\"infra_encrypted\":1"), "{file}: {text}");
            for word in ["motd", "visible-attribute-value", &state.lineage] {
                assert!(!text.contains(word), "{file} shows {word}");
            }
        }
        let other = LocalStore::new(dir.path().join("infra.state")).with_encryption(key(key_b));
        assert!(matches!(other.load(), Err(StateError::Encryption { .. })));
        let none = LocalStore::new(dir.path().join("infra.state"));
        assert!(matches!(none.load(), Err(StateError::Encryption { .. })));
    }

    #[test]
    fn dates_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_995_081);
        assert_eq!(rfc3339(t), "2026-11-29T23:31:21Z");
    }
}
