//! Sensitive values kept out of saved-plan files.
//!
//! A saved plan travels: it is a CI artifact, it sits beside a pull request.
//! So `infra plan -out FILE` writes no sensitive value. Each one is replaced by
//! a placeholder, and the file keeps where it was (its slot and path) and a
//! salted SHA-256 digest of it. `infra apply FILE` gets the values back from
//! the same inputs the plan had (the variables given again, `env()`, state):
//! it plans once more, takes each withheld value from that fresh plan and
//! applies only if its digest is the reviewed one. A plan without sensitive
//! values needs none of this.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::Plan;
use crate::{Value, ValuePath};

/// The sensitive values a saved plan left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Withheld {
    /// Random, chosen when the plan is saved: equal secrets in two plans give
    /// different digests.
    pub salt: String,
    pub values: Vec<WithheldValue>,
}

/// One sensitive value replaced by a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithheldValue {
    /// Which value of the plan: `var.token`, `file.db (planned)`, `output.url (before)`.
    pub slot: String,
    /// Where inside that value.
    pub path: ValuePath,
    /// SHA-256 of the salt, the slot, the path and the value.
    pub digest: String,
}

impl WithheldValue {
    /// The slot and path, as messages name them.
    pub fn place(&self) -> String {
        let path: String = self.path.iter().map(ToString::to_string).collect();
        format!("{}{path}", self.slot)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("the saved plan withholds the sensitive value of `{0}`, and none was given")]
    Missing(String),
    #[error("the sensitive value of `{0}` is not the one in the reviewed plan")]
    Different(String),
}

impl Plan {
    /// The plan as it may be written to a file: every sensitive value, not
    /// already withheld and not unknown, replaced by a placeholder.
    pub fn sealed(&self) -> Plan {
        let mut plan = self.clone();
        if plan.withheld.salt.is_empty() {
            plan.withheld.salt = uuid::Uuid::new_v4().to_string();
        }
        let salt = plan.withheld.salt.clone();
        let mut withheld = std::mem::take(&mut plan.withheld.values);
        for (slot, value) in plan.slots_mut() {
            for path in value.sensitive_paths() {
                let already = withheld.iter().any(|w| w.slot == slot && w.path == path);
                let Some(part) = value.at_path(&path).filter(|p| !already && p.peel() != &Value::Unknown) else {
                    continue;
                };
                let digest = digest(&salt, &slot, &path, part);
                value.set_path(&path, Value::Null.sensitive());
                withheld.push(WithheldValue { slot: slot.clone(), path, digest });
            }
        }
        plan.withheld.values = withheld;
        plan
    }

    /// True when applying needs the sensitive values back.
    pub fn withholds(&self) -> bool {
        !self.withheld.values.is_empty()
    }

    /// Puts back withheld variables from the values given to apply.
    pub fn unseal_variables(&mut self, given: &BTreeMap<String, Value>) -> Result<(), UnsealError> {
        let source = Plan { variables: given.clone(), ..Plan::default() };
        self.restore(source, |slot| slot.starts_with("var."))
    }

    /// Puts back every other withheld value from `fresh`, a plan made from the
    /// same configuration, variables and state.
    pub fn unseal(&mut self, fresh: Plan) -> Result<(), UnsealError> {
        self.restore(fresh, |_| true)
    }

    fn restore(&mut self, mut source: Plan, wanted: impl Fn(&str) -> bool) -> Result<(), UnsealError> {
        let salt = self.withheld.salt.clone();
        let found: BTreeMap<String, &mut Value> = source.slots_mut().into_iter().collect();
        let (restoring, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.withheld.values).into_iter().partition(|w| wanted(&w.slot));
        self.withheld.values = kept;
        let mut slots: BTreeMap<String, &mut Value> = self.slots_mut().into_iter().collect();
        for withheld in restoring {
            let missing = || UnsealError::Missing(withheld.place());
            let part = found.get(&withheld.slot).and_then(|v| v.at_path(&withheld.path)).ok_or_else(missing)?;
            if digest(&salt, &withheld.slot, &withheld.path, part) != withheld.digest {
                return Err(UnsealError::Different(withheld.place()));
            }
            let slot = slots.get_mut(&withheld.slot).ok_or_else(missing)?;
            if !slot.set_path(&withheld.path, part.clone().sensitive()) {
                return Err(missing());
            }
        }
        Ok(())
    }

    /// Every value the plan holds, each named so that the same value can be
    /// found in another plan of the same inputs.
    fn slots_mut(&mut self) -> Vec<(String, &mut Value)> {
        let mut slots: Vec<(String, &mut Value)> = Vec::new();
        for (name, value) in &mut self.variables {
            slots.push((format!("var.{name}"), value));
        }
        for change in &mut self.changes {
            let address = &change.address;
            slots.extend(change.before.as_mut().map(|v| (format!("{address} (before)"), v)));
            slots.extend(change.after.as_mut().map(|v| (format!("{address} (planned)"), v)));
        }
        for drift in &mut self.drift {
            let address = &drift.address;
            slots.push((format!("{address} (recorded)"), &mut drift.recorded));
            slots.extend(drift.actual.as_mut().map(|v| (format!("{address} (found)"), v)));
        }
        for output in &mut self.outputs {
            let name = &output.name;
            slots.extend(output.before.as_mut().map(|v| (format!("output.{name} (before)"), v)));
            slots.extend(output.after.as_mut().map(|v| (format!("output.{name} (planned)"), v)));
        }
        slots
    }
}

/// The digest of one withheld value: its JSON and where its unknown and
/// sensitive parts are, so that marks count as much as contents.
fn digest(salt: &str, slot: &str, path: &ValuePath, value: &Value) -> String {
    let value = value.peel();
    let mut hasher = Sha256::new();
    for part in [salt, slot, &format!("{path:?}"), &value.to_json().to_string()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(format!("{:?}{:?}", value.unknown_paths(), value.sensitive_paths()).as_bytes());
    hex::encode(hasher.finalize())
}
