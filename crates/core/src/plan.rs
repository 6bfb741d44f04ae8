//! [`Plan`]: the changes a plan proposes, and the saved-plan file (`infra plan -out`),
//! which never holds a sensitive value ([`withheld`]).

mod withheld;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::format::{PathStepV1, paths_from_file, paths_to_file};
use crate::{ResourceAddress, Value};
pub use withheld::{UnsealError, Withheld, WithheldValue};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

/// Why a change is planned, when the attributes alone do not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// In state but no longer in the configuration.
    RemovedFromConfig,
    /// In state under an instance of a module the configuration no longer
    /// makes (its key left the call's `for_each`, or `count` went down).
    ModuleInstanceRemoved,
    /// `-replace ADDR` asked for it.
    ReplaceRequested,
    /// Attributes that cannot change in place changed (`replace_paths` names them).
    ForcedByAttributes,
    /// The object was deleted outside infra; it will be created again.
    GoneOutsideInfra,
    /// `infra destroy`.
    DestroyRequested,
    /// Its provider configuration reads values known only after apply, so it
    /// is configured then; the provider's own checks of this change run then.
    ProviderConfiguredAtApply,
    /// Destroyed by forgetting: `lifecycle { abandon_on_destroy = true }`
    /// removes it from state and leaves the object alone.
    Abandoned,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceChange {
    pub address: ResourceAddress,
    pub provider: crate::ProviderKey,
    pub action: Action,
    /// Refreshed prior attributes; `None` when creating.
    pub before: Option<Value>,
    /// Planned attributes, unknown parts marked; `None` when deleting.
    pub after: Option<Value>,
    /// Attributes whose change forces replacement.
    pub replace_paths: Vec<String>,
    pub reason: Option<ChangeReason>,
    /// The provider's word on how the change is carried out (a rolling update).
    pub note: Option<String>,
    pub dependencies: Vec<ResourceAddress>,
    pub create_before_destroy: bool,
}

/// An object that changed outside infra since the last apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    pub address: ResourceAddress,
    pub recorded: Value,
    /// What refresh found; `None` when the object is gone.
    pub actual: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutputChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    #[default]
    Normal,
    Destroy,
    /// `-refresh-only`: read the real world and propose only to record it in
    /// state; no resource is created, changed or destroyed.
    RefreshOnly,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Plan {
    pub mode: PlanMode,
    pub lineage: String,
    /// The state serial the plan was made against; apply refuses any other.
    pub prior_serial: u64,
    /// Digest of the configuration files and variables; apply refuses a change.
    pub config_digest: String,
    pub variables: BTreeMap<String, Value>,
    pub targets: Vec<ResourceAddress>,
    /// Every resource instance considered, no-ops included, in address order.
    pub changes: Vec<ResourceChange>,
    pub drift: Vec<Drift>,
    pub outputs: Vec<OutputChange>,
    /// What providers want a reviewer to know that is not an error (a port
    /// published to the world, say).
    pub warnings: Vec<PlanWarning>,
    /// Instances recorded under one address that `moved` blocks renamed; the
    /// changes above already use the new addresses.
    pub moved: Vec<Move>,
    /// Existing objects `import` blocks bring under management; the changes
    /// above already start from what was read.
    pub imports: Vec<Import>,
    /// Sensitive values a saved plan left out (placeholders stand in for them).
    pub withheld: Withheld,
    /// `infra rollback`: instances planned (and applied) from an earlier
    /// revision state kept instead of from their blocks. Never saved to a
    /// plan file: a rollback is planned and applied in one run.
    pub restore: BTreeMap<ResourceAddress, Restore>,
}

/// An earlier revision put back by `infra rollback`.
#[derive(Clone, Debug, PartialEq)]
pub struct Restore {
    /// What the instance is planned from: the revision's settings, as the
    /// provider restores them (an image by id where its name has moved on).
    pub settings: Value,
    /// The kept record they come from: once it is current again, it is no
    /// longer kept as an earlier revision.
    pub revision: Value,
}

/// An existing object that applying records in state (`import` block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub address: ResourceAddress,
    pub id: String,
}

