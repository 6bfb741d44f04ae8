//! Recorded state: what `infra` created, as last seen, and where it is kept.
//!
//! [`State`] is the in-memory model. [`format`] is the versioned file format (the
//! only serialized form; see `state/README.md` at the repository root).
//! A [`Backend`] keeps one state per environment, each behind a [`StateStore`];
//! [`LocalBackend`] keeps them as files with atomic writes, a backup and a lock.

mod backend;
pub mod encryption;
pub(crate) mod format;
pub mod manage;
pub mod revisions;
mod store;

use std::collections::BTreeMap;

pub use backend::{Backend, DEFAULT_ENVIRONMENT, LocalBackend, check_environment_name};
pub use encryption::Encryption;
pub use format::{
    CURRENT_FORMAT_VERSION, decode, decode_sealed, encode, encode_journal, encode_sealed, replay_journal,
};
pub use store::{LocalStore, LockGuard, LockInfo, StateStore, StateVersion, rfc3339};

use crate::{InstanceKey, ModuleStep, ResourceAddress, Value};

/// One recorded resource instance.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceState {
    /// The provider configuration that manages it: `local` or `local.alias`.
    pub provider: crate::ProviderKey,
    /// Attributes as last read or written, sensitive parts marked.
    pub attributes: Value,
    /// Resources it depended on when last applied; destroy runs in reverse.
    pub dependencies: Vec<ResourceAddress>,
    pub create_before_destroy: bool,
    /// Its earlier records, newest first, for `infra rollback` (types that
    /// keep revisions only; see [`revisions`]).
    pub revisions: Vec<Value>,
}

impl ResourceState {
    /// The record of an object just read in (`infra import`, an `import`
    /// block): it depended on nothing and has no earlier revisions yet.
    pub fn imported(provider: crate::ProviderKey, attributes: Value) -> Self {
        ResourceState {
            provider,
            attributes,
            dependencies: Vec::new(),
            create_before_destroy: false,
            revisions: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Identifies this state for its whole life; every created object is marked with it.
    pub lineage: String,
    /// Increases with every save; a saved plan records the serial it was made against.
    pub serial: u64,
    pub resources: BTreeMap<ResourceAddress, ResourceState>,
    pub outputs: BTreeMap<String, Value>,
    /// The evaluated settings of each instance of a provider configuration
    /// with `for_each` that made something recorded here: an instance the
    /// configuration no longer makes (its key removed) is configured from
    /// these to destroy what it made.
    pub providers: BTreeMap<crate::ProviderKey, Value>,
}

/// The recorded instances of one resource (`base` has no instance key), found
/// by range rather than by scanning all of state.
pub fn instances_of<'a, V>(
    resources: &'a BTreeMap<ResourceAddress, V>,
    base: &ResourceAddress,
) -> impl Iterator<Item = (&'a ResourceAddress, &'a V)> + 'a {
    let base = base.without_key();
    resources
        .range(base.clone()..)
        .take_while(move |(a, _)| a.module == base.module && a.kind == base.kind && a.name == base.name)
}

/// The recorded instances of one block in every instance of its module (the
/// module called by the path `names`), found by range over that module's part
/// of the map rather than by scanning all of it.
pub fn instances_of_block<'a, V>(
    resources: &'a BTreeMap<ResourceAddress, V>,
    names: &[String],
    kind: &str,
    name: &str,
) -> Vec<(&'a ResourceAddress, &'a V)> {
    let Some(first) = names.first() else {
        return instances_of(resources, &ResourceAddress::new(Vec::new(), kind, name, InstanceKey::None)).collect();
    };
    // Everything under calls named `first` sorts together, from its lowest key up.
    let start = ResourceAddress::new(vec![ModuleStep::plain(first.as_str())], "", "", InstanceKey::None);
    resources
        .range(start..)
        .take_while(|(a, _)| a.module.first().is_some_and(|step| step.name == *first))
        .filter(|(a, _)| a.of_block(names, kind, name))
        .collect()
}

impl State {
    /// A new, empty state with a fresh lineage.
    pub fn new() -> State {
        State {
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            providers: BTreeMap::new(),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// Why state could not be read, written or locked.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} state file {path}: {source}")]
    Io { action: &'static str, path: String, source: std::io::Error },
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error(
        "state file {path} has format version {found}, newer than this infra understands ({supported}); upgrade infra"
    )]
    NewerFormat { path: String, found: u64, supported: u64 },
    #[error("state is locked by {}", .info.describe())]
    Locked { path: String, info: Box<LockInfo> },
    #[error("lock id {given:?} does not match the lock held ({actual:?})")]
    LockIdMismatch { given: String, actual: String },
    #[error("the lock is held by a running process ({}); stop it instead of forcing the lock", .info.describe())]
    LockHeldByLiveProcess { info: Box<LockInfo> },
    #[error("state is not locked")]
    NotLocked,
    #[error("{store} {reason}")]
    Unsupported { store: String, reason: &'static str },
    #[error("{store}: cannot {action}: {message}")]
    Remote { store: String, action: &'static str, message: String },
    #[error("{store} has no state version with serial {serial}")]
    NoSuchVersion { store: String, serial: u64 },
    #[error("{0}")]
    Environment(String),
    #[error("cannot read state {path}: {reason}")]
    Encryption { path: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_found_in_every_instance_of_its_module_and_nowhere_else() {
        let texts = [
            "file.x",
            "module.web.file.x",
            "module.web[\"a\"].file.x[0]",
            "module.web[\"a\"].file.y",
            "module.web[\"b\"].file.x",
            "module.web[\"b\"].module.db.file.x",
            "module.webby.file.x",
            "module.zz.file.x",
        ];
        let map: BTreeMap<ResourceAddress, ()> = texts.iter().map(|t| (t.parse().expect("address"), ())).collect();
        let found = |names: &[&str]| -> Vec<String> {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            instances_of_block(&map, &names, "file", "x").into_iter().map(|(a, _)| a.to_string()).collect()
        };
        assert_eq!(found(&[]), ["file.x"]);
        assert_eq!(found(&["web"]), ["module.web.file.x", r#"module.web["a"].file.x[0]"#, r#"module.web["b"].file.x"#]);
        assert_eq!(found(&["web", "db"]), [r#"module.web["b"].module.db.file.x"#]);
        assert_eq!(found(&["zz"]), ["module.zz.file.x"]);
    }
}
