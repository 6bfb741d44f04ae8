//! The state file format, version 1 (documented in `state/README.md`).
//!
//! Only these types are serialized; the in-memory [`State`] is not. A file of an
//! older version is upgraded here on load; a newer one is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Encryption, ResourceState, State, StateError};
use crate::value::PathStep;
use crate::{ResourceAddress, Value};

/// Version 2 adds `providers` (settings of provider instances of a
/// configuration with `for_each`); version 3, a resource's `revisions` (its
/// earlier records, for `infra rollback`). A state is written with the lowest
/// version that holds what it has, so an older infra reads it; one with more
/// is refused there as too new rather than misread.
pub const CURRENT_FORMAT_VERSION: u64 = 3;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    format_version: u64,
    infra_version: String,
    lineage: String,
    serial: u64,
    #[serde(default)]
    outputs: BTreeMap<String, OutputV1>,
    #[serde(default)]
    resources: Vec<ResourceV1>,
    /// Settings of provider instances (`for_each`) that made what is recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    providers: BTreeMap<String, OutputV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputV1 {
    value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sensitive_paths: Vec<Vec<PathStepV1>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceV1 {
    address: String,
    provider: String,
    attributes: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sensitive_paths: Vec<Vec<PathStepV1>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    create_before_destroy: bool,
    /// Earlier records, newest first (format version 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    revisions: Vec<OutputV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum PathStepV1 {
    Index(usize),
    Key(String),
}

pub(crate) fn paths_to_file(paths: Vec<Vec<PathStep>>) -> Vec<Vec<PathStepV1>> {
    paths
        .into_iter()
        .map(|p| {
            p.into_iter()
                .map(|s| match s {
                    PathStep::Key(k) => PathStepV1::Key(k),
                    PathStep::Index(i) => PathStepV1::Index(i),
                })
                .collect()
        })
        .collect()
}

pub(crate) fn paths_from_file(paths: Vec<Vec<PathStepV1>>) -> Vec<Vec<PathStep>> {
    paths
        .into_iter()
        .map(|p| {
            p.into_iter()
                .map(|s| match s {
                    PathStepV1::Key(k) => PathStep::Key(k),
                    PathStepV1::Index(i) => PathStep::Index(i),
                })
                .collect()
        })
        .collect()
}

/// Serializes state as pretty JSON, the current format version.
pub fn encode(state: &State) -> Vec<u8> {
    let file = FileV1 {
        format_version: format_version(state),
        infra_version: env!("CARGO_PKG_VERSION").to_string(),
        lineage: state.lineage.clone(),
        serial: state.serial,
        outputs: state.outputs.iter().map(|(name, value)| (name.clone(), encode_value(value))).collect(),
        resources: state.resources.iter().map(|(address, r)| encode_resource(address, r)).collect(),
        providers: state.providers.iter().map(|(key, value)| (key.to_string(), encode_value(value))).collect(),
    };
    let mut out = serde_json::to_vec_pretty(&file).expect("state serializes: keys are strings");
    out.push(b'\n');
    out
}

/// The lowest version that holds everything `state` has.
fn format_version(state: &State) -> u64 {
    if state.resources.values().any(|r| !r.revisions.is_empty()) {
        3
    } else if !state.providers.is_empty() {
        2
    } else {
        1
    }
}

fn encode_value(value: &Value) -> OutputV1 {
    OutputV1 { value: value.to_json(), sensitive_paths: paths_to_file(value.sensitive_paths()) }
}

fn decode_value(value: OutputV1) -> Value {
    Value::from_json(&value.value).mark_paths(&paths_from_file(value.sensitive_paths))
}

fn encode_resource(address: &ResourceAddress, r: &ResourceState) -> ResourceV1 {
    ResourceV1 {
        address: address.to_string(),
        provider: r.provider.to_string(),
        attributes: r.attributes.to_json(),
        sensitive_paths: paths_to_file(r.attributes.sensitive_paths()),
        dependencies: r.dependencies.iter().map(ToString::to_string).collect(),
        create_before_destroy: r.create_before_destroy,
        revisions: r.revisions.iter().map(encode_value).collect(),
    }
}

/// The state as a store writes it: encoded, then sealed when encryption is on.
pub fn encode_sealed(state: &State, encryption: Option<&Encryption>) -> Vec<u8> {
    super::encryption::seal(encryption, encode(state))
}

