//! `swarm_members`: what a swarm's managers hold about its nodes, through a
//! manager's engine. Each listed node gets its labels (for placement
//! constraints) and availability; a node that leaves the list is drained,
//! its tasks moved to the others, and removed from the swarm before its own
//! engine leaves (`swarm_node`, which depends on nothing here, is deleted
//! after this update). Refresh records each node's state, so a plan says
//! which nodes the swarm has lost.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{Node, NodeSpec, NodeSpecAvailabilityEnum};
use bollard::query_parameters::{DeleteNodeOptions, ListNodesOptions, ListTasksOptions, UpdateNodeOptions};
use infra_core::{AttributeSchema, ProviderError, Refined, Schema, Type, Value};

use crate::util::{Observed, docker_error};

/// How long a drained node's tasks may take to stop.
const DRAIN: Duration = Duration::from_secs(180);

pub fn schema() -> Schema {
    Schema::new("The nodes of a swarm as its managers see them: labels and availability, and removal of nodes no longer listed.")
        .attribute("swarm", AttributeSchema::required(Type::Any).describe("the swarm: `swarm = swarm.NAME`"))
        .attribute(
            "nodes",
            AttributeSchema::required(Type::map(Type::Any)).describe(
                "by name: { id = swarm_node.X.id (or swarm.NAME.node_id), labels = { zone = \"a\" }, \
                 availability = \"active\" | \"pause\" | \"drain\" }; a node left out is drained and removed",
            ),
        )
        .attribute("id", AttributeSchema::computed(Type::String))
        .attribute(
            "status",
            AttributeSchema::computed(Type::map(Type::String))
                .describe("each node's state as the managers last saw it: ready, down, disconnected, unknown or missing"),
        )
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let Some(nodes) = config.get("nodes").and_then(Value::as_object) else { return Vec::new() };
    nodes
        .iter()
        .filter_map(|(name, node)| {
            let availability = node.get("availability").and_then(Value::as_str)?;
            (!matches!(availability, "active" | "pause" | "drain")).then(|| {
                ProviderError::invalid(
                    "nodes",
                    format!("nodes.{name}.availability {availability:?} is not active, pause or drain"),
                )
            })
        })
        .collect()
}

/// A node the swarm runs no task on any more, or cannot reach, is worth a
/// reviewer's attention: the plan says which.
pub fn plan(prior: Option<&Value>, proposed: Value) -> Refined {
    let status = prior.and_then(|p| p.get("status")).and_then(Value::as_object).cloned().unwrap_or_default();
    let warnings = status
        .iter()
        .filter(|(_, state)| state.as_str() != Some("ready"))
        .map(|(name, state)| {
            format!(
                "swarm node {name} is {}: the swarm runs its tasks on the other nodes. Bring it back, or take it \
                 out of `nodes` (and its `swarm_node`) to drain and remove it",
                state.as_str().unwrap_or("unknown")
            )
        })
        .collect();
    Refined::new(proposed).warn(warnings)
}

/// The swarm's nodes, by id, as one observed object: what `read` lays over
/// the recorded state.
pub async fn list(docker: &Docker) -> Result<HashMap<String, Observed>, ProviderError> {
    let nodes = all_nodes(docker).await?;
    let by_id: BTreeMap<String, Value> = nodes
        .iter()
        .filter_map(|n| {
            let id = n.id.clone()?;
            let spec = n.spec.clone().unwrap_or_default();
            let labels: BTreeMap<String, Value> =
                spec.labels.unwrap_or_default().into_iter().map(|(k, v)| (k, Value::string(v))).collect();
            let state = n.status.as_ref().and_then(|s| s.state).map_or("unknown".to_string(), |s| s.to_string());
            let availability = spec.availability.map_or("active".to_string(), |a| a.to_string());
            Some((
                id,
                Value::object([
                    ("labels", Value::Object(labels.into())),
                    ("availability", Value::string(availability)),
                    ("state", Value::string(state)),
                ]),
            ))
        })
        .collect();
    let observed =
        Observed { value: Value::Object(by_id.into()), lineage: None, address: None, labels: HashMap::new() };
    Ok(HashMap::from([(String::new(), observed)]))
}

