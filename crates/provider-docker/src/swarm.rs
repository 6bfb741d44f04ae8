//! `swarm` and `swarm_node`: a Docker Swarm made of the engines a
//! configuration already reaches. `swarm` initialises one on the engine of its
//! provider (the first manager) and reports the address and join tokens the
//! others need; `swarm_node` joins the engine of its provider to it, as a
//! worker or a manager. Deleting either makes that engine leave.
//!
//! A swarm carries the marker labels in its own spec, so an engine that a
//! killed apply had already initialised is adopted. A node carries no labels:
//! an engine found in the swarm it was to join is the node, made before a
//! crash, and is adopted too.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{LocalNodeState, SwarmInitRequest, SwarmJoinRequest, SwarmSpec};
use bollard::query_parameters::LeaveSwarmOptions;
use infra_core::{AttributeSchema, OperationContext, ProviderError, Refined, Schema, Type, Value};

use crate::util::{Observed, docker_error, labels};

/// The port managers listen on for the swarm's own traffic.
const MANAGER_PORT: &str = "2377";
const DEFAULT_LISTEN: &str = "0.0.0.0:2377";

pub fn swarm_schema() -> Schema {
    Schema::new("A Docker Swarm, initialised on the engine of its provider, which becomes its first manager.")
        .attribute(
            "advertise_addr",
            AttributeSchema::optional(Type::String).force_new().describe(
                "the address (or interface, such as eth0) the other nodes reach this one at; \
                 default: Docker's choice, which fails when the server has several addresses",
            ),
        )
        .attribute(
            "listen_addr",
            AttributeSchema::optional(Type::String).default(Value::string(DEFAULT_LISTEN)).force_new(),
        )
        .attribute(
            "default_addr_pool",
            AttributeSchema::optional(Type::list(Type::String))
                .force_new()
                .describe("the subnets overlay networks are cut from (CIDR); default Docker's 10.0.0.0/8"),
        )
        .attribute("id", AttributeSchema::computed(Type::String).describe("the swarm's cluster id"))
        .attribute("node_id", AttributeSchema::computed(Type::String).describe("the first manager's node id"))
        .attribute(
            "address",
            AttributeSchema::computed(Type::String).describe("HOST:PORT other engines join at (`swarm_node`)"),
        )
        .attribute("worker_token", AttributeSchema::computed(Type::String).sensitive())
        .attribute("manager_token", AttributeSchema::computed(Type::String).sensitive())
}

pub fn node_schema() -> Schema {
    Schema::new("The engine of its provider, joined to a swarm as a worker or a manager.")
        .attribute(
            "swarm",
            AttributeSchema::required(Type::Any)
                .describe("the swarm to join: `swarm = swarm.NAME`; another swarm (another id) replaces the node"),
        )
        .attribute(
            "role",
            AttributeSchema::optional(Type::String)
                .default(Value::string("worker"))
                .force_new()
                .describe("worker or manager"),
        )
        .attribute(
            "advertise_addr",
            AttributeSchema::optional(Type::String)
                .force_new()
                .describe("the address (or interface) the other nodes reach this one at"),
        )
        .attribute(
            "listen_addr",
            AttributeSchema::optional(Type::String).default(Value::string(DEFAULT_LISTEN)).force_new(),
        )
        .attribute("id", AttributeSchema::computed(Type::String).describe("the node id the swarm knows this engine by"))
        .attribute("swarm_id", AttributeSchema::computed(Type::String))
}

/// A node is replaced when it is to join another swarm (another id, or one
/// not made yet), not when the swarm's tokens were rotated: they only matter
/// for joining.
pub fn plan_node(prior: Option<&Value>, proposed: Value) -> Refined {
    let swarm_id = |v: &Value| v.get("swarm").and_then(|s| s.get("id")).map(|id| id.peel().clone());
    let another = prior.is_some_and(|p| swarm_id(p) != swarm_id(&proposed));
    let refined = Refined::new(proposed);
    if another { refined.replace_on(vec!["swarm".to_string()]) } else { refined }
}

pub fn validate_node(config: &Value) -> Vec<ProviderError> {
    match config.get("role").and_then(Value::as_str) {
        None | Some("worker" | "manager") => Vec::new(),
        Some(other) => vec![ProviderError::invalid("role", format!("role {other:?} is neither worker nor manager"))],
    }
}