/// The inverse of [`encode_sealed`]; plain state is read as it is.
pub fn decode_sealed(path: &str, bytes: &[u8], encryption: Option<&Encryption>) -> Result<State, StateError> {
    decode(path, &super::encryption::open(encryption, path, bytes)?)
}

/// Parses a state file of any supported version. `path` only names it in errors.
pub fn decode(path: &str, bytes: &[u8]) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt { path: path.to_string(), reason };
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let version = json
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("no numeric \"format_version\"".into()))?;
    if version > CURRENT_FORMAT_VERSION {
        return Err(StateError::NewerFormat {
            path: path.to_string(),
            found: version,
            supported: CURRENT_FORMAT_VERSION,
        });
    }
    // Versions 1 to 3 share one layout (2 adds `providers`, 3 `revisions`); older
    // versions would be upgraded here, each step turning N into N+1.
    let file: FileV1 = serde_json::from_value(json).map_err(|e| corrupt(e.to_string()))?;
    let providers =
        file.providers.into_iter().map(|(key, value)| (crate::ProviderKey::parse(&key), decode_value(value))).collect();
    let mut state = State {
        lineage: file.lineage,
        serial: file.serial,
        resources: BTreeMap::new(),
        outputs: BTreeMap::new(),
        providers,
    };
    if state.lineage.is_empty() {
        return Err(corrupt("empty lineage".into()));
    }
    for (name, output) in file.outputs {
        state.outputs.insert(name, decode_value(output));
    }
    for r in file.resources {
        let (address, resource) = decode_resource(r).map_err(corrupt)?;
        if state.resources.insert(address.clone(), resource).is_some() {
            return Err(corrupt(format!("resource {address} appears twice")));
        }
    }
    Ok(state)
}

fn decode_resource(r: ResourceV1) -> Result<(ResourceAddress, ResourceState), String> {
    let address: ResourceAddress = r.address.parse().map_err(|e: crate::AddressParseError| e.to_string())?;
    let dependencies = r
        .dependencies
        .iter()
        .map(|d| d.parse())
        .collect::<Result<_, crate::AddressParseError>>()
        .map_err(|e| e.to_string())?;
    let attributes = Value::from_json(&r.attributes).mark_paths(&paths_from_file(r.sensitive_paths));
    Ok((
        address,
        ResourceState {
            provider: crate::ProviderKey::parse(&r.provider),
            attributes,
            dependencies,
            create_before_destroy: r.create_before_destroy,
            revisions: r.revisions.into_iter().map(decode_value).collect(),
        },
    ))
}

// ---- the journal: one line per resource operation between snapshots ------------------

/// One journal line: the resource's new record, or `null` when it was removed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalEntryV1 {
    lineage: String,
    serial: u64,
    address: String,
    resource: Option<ResourceV1>,
}

/// Journal lines (newline-terminated JSON, each sealed on its own when encryption
/// is on) recording `touched` as `state` has them.
pub fn encode_journal(state: &State, touched: &[ResourceAddress], encryption: Option<&Encryption>) -> Vec<u8> {
    let mut out = Vec::new();
    for address in touched {
        let entry = JournalEntryV1 {
            lineage: state.lineage.clone(),
            serial: state.serial,
            address: address.to_string(),
            resource: state.resources.get(address).map(|r| encode_resource(address, r)),
        };
        let line = serde_json::to_vec(&entry).expect("journal entries serialize");
        out.extend(super::encryption::seal(encryption, line));
        out.push(b'\n');
    }
    out
}