/// A recorded instance renamed by a `moved` block: the real object stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub from: ResourceAddress,
    pub to: ResourceAddress,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlanWarning {
    pub address: ResourceAddress,
    pub message: String,
}

/// Counts for the `Plan: 1 to add, 2 to change, 0 to destroy.` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Deletes that only forget (`abandon_on_destroy`): not counted in `destroy`.
    pub forget: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::NoOp => {}
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete if c.reason == Some(ChangeReason::Abandoned) => s.forget += 1,
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    /// True when applying would change resources or outputs (or, refresh-only,
    /// when the real world differs from state).
    pub fn has_changes(&self) -> bool {
        let outputs_change = self.outputs.iter().any(|o| o.before != o.after);
        match self.mode {
            PlanMode::RefreshOnly => !self.drift.is_empty() || outputs_change,
            _ => {
                self.changes.iter().any(|c| c.action != Action::NoOp)
                    || outputs_change
                    || !self.moved.is_empty()
                    || !self.imports.is_empty()
            }
        }
    }

    pub fn change(&self, address: &ResourceAddress) -> Option<&ResourceChange> {
        self.changes.iter().find(|c| &c.address == address)
    }
}

// ---- the saved-plan file ---------------------------------------------------------------

/// 2: sensitive values are withheld (`withheld`); 1 held them in the clear.
pub const PLAN_FORMAT_VERSION: u64 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    format_version: u64,
    infra_version: String,
    mode: PlanMode,
    lineage: String,
    prior_serial: u64,
    config_digest: String,
    variables: BTreeMap<String, EncodedValue>,
    targets: Vec<String>,
    changes: Vec<ChangeV1>,
    drift: Vec<DriftV1>,
    outputs: Vec<OutputV1>,
    /// `(address, message)`; absent in files written before warnings existed.
    #[serde(default)]
    warnings: Vec<(String, String)>,
    /// `(from, to)`; absent in files written before moved blocks existed.
    #[serde(default)]
    moved: Vec<(String, String)>,
    /// `(address, id)`; absent in files written before import blocks existed.
    #[serde(default)]
    imports: Vec<(String, String)>,
    /// Absent in version 1 files, which held sensitive values in the clear.
    #[serde(default)]
    withheld: WithheldV2,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WithheldV2 {
    salt: String,
    values: Vec<WithheldValueV2>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithheldValueV2 {
    slot: String,
    path: Vec<PathStepV1>,
    digest: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeV1 {
    address: String,
    provider: String,
    action: Action,
    before: Option<EncodedValue>,
    after: Option<EncodedValue>,
    replace_paths: Vec<String>,
    reason: Option<ChangeReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    dependencies: Vec<String>,
    create_before_destroy: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DriftV1 {
    address: String,
    recorded: EncodedValue,
    actual: Option<EncodedValue>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputV1 {
    name: String,
    before: Option<EncodedValue>,
    after: Option<EncodedValue>,
}

/// A value with its unknown and sensitive parts listed beside the JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodedValue {
    value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unknown: Vec<Vec<PathStepV1>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sensitive: Vec<Vec<PathStepV1>>,
}

impl EncodedValue {
    fn encode(v: &Value) -> EncodedValue {
        EncodedValue {
            value: v.to_json(),
            unknown: paths_to_file(v.unknown_paths()),
            sensitive: paths_to_file(v.sensitive_paths()),
        }
    }

    fn decode(self) -> Value {
        Value::from_json(&self.value)
            .mark_unknown(&paths_from_file(self.unknown))
            .mark_paths(&paths_from_file(self.sensitive))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("not a saved plan: {0}")]
    Corrupt(String),
    #[error("saved plan has format version {0}, newer than this infra understands ({PLAN_FORMAT_VERSION})")]
    NewerFormat(u64),
}

fn parse_address(text: &str) -> Result<ResourceAddress, PlanFileError> {
    text.parse().map_err(|e: crate::AddressParseError| PlanFileError::Corrupt(e.to_string()))
}

impl Plan {
    /// Serializes the plan for `infra plan -out FILE`, sensitive values withheld.
    pub fn encode(&self) -> Vec<u8> {
        let sealed = self.sealed();
        let file = sealed.file();
        serde_json::to_vec(&file).expect("plan serializes: keys are strings")
    }

    fn file(&self) -> PlanFile {
        PlanFile {
            format_version: PLAN_FORMAT_VERSION,
            infra_version: env!("CARGO_PKG_VERSION").to_string(),
            mode: self.mode,
            lineage: self.lineage.clone(),
            prior_serial: self.prior_serial,
            config_digest: self.config_digest.clone(),
            variables: self.variables.iter().map(|(k, v)| (k.clone(), EncodedValue::encode(v))).collect(),
            targets: self.targets.iter().map(ToString::to_string).collect(),
            changes: self
                .changes
                .iter()
                .map(|c| ChangeV1 {
                    address: c.address.to_string(),
                    provider: c.provider.to_string(),
                    action: c.action,
                    before: c.before.as_ref().map(EncodedValue::encode),
                    after: c.after.as_ref().map(EncodedValue::encode),
                    replace_paths: c.replace_paths.clone(),
                    reason: c.reason,
                    note: c.note.clone(),
                    dependencies: c.dependencies.iter().map(ToString::to_string).collect(),
                    create_before_destroy: c.create_before_destroy,
                })
                .collect(),
            drift: self
                .drift
                .iter()
                .map(|d| DriftV1 {
                    address: d.address.to_string(),
                    recorded: EncodedValue::encode(&d.recorded),
                    actual: d.actual.as_ref().map(EncodedValue::encode),
                })
                .collect(),
            outputs: self
                .outputs
                .iter()
                .map(|o| OutputV1 {
                    name: o.name.clone(),
                    before: o.before.as_ref().map(EncodedValue::encode),
                    after: o.after.as_ref().map(EncodedValue::encode),
                })
                .collect(),
            warnings: self.warnings.iter().map(|w| (w.address.to_string(), w.message.clone())).collect(),
            moved: self.moved.iter().map(|m| (m.from.to_string(), m.to.to_string())).collect(),
            imports: self.imports.iter().map(|i| (i.address.to_string(), i.id.clone())).collect(),
            withheld: WithheldV2 {
                salt: self.withheld.salt.clone(),
                values: self
                    .withheld
                    .values
                    .iter()
                    .map(|w| WithheldValueV2 {
                        slot: w.slot.clone(),
                        path: paths_to_file(vec![w.path.clone()]).pop().unwrap_or_default(),
                        digest: w.digest.clone(),
                    })
                    .collect(),
            },
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Plan, PlanFileError> {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PlanFileError::Corrupt(e.to_string()))?;
        let version = json
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| PlanFileError::Corrupt("no format_version".into()))?;
        if version > PLAN_FORMAT_VERSION {
            return Err(PlanFileError::NewerFormat(version));
        }
        let file: PlanFile = serde_json::from_value(json).map_err(|e| PlanFileError::Corrupt(e.to_string()))?;
        Ok(Plan {
            mode: file.mode,
            lineage: file.lineage,
            prior_serial: file.prior_serial,
            restore: BTreeMap::new(),
            config_digest: file.config_digest,
            variables: file.variables.into_iter().map(|(k, v)| (k, v.decode())).collect(),
            targets: file.targets.iter().map(|t| parse_address(t)).collect::<Result<_, _>>()?,
            changes: file
                .changes
                .into_iter()
                .map(|c| {
                    Ok(ResourceChange {
                        address: parse_address(&c.address)?,
                        provider: crate::ProviderKey::parse(&c.provider),
                        action: c.action,
                        before: c.before.map(EncodedValue::decode),
                        after: c.after.map(EncodedValue::decode),
                        replace_paths: c.replace_paths,
                        reason: c.reason,
                        note: c.note,
                        dependencies: c.dependencies.iter().map(|d| parse_address(d)).collect::<Result<_, _>>()?,
                        create_before_destroy: c.create_before_destroy,
                    })
                })
                .collect::<Result<_, PlanFileError>>()?,
            drift: file
                .drift
                .into_iter()
                .map(|d| {
                    Ok(Drift {
                        address: parse_address(&d.address)?,
                        recorded: d.recorded.decode(),
                        actual: d.actual.map(EncodedValue::decode),
                    })
                })
                .collect::<Result<_, PlanFileError>>()?,
            outputs: file
                .outputs
                .into_iter()
                .map(|o| OutputChange {
                    name: o.name,
                    before: o.before.map(EncodedValue::decode),
                    after: o.after.map(EncodedValue::decode),
                })
                .collect(),
            warnings: file
                .warnings
                .into_iter()
                .map(|(address, message)| Ok(PlanWarning { address: parse_address(&address)?, message }))
                .collect::<Result<_, _>>()?,
            moved: file
                .moved
                .iter()
                .map(|(from, to)| Ok(Move { from: parse_address(from)?, to: parse_address(to)? }))
                .collect::<Result<_, PlanFileError>>()?,
            imports: file
                .imports
                .into_iter()
                .map(|(address, id)| Ok(Import { address: parse_address(&address)?, id }))
                .collect::<Result<_, PlanFileError>>()?,
            withheld: Withheld {
                salt: file.withheld.salt,
                values: file
                    .withheld
                    .values
                    .into_iter()
                    .map(|w| WithheldValue {
                        slot: w.slot,
                        path: paths_from_file(vec![w.path]).pop().unwrap_or_default(),
                        digest: w.digest,
                    })
                    .collect(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstanceKey;

    fn plan_with_secrets(password: &str, content: &str) -> Plan {
        let address = ResourceAddress::new(vec![], "file", "x", InstanceKey::Str("a".into()));
        Plan {
            lineage: "l".into(),
            prior_serial: 4,
            config_digest: "d".into(),
            variables: [("pw".to_string(), Value::string(password).sensitive())].into(),
            changes: vec![ResourceChange {
                address: address.clone(),
                provider: "local".into(),
                action: Action::Create,
                before: None,
                after: Some(Value::object([
                    ("id", Value::Unknown),
                    ("content", Value::string(content).sensitive()),
                    ("token", Value::Unknown.sensitive()),
                ])),
                replace_paths: vec![],
                reason: None,
                note: Some("rolling update".into()),
                dependencies: vec![address],
                create_before_destroy: false,
            }],
            ..Plan::default()
        }
    }

    #[test]
    fn a_saved_plan_holds_no_secret_and_gets_it_back_from_the_same_inputs() {
        let plan = plan_with_secrets("hunter2", "the content");
        let bytes = plan.encode();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("hunter2") && !text.contains("the content"), "{text}");

        let mut saved = Plan::decode(&bytes).expect("decodes");
        assert_eq!(saved.withheld.values.len(), 2, "the unknown secret has nothing to withhold");
        let given = [("pw".to_string(), Value::string("hunter2"))].into();
        saved.unseal_variables(&given).expect("the same password");
        assert_eq!(saved.variables, plan.variables);
        saved.unseal(plan.clone()).expect("the same plan");
        assert!(!saved.withholds());
        assert_eq!(saved.changes, plan.changes);
        assert_eq!(saved.variables, plan.variables);
    }

    #[test]
    fn other_secrets_are_refused_and_named_without_their_value() {
        let saved = Plan::decode(&plan_with_secrets("hunter2", "the content").encode()).expect("decodes");

        let mut wrong_password = saved.clone();
        let given = [("pw".to_string(), Value::string("letmein"))].into();
        let error = wrong_password.unseal_variables(&given).expect_err("another password").to_string();
        assert_eq!(error, "the sensitive value of `var.pw` is not the one in the reviewed plan");

        let mut none_given = saved.clone();
        let error = none_given.unseal_variables(&BTreeMap::new()).expect_err("no password").to_string();
        assert_eq!(error, "the saved plan withholds the sensitive value of `var.pw`, and none was given");

        let mut other_content = saved;
        let error = other_content.unseal(plan_with_secrets("hunter2", "changed")).expect_err("changed").to_string();
        assert_eq!(
            error,
            "the sensitive value of `file.x[\"a\"] (planned).content` is not the one in the reviewed plan"
        );
    }

    #[test]
    fn saving_a_loaded_plan_again_changes_nothing() {
        let once = Plan::decode(&plan_with_secrets("pw", "c").encode()).expect("decodes");
        let twice = Plan::decode(&once.encode()).expect("decodes");
        assert_eq!(once, twice);
        assert!(Plan::decode(b"garbage").is_err());
    }
}
