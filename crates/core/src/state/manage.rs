//! The rules of changing recorded state by hand, whatever store holds it: `state
//! mv`, `state rm`, `state push`, `state rollback` and copying every environment
//! to another backend (`init -migrate-state`). Callers hold the lock; these
//! functions decide what may be written and write it as the next version.
//!
//! A refusal is a [`Refused`] with the reason and what to do instead, so any
//! front end can show both.

use super::{Backend, LockInfo, State, StateError, StateStore, encode};
use crate::ResourceAddress;

/// Why a change to state was not made; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not in state")]
    NotInState(ResourceAddress),
    #[error("{0} already exists in state")]
    AlreadyInState(ResourceAddress),
    #[error("{source_name} belongs to another state (lineage {found}, not {current})")]
    OtherLineage { source_name: String, found: String, current: String },
    #[error("{source_name} is older (serial {found}) than the current state (serial {current})")]
    Older { source_name: String, found: u64, current: u64 },
    #[error("{source_name} differs from the current state but has the same serial ({serial})")]
    SameSerialDiffers { source_name: String, serial: u64 },
    #[error("version {serial} belongs to another state (lineage {lineage})")]
    VersionOfOtherState { serial: u64, lineage: String },
    #[error(
        "environment `{environment}` already has a different state in {store} (lineage {lineage}, serial {serial}); \
         nothing was copied over it"
    )]
    DifferentStateThere { environment: String, store: String, lineage: String, serial: u64 },
    #[error(transparent)]
    State(#[from] StateError),
}

impl Refused {
    /// What the user can do instead, when there is something to say.
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            Refused::NotInState(_) => "`infra state list` shows what is",
            Refused::OtherLineage { .. } | Refused::Older { .. } | Refused::SameSerialDiffers { .. } => {
                "check you are pushing the right file; -force replaces the state anyway"
            }
            Refused::VersionOfOtherState { .. } => {
                "`infra state history` marks where the lineage changes; `infra state push -force` replaces state \
                 whatever its lineage"
            }
            Refused::DifferentStateThere { .. } => "-force-copy replaces it with the copy from the old backend",
            Refused::AlreadyInState(_) | Refused::State(_) => return None,
        })
    }
}

/// Saves `state` as the next version after `previous_serial`, keeping the
/// version it replaces as the backup.
pub fn save_next(store: &dyn StateStore, state: &mut State, previous_serial: u64) -> Result<(), StateError> {
    store.backup()?;
    state.serial = state.serial.max(previous_serial + 1);
    store.save(state)
}

/// The address as recorded, or a refusal naming it.
pub fn find(state: &State, address: &ResourceAddress) -> Result<(), Refused> {
    if state.resources.contains_key(address) { Ok(()) } else { Err(Refused::NotInState(address.clone())) }
}

/// `state mv`: the object recorded at `from` is recorded at `to` instead.
pub fn move_resource(
    store: &dyn StateStore,
    state: &mut State,
    from: &ResourceAddress,
    to: &ResourceAddress,
) -> Result<(), Refused> {
    let moves = planned_moves(state, from, to)?;
    if let Some((_, taken)) = moves.iter().find(|(_, to)| state.resources.contains_key(to)) {
        return Err(Refused::AlreadyInState(taken.clone()));
    }
    let serial = state.serial;
    let moved: Vec<_> = moves.into_iter().filter_map(|(from, to)| Some((to, state.resources.remove(&from)?))).collect();
    state.resources.extend(moved);
    Ok(save_next(store, state, serial)?)
}

/// What `state mv FROM TO` renames: one instance, or with module addresses
/// (`module.web1` to `module.web["web1"]`) everything recorded under the module.
fn planned_moves(
    state: &State,
    from: &ResourceAddress,
    to: &ResourceAddress,
) -> Result<Vec<(ResourceAddress, ResourceAddress)>, Refused> {
    if !from.kind.is_empty() || !to.kind.is_empty() {
        find(state, from)?;
        return Ok(vec![(from.clone(), to.clone())]);
    }
    let moves: Vec<_> = (state.resources.keys())
        .filter_map(|address| {
            let rest = address.module.strip_prefix(from.module.as_slice())?;
            let module = to.module.iter().chain(rest).cloned().collect();
            Some((address.clone(), ResourceAddress { module, ..address.clone() }))
        })
        .collect();
    if moves.is_empty() { Err(Refused::NotInState(from.clone())) } else { Ok(moves) }
}

/// `state rm`: forgets every address given (all must be recorded); the real
/// objects are left alone.
pub fn remove_resources(
    store: &dyn StateStore,
    state: &mut State,
    addresses: &[ResourceAddress],
) -> Result<(), Refused> {
    for address in addresses {
        find(state, address)?;
    }
    let serial = state.serial;
    for address in addresses {
        state.resources.remove(address);
    }
    Ok(save_next(store, state, serial)?)
}