/// Applies journal lines newer than `state.serial`. A last line without its newline
/// is a write cut short by a crash and is ignored; any other bad line is corruption.
pub fn replay_journal(
    path: &str,
    state: &mut State,
    bytes: &[u8],
    encryption: Option<&Encryption>,
) -> Result<(), StateError> {
    let corrupt = |reason: String| StateError::Corrupt { path: path.to_string(), reason };
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(last) => &bytes[..=last],
        None => return Ok(()),
    };
    let base_serial = state.serial;
    for (number, line) in complete.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let line = super::encryption::open(encryption, path, line)?;
        let entry: JournalEntryV1 =
            serde_json::from_slice(&line).map_err(|e| corrupt(format!("journal line {}: {e}", number + 1)))?;
        if entry.lineage != state.lineage {
            return Err(corrupt(format!("journal line {} belongs to another state (lineage)", number + 1)));
        }
        if entry.serial <= base_serial {
            continue;
        }
        match entry.resource {
            Some(r) => {
                let (address, resource) = decode_resource(r).map_err(corrupt)?;
                state.resources.insert(address, resource);
            }
            None => {
                let address: ResourceAddress =
                    entry.address.parse().map_err(|e: crate::AddressParseError| corrupt(e.to_string()))?;
                state.resources.remove(&address);
            }
        }
        state.serial = state.serial.max(entry.serial);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstanceKey;

    #[test]
    fn round_trip_keeps_sensitive_marks_and_dependencies() {
        let mut state = State::new();
        let address =
            ResourceAddress::new(vec![crate::ModuleStep::plain("m")], "random_password", "db", InstanceKey::Int(0));
        state.resources.insert(
            address.clone(),
            ResourceState {
                provider: "local".into(),
                attributes: Value::object([("result", Value::string("s3cret").sensitive())]),
                dependencies: vec![ResourceAddress::new(vec![], "file", "x", InstanceKey::None)],
                create_before_destroy: true,
                revisions: Vec::new(),
            },
        );
        state.outputs.insert("pw".into(), Value::string("s3cret").sensitive());
        let decoded = decode("test", &encode(&state)).expect("decodes");
        assert_eq!(decoded, state);
    }

    /// Every format version keeps a fixture under state/ that must keep loading.
    #[test]
    fn loads_the_version_1_fixture() {
        let state =
            decode("state/v1/example.json", include_bytes!("../../../../state/v1/example.json")).expect("loads");
        assert_eq!(state.serial, 4);
        assert_eq!(state.resources.len(), 3);
        let password: ResourceAddress = "random_password.db".parse().expect("address");
        let result = state.resources[&password].attributes.get("result").expect("result");
        assert!(matches!(result, Value::Sensitive(_)), "sensitive paths are re-applied on load");
        let env: ResourceAddress = "file.env".parse().expect("address");
        assert_eq!(state.resources[&env].dependencies.len(), 2);
        assert_eq!(state.outputs["motd"], Value::string("motd"));
        assert_eq!(encode(&state), include_bytes!("../../../../state/v1/example.json"), "encoding is stable");
    }

    #[test]
    fn settings_of_provider_instances_make_the_file_version_2_and_read_back() {
        let mut state = State::new();
        let key = crate::ProviderKey::parse("docker.hosts[\"web1\"]");
        let settings =
            Value::object([("host", Value::string("ssh://web1")), ("token", Value::string("t").sensitive())]);
        state.providers.insert(key.clone(), settings.clone());
        let bytes = encode(&state);
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(json["format_version"], 2, "an older infra refuses it as too new, not as corrupt");
        assert_eq!(decode("test", &bytes).expect("decodes").providers[&key], settings, "secrets stay marked");
        state.providers.clear();
        let json: serde_json::Value = serde_json::from_slice(&encode(&state)).expect("json");
        assert_eq!(json["format_version"], 1, "without them, every infra reads it");
    }

    #[test]
    fn kept_revisions_make_the_file_version_3_and_keep_their_secrets_marked() {
        let mut state = State::new();
        let address: ResourceAddress = "container.web".parse().expect("address");
        let record = |greeting: &str| {
            Value::object([("image", Value::string("web:1")), ("env", Value::string(greeting).sensitive())])
        };
        state.resources.insert(
            address.clone(),
            ResourceState {
                provider: "docker".into(),
                attributes: record("new"),
                dependencies: Vec::new(),
                create_before_destroy: false,
                revisions: vec![record("old"), record("older")],
            },
        );
        state.serial = 5;
        let bytes = encode(&state);
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(json["format_version"], 3, "an older infra refuses it as too new, not as corrupt");
        assert_eq!(decode("test", &bytes).expect("decodes"), state, "revisions read back with their marks");
        let journal = encode_journal(&state, std::slice::from_ref(&address), None);
        let mut replayed = State { serial: 0, ..state.clone() };
        replayed.resources.clear();
        replay_journal("test", &mut replayed, &journal, None).expect("replays");
        assert_eq!(replayed.resources[&address].revisions, state.resources[&address].revisions);
    }

    #[test]
    fn refuses_newer_and_corrupt_files() {
        let newer = br#"{"format_version": 99, "lineage": "x", "serial": 1}"#;
        assert!(matches!(decode("s", newer), Err(StateError::NewerFormat { found: 99, .. })));
        assert!(matches!(decode("s", b"{\"format_"), Err(StateError::Corrupt { .. })));
        assert!(matches!(decode("s", b""), Err(StateError::Corrupt { .. })));
    }
}