/// What the engine says of its membership.
struct Membership {
    state: LocalNodeState,
    node_id: String,
    node_addr: String,
    /// Known on managers only.
    cluster_id: Option<String>,
    /// The managers' addresses (`HOST:PORT`), as a worker knows its swarm.
    managers: Vec<String>,
}

async fn membership(docker: &Docker) -> Result<Membership, ProviderError> {
    let info = docker.info().await.map_err(|e| docker_error("reading the engine's swarm membership", e))?;
    let swarm = info.swarm.unwrap_or_default();
    Ok(Membership {
        state: swarm.local_node_state.unwrap_or(LocalNodeState::INACTIVE),
        node_id: swarm.node_id.unwrap_or_default(),
        node_addr: swarm.node_addr.unwrap_or_default(),
        cluster_id: swarm.cluster.and_then(|c| c.id),
        managers: swarm.remote_managers.unwrap_or_default().into_iter().filter_map(|m| m.addr).collect(),
    })
}

impl Membership {
    fn joined(&self) -> bool {
        matches!(self.state, LocalNodeState::ACTIVE | LocalNodeState::PENDING | LocalNodeState::LOCKED)
    }
}

/// The swarm this engine manages, as an observed object; none when it is in no
/// swarm or only a worker of one.
pub async fn list_swarm(docker: &Docker) -> Result<HashMap<String, Observed>, ProviderError> {
    let member = membership(docker).await?;
    if !member.joined() || member.cluster_id.is_none() {
        return Ok(HashMap::new());
    }
    let swarm = docker.inspect_swarm().await.map_err(|e| docker_error("inspecting the swarm", e))?;
    let id = swarm.id.unwrap_or_default();
    let tokens = swarm.join_tokens.unwrap_or_default();
    let spec_labels = swarm.spec.and_then(|s| s.labels).unwrap_or_default();
    let value = Value::object([
        ("id", Value::string(&id)),
        ("node_id", Value::string(&member.node_id)),
        ("address", Value::string(format!("{}:{MANAGER_PORT}", member.node_addr))),
        ("worker_token", Value::string(tokens.worker.unwrap_or_default()).sensitive()),
        ("manager_token", Value::string(tokens.manager.unwrap_or_default()).sensitive()),
    ]);
    Ok(HashMap::from([(id, observed(value, spec_labels))]))
}

/// This engine's node in whatever swarm it has joined.
pub async fn list_node(docker: &Docker) -> Result<HashMap<String, Observed>, ProviderError> {
    let member = membership(docker).await?;
    if !member.joined() {
        return Ok(HashMap::new());
    }
    let value = Value::object([("id", Value::string(&member.node_id))]);
    Ok(HashMap::from([(member.node_id.clone(), observed(value, HashMap::new()))]))
}

/// Markers only: neither type has user labels.
fn observed(value: Value, labels: HashMap<String, String>) -> Observed {
    let marker = |key: &str| labels.get(key).cloned();
    Observed { lineage: marker(crate::util::LINEAGE), address: marker(crate::util::ADDRESS), value, labels }
}

pub async fn init(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let member = membership(docker).await?;
    if member.joined() {
        return Err(ProviderError::conflict(format!(
            "the engine is already in a swarm (node {}) that this configuration did not make: \
             make it leave (`docker swarm leave`) or remove this `swarm` block",
            member.node_id
        )));
    }
    let request = SwarmInitRequest {
        listen_addr: planned.non_empty_text("listen_addr").map(str::to_string),
        advertise_addr: planned.non_empty_text("advertise_addr").map(str::to_string),
        default_addr_pool: Some(planned.strings("default_addr_pool")).filter(|pool| !pool.is_empty()),
        spec: Some(SwarmSpec { labels: Some(labels(ctx, &Value::Null)), ..Default::default() }),
        ..Default::default()
    };
    docker.init_swarm(request).await.map_err(|e| docker_error("initialising the swarm", e))?;
    let found = list_swarm(docker).await?;
    let swarm = found.into_values().next().ok_or_else(|| {
        ProviderError::failed("the swarm was initialised but the engine does not report it".to_string())
    })?;
    Ok(crate::util::merge_observed(planned, &swarm.value))
}