/// What [`push`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Written as this serial.
    Written(u64),
    /// The store already held exactly this state.
    Identical,
}

/// `state push`: replaces the current state with `pushed` (read from
/// `source_name`), refusing another lineage, an older serial, or other contents
/// under the same serial unless `force`, as Terraform does.
pub fn push(
    store: &dyn StateStore,
    current: Option<&State>,
    mut pushed: State,
    source_name: &str,
    force: bool,
) -> Result<Pushed, Refused> {
    let Some(current) = current else {
        save_next(store, &mut pushed, 0)?;
        return Ok(Pushed::Written(pushed.serial));
    };
    let identical = encode(&pushed) == encode(current);
    if !force {
        let source_name = source_name.to_string();
        if pushed.lineage != current.lineage {
            return Err(Refused::OtherLineage { source_name, found: pushed.lineage, current: current.lineage.clone() });
        }
        if pushed.serial < current.serial {
            return Err(Refused::Older { source_name, found: pushed.serial, current: current.serial });
        }
        if pushed.serial == current.serial && !identical {
            return Err(Refused::SameSerialDiffers { source_name, serial: pushed.serial });
        }
    }
    if identical {
        return Ok(Pushed::Identical);
    }
    save_next(store, &mut pushed, current.serial)?;
    Ok(Pushed::Written(pushed.serial))
}

/// `state rollback SERIAL`: makes a kept version of the same lineage the
/// current state again, as a new version. Returns the state now current.
pub fn rollback(store: &dyn StateStore, current: &State, wanted: u64) -> Result<State, Refused> {
    let mut version = store.load_version(wanted)?;
    if version.lineage != current.lineage {
        return Err(Refused::VersionOfOtherState { serial: wanted, lineage: version.lineage });
    }
    save_next(store, &mut version, current.serial)?;
    Ok(version)
}

/// What [`migrate`] did with one environment.
#[derive(Debug, PartialEq, Eq)]
pub enum Migrated {
    /// The new backend already held the same state.
    AlreadyThere {
        serial: u64,
    },
    Copied {
        serial: u64,
        resources: usize,
    },
}