/// Recorded state with what the managers report: each listed node's labels
/// and availability, and every node's state.
pub fn observed(recorded: &Value, swarm: &Value) -> Value {
    let mut merged = recorded.clone();
    let mut nodes = recorded.get("nodes").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut status = BTreeMap::new();
    for (name, node) in nodes.iter_mut() {
        let found = swarm.get(node.text("id"));
        status.insert(name.clone(), Value::string(found.map_or("missing", |f| f.text("state"))));
        // What the configuration left out counts as its default (no labels,
        // active): only a difference from that is drift.
        if let (Some(found), Value::Object(node)) = (found, node) {
            let labels = found.get("labels").filter(|l| l.as_object().is_some_and(|m| !m.is_empty()));
            let none_written =
                node.get("labels").is_none_or(|l| l.is_null() || l.as_object().is_some_and(|m| m.is_empty()));
            if labels.is_some() || !none_written {
                node.insert("labels".into(), labels.cloned().unwrap_or(Value::Null));
            }
            if node.contains_key("availability") || found.text("availability") != "active" {
                node.insert("availability".into(), Value::string(found.text("availability")));
            }
        }
    }
    merged.set("nodes", Value::Object(nodes.into()));
    merged.set("status", Value::Object(status.into()));
    merged
}

/// Brings the managers' view to `planned`: labels and availability of the
/// listed nodes, then the nodes `prior` listed and `planned` does not
/// drained and removed.
pub async fn converge(docker: &Docker, prior: Option<&Value>, planned: &Value) -> Result<Value, ProviderError> {
    let wanted = planned.get("nodes").and_then(Value::as_object).cloned().unwrap_or_default();
    for (name, node) in &wanted {
        set_node(docker, name, node).await?;
    }
    let kept: Vec<&str> = wanted.values().map(|n| n.text("id")).collect();
    let before = prior.and_then(|p| p.get("nodes")).and_then(Value::as_object).cloned().unwrap_or_default();
    for (name, node) in before.iter().filter(|(_, n)| !kept.contains(&n.text("id"))) {
        drain_and_remove(docker, name, node.text("id")).await?;
    }
    let listed = list(docker).await?;
    let swarm = listed.into_values().next().map(|o| o.value).unwrap_or_default();
    let mut state = observed(planned, &swarm);
    state.set("id", Value::string(planned.get("swarm").map(|s| s.text("id")).unwrap_or_default()));
    Ok(state)
}

async fn all_nodes(docker: &Docker) -> Result<Vec<Node>, ProviderError> {
    docker.list_nodes(None::<ListNodesOptions>).await.map_err(|e| docker_error("listing the swarm's nodes", e))
}

async fn find_node(docker: &Docker, id: &str) -> Result<Option<Node>, ProviderError> {
    match docker.inspect_node(id).await {
        Ok(node) => Ok(Some(node)),
        Err(e) if crate::util::is_not_found(&e) => Ok(None),
        Err(e) => Err(docker_error(&format!("inspecting swarm node {id}"), e)),
    }
}

fn availability(text: &str) -> NodeSpecAvailabilityEnum {
    match text {
        "pause" => NodeSpecAvailabilityEnum::PAUSE,
        "drain" => NodeSpecAvailabilityEnum::DRAIN,
        _ => NodeSpecAvailabilityEnum::ACTIVE,
    }
}

/// Updates a node's spec when its labels or availability differ.
async fn set_node(docker: &Docker, name: &str, node: &Value) -> Result<(), ProviderError> {
    let id = node.text("id");
    let Some(found) = find_node(docker, id).await? else {
        return Err(ProviderError::failed(format!(
            "swarm node {name} ({id}) is not in the swarm: has its engine left it, or was it removed by hand?"
        )));
    };
    let labels: HashMap<String, String> = node
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    let wanted = availability(node.get("availability").and_then(Value::as_str).unwrap_or("active"));
    let spec = found.spec.clone().unwrap_or_default();
    if spec.labels.clone().unwrap_or_default() == labels && spec.availability == Some(wanted) {
        return Ok(());
    }
    let spec = NodeSpec { labels: Some(labels), availability: Some(wanted), ..spec };
    update_node(docker, &found, spec).await.map_err(|e| docker_error(&format!("updating swarm node {name}"), e))
}

async fn update_node(docker: &Docker, node: &Node, spec: NodeSpec) -> Result<(), bollard::errors::Error> {
    let version = node.version.as_ref().and_then(|v| v.index).unwrap_or_default();
    let options = UpdateNodeOptions { version: i64::try_from(version).unwrap_or(i64::MAX) };
    docker.update_node(node.id.as_deref().unwrap_or_default(), spec, options).await
}