pub async fn join(docker: &Docker, planned: &Value) -> Result<Value, ProviderError> {
    let swarm = planned
        .get("swarm")
        .filter(|s| !s.is_null())
        .ok_or_else(|| ProviderError::invalid("swarm", "give the swarm to join: `swarm = swarm.NAME`"))?;
    let role = planned.non_empty_text("role").unwrap_or("worker");
    let token = swarm.non_empty_text(&format!("{role}_token"));
    let (Some(address), Some(token)) = (swarm.non_empty_text("address"), token) else {
        return Err(ProviderError::invalid(
            "swarm",
            format!("`swarm` needs the swarm's `address` and `{role}_token`: write `swarm = swarm.NAME`"),
        ));
    };
    let member = membership(docker).await?;
    if member.joined() {
        return Err(ProviderError::conflict(format!(
            "the engine is already in a swarm (node {}): make it leave (`docker swarm leave`) first",
            member.node_id
        )));
    }
    let request = SwarmJoinRequest {
        listen_addr: planned.non_empty_text("listen_addr").map(str::to_string),
        advertise_addr: planned.non_empty_text("advertise_addr").map(str::to_string),
        remote_addrs: Some(vec![address.to_string()]),
        join_token: Some(token.to_string()),
        ..Default::default()
    };
    docker.join_swarm(request).await.map_err(|e| docker_error(&format!("joining the swarm at {address}"), e))?;
    joined(docker, planned).await?.ok_or_else(|| {
        ProviderError::failed(format!("the engine joined the swarm at {address} but does not report a node id"))
    })
}

/// The node, when this engine is in the swarm `planned` names: a join that a
/// killed run made and did not record.
pub async fn adopt_node(docker: &Docker, planned: &Value) -> Result<Option<Value>, ProviderError> {
    let member = membership(docker).await?;
    let swarm = planned.get("swarm").cloned().unwrap_or_default();
    // A worker does not know its cluster's id, only its managers' addresses.
    let same_swarm = match member.cluster_id.as_deref() {
        Some(id) => id == swarm.text("id"),
        None => member.managers.iter().any(|m| m == swarm.text("address")),
    };
    if !member.joined() || !same_swarm {
        return Ok(None);
    }
    joined(docker, planned).await
}

async fn joined(docker: &Docker, planned: &Value) -> Result<Option<Value>, ProviderError> {
    let member = membership(docker).await?;
    if !member.joined() || member.node_id.is_empty() {
        return Ok(None);
    }
    let mut state = planned.clone();
    state.set("id", Value::string(member.node_id));
    state.set("swarm_id", Value::string(planned.get("swarm").map(|s| s.text("id")).unwrap_or_default()));
    Ok(Some(state))
}

/// Makes the engine leave its swarm. `force`: a manager leaves even when that
/// costs the swarm its quorum (the configuration said it goes).
pub async fn leave(docker: &Docker, force: bool) -> Result<(), ProviderError> {
    if !membership(docker).await?.joined() {
        return Ok(());
    }
    match docker.leave_swarm(Some(LeaveSwarmOptions { force })).await {
        // 503: "This node is not part of a swarm" (left meanwhile).
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 503, .. }) | Ok(()) => Ok(()),
        Err(e) => Err(docker_error("leaving the swarm", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_replaced_for_another_swarm_not_for_new_tokens() {
        let node = |id: Value, token: &str| {
            Value::object([("swarm", Value::object([("id", id), ("worker_token", Value::string(token).sensitive())]))])
        };
        let prior = node(Value::string("s1"), "SWMTKN-1-a");
        let rotated = plan_node(Some(&prior), node(Value::string("s1"), "SWMTKN-1-b"));
        assert!(rotated.replace_on.is_empty());
        let another = plan_node(Some(&prior), node(Value::Unknown, ""));
        assert_eq!(another.replace_on, ["swarm"]);
    }

    #[test]
    fn a_node_role_is_worker_or_manager() {
        let node = |role: &str| Value::object([("role", Value::string(role))]);
        assert!(validate_node(&node("worker")).is_empty());
        assert!(validate_node(&node("manager")).is_empty());
        let refused = validate_node(&node("leader"));
        assert_eq!(refused.len(), 1);
        assert!(refused[0].message.contains("\"leader\" is neither worker nor manager"), "{}", refused[0].message);
    }
}