/// Copies every environment's latest state from `old` to `new`, each under
/// both stores' locks. A different state already in `new` is refused unless
/// `force`. `each` hears about every environment as it is done.
pub fn migrate(
    old: &dyn Backend,
    new: &dyn Backend,
    force: bool,
    lock: &dyn Fn() -> LockInfo,
    each: &mut dyn FnMut(&str, Migrated),
) -> Result<usize, Refused> {
    let environments = old.environments()?;
    for name in &environments {
        let (from, to) = (old.store(name)?, new.store(name)?);
        let _locks = (from.lock(lock(), Default::default())?, to.lock(lock(), Default::default())?);
        let Some(mut state) = from.load()? else { continue };
        let existing = to.load()?;
        match &existing {
            Some(there) if encode(there) == encode(&state) => {
                each(name, Migrated::AlreadyThere { serial: state.serial });
                continue;
            }
            Some(there) if !force && (there.lineage != state.lineage || there.serial > state.serial) => {
                return Err(Refused::DifferentStateThere {
                    environment: name.clone(),
                    store: new.describe(),
                    lineage: there.lineage.clone(),
                    serial: there.serial,
                });
            }
            _ => {}
        }
        let floor = existing.map_or(0, |s| s.serial).max(state.serial.saturating_sub(1));
        save_next(to.as_ref(), &mut state, floor)?;
        each(name, Migrated::Copied { serial: state.serial, resources: state.resources.len() });
    }
    Ok(environments.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{LocalBackend, LocalStore, ResourceState};
    use crate::{InstanceKey, Value};

    fn address(name: &str) -> ResourceAddress {
        ResourceAddress::new(Vec::new(), "file", name, InstanceKey::None)
    }

    fn state_with(names: &[&str]) -> State {
        let mut state = State::new();
        for name in names {
            let resource = ResourceState {
                provider: "local".into(),
                attributes: Value::String((*name).into()),
                dependencies: Vec::new(),
                create_before_destroy: false,
                revisions: Vec::new(),
            };
            state.resources.insert(address(name), resource);
        }
        state
    }

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = LocalStore::new(dir.path().join("infra.state"));
        (dir, store)
    }

    #[test]
    fn a_move_is_saved_as_the_next_serial_and_refuses_a_taken_address() {
        let (_dir, store) = store();
        let mut state = state_with(&["a", "b"]);
        state.serial = 4;
        assert!(matches!(
            move_resource(&store, &mut state, &address("a"), &address("b")),
            Err(Refused::AlreadyInState(_))
        ));
        assert!(matches!(move_resource(&store, &mut state, &address("x"), &address("y")), Err(Refused::NotInState(_))));
        move_resource(&store, &mut state, &address("a"), &address("c")).expect("moved");
        let saved = store.load().expect("loads").expect("saved");
        assert_eq!(saved.serial, 5);
        assert!(saved.resources.contains_key(&address("c")) && !saved.resources.contains_key(&address("a")));
    }

    #[test]
    fn moving_a_module_moves_everything_recorded_under_it() {
        let (_dir, store) = store();
        let mut state = State::new();
        for text in ["module.web1.file.a", "module.web1.module.db.file.b", "module.web2.file.a"] {
            let one = state_with(&["x"]).resources.into_values().next().expect("one");
            state.resources.insert(text.parse().expect("address"), one);
        }
        let (from, to) = ("module.web1".parse().expect("from"), "module.web[\"web1\"]".parse().expect("to"));
        move_resource(&store, &mut state, &from, &to).expect("moved");
        let recorded: Vec<String> = state.resources.keys().map(ToString::to_string).collect();
        assert_eq!(
            recorded,
            [r#"module.web["web1"].file.a"#, r#"module.web["web1"].module.db.file.b"#, "module.web2.file.a"]
        );
        let nothing: ResourceAddress = "module.web9".parse().expect("address");
        assert!(matches!(move_resource(&store, &mut state, &nothing, &to), Err(Refused::NotInState(_))));
    }

    #[test]
    fn remove_refuses_all_when_one_address_is_missing() {
        let (_dir, store) = store();
        let mut state = state_with(&["a", "b"]);
        let refused = remove_resources(&store, &mut state, &[address("a"), address("nope")]);
        assert!(matches!(refused, Err(Refused::NotInState(a)) if a == address("nope")));
        assert_eq!(state.resources.len(), 2, "nothing removed");
        assert!(store.load().expect("loads").is_none(), "nothing written");
    }

    #[test]
    fn push_refuses_another_lineage_an_older_serial_and_same_serial_other_contents() {
        let (_dir, store) = store();
        let mut current = state_with(&["a"]);
        current.serial = 3;
        let other = State { serial: 9, ..state_with(&["a"]) };
        assert!(matches!(push(&store, Some(&current), other, "f", false), Err(Refused::OtherLineage { .. })));
        let older = State { serial: 2, ..current.clone() };
        assert!(matches!(push(&store, Some(&current), older, "f", false), Err(Refused::Older { .. })));
        let differs = State { resources: state_with(&["b"]).resources, ..current.clone() };
        let refused = push(&store, Some(&current), differs.clone(), "f", false);
        assert!(matches!(refused, Err(Refused::SameSerialDiffers { serial: 3, .. })));
        assert_eq!(push(&store, Some(&current), current.clone(), "f", false).expect("same"), Pushed::Identical);
        assert_eq!(push(&store, Some(&current), differs, "f", true).expect("forced"), Pushed::Written(4));
    }

    #[test]
    fn rollback_refuses_a_version_of_another_lineage() {
        let (_dir, store) = store();
        // A local store keeps no versions: the refusal is the store's own.
        let refused = rollback(&store, &state_with(&[]), 1);
        assert!(matches!(refused, Err(Refused::State(StateError::Unsupported { .. }))));
    }

    #[test]
    fn migrate_copies_each_environment_and_refuses_a_different_state_there() {
        let (old_dir, new_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let old = LocalBackend::new(old_dir.path().join("infra.state"));
        let new = LocalBackend::new(new_dir.path().join("infra.state"));
        let mut state = state_with(&["a"]);
        state.serial = 7;
        old.store("default").expect("store").save(&state).expect("saved");
        let lock = || LockInfo::new("test", "me", "here");
        let mut seen = Vec::new();
        let count = migrate(&old, &new, false, &lock, &mut |name, m| seen.push((name.to_string(), m))).expect("ok");
        assert_eq!(count, 1);
        assert_eq!(seen, [("default".to_string(), Migrated::Copied { serial: 7, resources: 1 })]);
        let copied = new.store("default").expect("store").load().expect("loads").expect("there");
        assert_eq!((copied.lineage.as_str(), copied.serial), (state.lineage.as_str(), 7));
        // Another lineage there already: refused, then replaced with force.
        new.store("default").expect("store").save(&state_with(&["b"])).expect("saved");
        let refused = migrate(&old, &new, false, &lock, &mut |_, _| {});
        assert!(matches!(refused, Err(Refused::DifferentStateThere { .. })));
        migrate(&old, &new, true, &lock, &mut |_, _| {}).expect("forced");
    }
}