/// Drains a node, waits until the swarm runs nothing on it, and removes it.
async fn drain_and_remove(docker: &Docker, name: &str, id: &str) -> Result<(), ProviderError> {
    let Some(found) = find_node(docker, id).await? else { return Ok(()) };
    let failed = |what: &str| {
        let what = what.to_string();
        move |e| docker_error(&format!("{what} swarm node {name}"), e)
    };
    let moved = services_on(docker, id).await?;
    let spec =
        NodeSpec { availability: Some(NodeSpecAvailabilityEnum::DRAIN), ..found.spec.clone().unwrap_or_default() };
    update_node(docker, &found, spec).await.map_err(failed("draining"))?;
    // The services whose tasks ran there run them again elsewhere, healthy,
    // before the node goes: a drain costs no capacity for longer than it must.
    for service in &moved {
        crate::service::settle_moved(docker, service).await?;
    }
    // A node that is down reports nothing more: its tasks never show as stopped.
    let up = found.status.as_ref().and_then(|s| s.state) == Some(bollard::models::NodeState::READY);
    let started = Instant::now();
    while up && running_tasks(docker, id).await? > 0 {
        if started.elapsed() > DRAIN {
            return Err(ProviderError::failed(format!(
                "swarm node {name} still runs tasks {} s after it was drained",
                DRAIN.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Forced: the node's engine is still up and in the swarm; it leaves next.
    match docker.delete_node(id, Some(DeleteNodeOptions { force: true })).await {
        Err(e) if !crate::util::is_not_found(&e) => Err(failed("removing")(e)),
        _ => Ok(()),
    }
}

/// The services with a task on the node.
async fn services_on(docker: &Docker, node: &str) -> Result<Vec<String>, ProviderError> {
    let mut services: Vec<String> = tasks_on(docker, node).await?.into_iter().filter_map(|t| t.service_id).collect();
    services.sort();
    services.dedup();
    Ok(services)
}

async fn tasks_on(docker: &Docker, node: &str) -> Result<Vec<bollard::models::Task>, ProviderError> {
    let filters = HashMap::from([("node".to_string(), vec![node.to_string()])]);
    docker
        .list_tasks(Some(ListTasksOptions { filters: Some(filters) }))
        .await
        .map_err(|e| docker_error(&format!("listing the tasks on swarm node {node}"), e))
}

/// Tasks on the node that have not stopped, whatever the swarm wants of
/// them: a drained node's tasks are told to stop at once and stop later.
async fn running_tasks(docker: &Docker, node: &str) -> Result<usize, ProviderError> {
    let tasks = tasks_on(docker, node).await?;
    Ok(tasks
        .iter()
        .filter(|t| !t.status.as_ref().and_then(|s| s.state).is_some_and(crate::service::is_finished))
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> Value {
        Value::object([("id", Value::string(id))])
    }

    #[test]
    fn refresh_records_each_nodes_state_and_its_labels() {
        let recorded = Value::object([("nodes", Value::object([("s1", node("n1")), ("s2", node("n2"))]))]);
        let swarm = Value::object([(
            "n1",
            Value::object([
                ("labels", Value::object([("zone", Value::string("a"))])),
                ("availability", Value::string("active")),
                ("state", Value::string("down")),
            ]),
        )]);
        let merged = observed(&recorded, &swarm);
        let status = merged.get("status").expect("status");
        assert_eq!(status.get("s1"), Some(&Value::string("down")));
        assert_eq!(status.get("s2"), Some(&Value::string("missing")));
        let s1 = merged.get("nodes").and_then(|n| n.get("s1")).expect("s1");
        assert_eq!(s1.get("labels").and_then(|l| l.get("zone")), Some(&Value::string("a")));
    }

    #[test]
    fn a_plan_names_the_nodes_that_are_not_ready() {
        let prior =
            Value::object([("status", Value::object([("s1", Value::string("ready")), ("s3", Value::string("down"))]))]);
        let warnings = plan(Some(&prior), Value::Null).warnings;
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("swarm node s3 is down"), "{warnings:?}");
    }

    #[test]
    fn availability_is_active_pause_or_drain() {
        let config = Value::object([(
            "nodes",
            Value::object([("s1", Value::object([("availability", Value::string("asleep"))]))]),
        )]);
        let errors = validate(&config);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("nodes.s1.availability \"asleep\""), "{}", errors[0].message);
    }
}
