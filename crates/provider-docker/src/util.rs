//! What the resource modules share: marker labels, listing filters, error
//! translation, and merging what Docker reports into recorded state.

use std::collections::HashMap;

use infra_core::{MARKER_ADDRESS, MARKER_LINEAGE, OperationContext, ProviderError, Value};

pub const LINEAGE: &str = MARKER_LINEAGE;
pub const ADDRESS: &str = MARKER_ADDRESS;
/// Which member of a container's replica set (1, 2, ...).
pub const REPLICA: &str = "infra.replica";
/// The digest of the configuration a container was created from.
pub const REVISION: &str = "infra.revision";
/// What an object does for its resource when it is not the resource itself
/// (`proxy`: the proxy in front of a container).
pub const ROLE: &str = "infra.role";

/// Labels infra sets for itself, kept apart from the user's.
pub fn is_marker(label: &str) -> bool {
    [LINEAGE, ADDRESS, REPLICA, REVISION, ROLE].contains(&label)
}

/// Which objects a list call returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only objects carrying infra's marker labels.
    Ours,
    All,
}

impl Scope {
    pub fn filters(self) -> Option<HashMap<String, Vec<String>>> {
        match self {
            Scope::Ours => Some([("label".to_string(), vec![LINEAGE.to_string()])].into()),
            Scope::All => None,
        }
    }
}

/// An object as Docker reports it, with the markers kept apart from the
/// user's own labels.
pub struct Observed {
    pub value: Value,
    pub lineage: Option<String>,
    pub address: Option<String>,
    /// Every label, markers included.
    pub labels: HashMap<String, String>,
}

impl Observed {
    pub fn new(mut value: Value, labels: &HashMap<String, String>) -> Observed {
        let user_labels: Vec<(String, Value)> =
            labels.iter().filter(|(k, _)| !is_marker(k)).map(|(k, v)| (k.clone(), Value::string(v))).collect();
        if let Value::Object(map) = &mut value {
            map.insert("labels".into(), if user_labels.is_empty() { Value::Null } else { Value::object(user_labels) });
        }
        Observed {
            value,
            lineage: labels.get(LINEAGE).cloned(),
            address: labels.get(ADDRESS).cloned(),
            labels: labels.clone(),
        }
    }

    pub fn id(&self) -> &str {
        self.value.get("id").and_then(Value::as_str).unwrap_or_default()
    }

    /// Whether this object was made for `address` by the state with `lineage`.
    pub fn made_for(&self, lineage: &str, address: &str) -> bool {
        self.lineage.as_deref() == Some(lineage) && self.address.as_deref() == Some(address)
    }
}

/// Whether a Docker object's labels name this state and `ctx`'s address.
pub fn carries_markers(ctx: &OperationContext, labels: &HashMap<String, String>) -> bool {
    labels.get(LINEAGE) == Some(&ctx.lineage) && labels.get(ADDRESS) == Some(&ctx.address.to_string())
}

/// The user's labels plus the markers naming this state and address.
pub fn labels(ctx: &OperationContext, planned: &Value) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = planned
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    labels.insert(LINEAGE.into(), ctx.lineage.clone());
    labels.insert(ADDRESS.into(), ctx.address.to_string());
    labels
}

pub fn docker_error(action: &str, e: bollard::errors::Error) -> ProviderError {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            let message = format!("{action}: Docker answered {status_code}: {}", message.trim());
            // 409: the name is taken (or the object is busy); the engine looks
            // whether what holds the name is this state's own.
            if status_code == 409 { ProviderError::conflict(message) } else { ProviderError::failed(message) }
        }
        other => {
            ProviderError::unavailable(format!("{action}: the Docker daemon did not answer: {}", root_cause(&other)))
        }
    }
}

/// The innermost reason of a transport error ("Connection refused (os error
/// 111)"), not the HTTP client's own wording around it.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

pub fn is_conflict(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 409, .. })
}

pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// Whether Docker refused to remove a network because containers are still
/// attached to it.
pub fn has_active_endpoints(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 403, message }
        if message.contains("active endpoints"))
}

/// Recorded state with what Docker reports laid over it: what Docker does not
/// report (a container's env, say) keeps its recorded value.
pub fn merge_observed(recorded: &Value, observed: &Value) -> Value {
    let mut merged = recorded.clone();
    if let (Value::Object(into), Some(from)) = (&mut merged, observed.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
    merged
}

/// The planned value with the computed attributes of what exists.
pub fn with_computed(planned: &Value, existing: &Value) -> Value {
    planned.with_computed(existing)
}

pub fn str_list(value: &Value, key: &str) -> Option<Vec<String>> {
    value
        .get(key)
        .and_then(Value::as_list)
        .map(|l| l.iter().filter_map(|v| v.peel().as_str().map(str::to_string)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError { status_code, message: message.to_string() }
    }

    #[test]
    fn only_a_network_still_in_use_counts_as_having_active_endpoints() {
        let in_use = "error while removing network: network app-net id 5c3a has active endpoints";
        assert!(has_active_endpoints(&refused(403, in_use)));
        assert!(!has_active_endpoints(&refused(403, "operation not permitted on a predefined network")));
        assert!(!has_active_endpoints(&refused(404, "network app-net not found")));
    }
}
