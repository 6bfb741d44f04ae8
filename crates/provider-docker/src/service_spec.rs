//! The `swarm_service` type's schema, and the translation between its
//! attributes and Docker's `ServiceSpec`: one way to create and update, the
//! other way to see drift (a service scaled or changed by hand).
//!
//! Defaults are the zero-downtime ones: an update starts each new task before
//! the old one stops (`order = "start-first"`), one task at a time, and a task
//! that fails within `monitor` rolls the whole update back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec,
    EndpointSpecModeEnum, Limit, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread,
    TaskSpecResources,
};
use infra_core::{AttributeSchema, BlockNesting, OperationContext, ProviderError, Refined, Schema, Type, Value};

use crate::health::parse_duration;
use crate::util::{REVISION, is_marker, labels};
use sha2::Digest as _;

pub fn schema() -> Schema {
    let list = || Type::list(Type::String);
    Schema::new("A Docker Swarm service: tasks of one image spread over the swarm's nodes, updated one at a time.")
        .attribute("name", AttributeSchema::required(Type::String).force_new())
        .attribute(
            "image",
            AttributeSchema::required(Type::String)
                .describe("image name or tag; it must be on every node that may run a task (see README: Swarm)"),
        )
        .attribute("command", AttributeSchema::optional(list()).describe("arguments to the image's entrypoint"))
        .attribute("entrypoint", AttributeSchema::optional(list()))
        .attribute("env", AttributeSchema::optional(Type::map(Type::String)))
        .attribute("labels", AttributeSchema::optional(Type::map(Type::String)))
        .attribute(
            "mode",
            AttributeSchema::optional(Type::String)
                .default(Value::string("replicated"))
                .force_new()
                .describe("replicated (`replicas` tasks) or global (one task on every eligible node)"),
        )
        .attribute("replicas", AttributeSchema::optional(Type::Number).default(Value::Number(1.0)))
        .attribute(
            "ports",
            AttributeSchema::optional(list()).describe(
                "\"PUBLISHED:TARGET\", optionally /udp: published on every node through the routing mesh; \
                 \"host:PUBLISHED:TARGET\": published only on the nodes running a task",
            ),
        )
        .attribute("networks", AttributeSchema::optional(list()).describe("overlay networks, by name"))
        .attribute(
            "endpoint_mode",
            AttributeSchema::optional(Type::String)
                .default(Value::string("vip"))
                .describe("vip (one virtual address, balanced by the kernel's IPVS) or dnsrr (the service's name resolves to every task)"),
        )
        .attribute(
            "constraints",
            AttributeSchema::optional(list()).describe("placement constraints such as \"node.role == worker\""),
        )
        .attribute(
            "spread",
            AttributeSchema::optional(list()).describe("spread tasks evenly over a node label: \"node.labels.zone\""),
        )
        .attribute("max_replicas_per_node", AttributeSchema::optional(Type::Number))
        .attribute(
            "healthcheck",
            AttributeSchema::optional(crate::health::schema_type())
                .describe("{ cmd = [...], interval, timeout, retries, start_period }: a task counts as running once healthy"),
        )
        .attribute(
            "configs",
            AttributeSchema::optional(Type::list(Type::Any)).describe(
                "files from `swarm_config`s: [{ source = swarm_config.NAME, target = \"/etc/app.conf\", mode = \"0444\" }]",
            ),
        )
        .attribute(
            "secrets",
            AttributeSchema::optional(Type::list(Type::Any)).describe(
                "files from `swarm_secret`s: [{ source = swarm_secret.NAME, target = \"db_password\" }]; \
                 a relative target is under /run/secrets; default: the secret's name",
            ),
        )
        .attribute("user", AttributeSchema::optional(Type::String))
        .attribute("working_dir", AttributeSchema::optional(Type::String))
        .attribute("memory", AttributeSchema::optional(Type::String).describe("limit per task, such as 256m"))
        .attribute("cpus", AttributeSchema::optional(Type::Number).describe("CPU limit per task, e.g. 0.5"))
        .attribute(
            "stop_grace_period",
            AttributeSchema::optional(Type::String).describe("how long a task has to stop before it is killed; default 10s"),
        )
        .block("update_config", BlockNesting::Single, rollout_schema("How an update reaches running tasks."))
        .block("rollback_config", BlockNesting::Single, rollout_schema("How a failed update is rolled back."))
        .attribute("id", AttributeSchema::computed(Type::String))
}

fn rollout_schema(description: &'static str) -> Schema {
    Schema::new(description)
        .attribute("parallelism", AttributeSchema::optional(Type::Number).describe("tasks changed at once; default 1"))
        .attribute("delay", AttributeSchema::optional(Type::String).describe("pause between batches; default 0s"))
        .attribute(
            "order",
            AttributeSchema::optional(Type::String)
                .describe("start-first (the default: the new task runs before the old one stops) or stop-first"),
        )
        .attribute(
            "failure_action",
            AttributeSchema::optional(Type::String).describe("rollback (the default for updates), pause or continue"),
        )
        .attribute(
            "monitor",
            AttributeSchema::optional(Type::String)
                .describe("how long each new task is watched for failure; default 5s"),
        )
        .attribute("max_failure_ratio", AttributeSchema::optional(Type::Number))
}

/// What each task runs: a change to any of these rolls new tasks out.
const TASK_SETTINGS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "env",
    "networks",
    "healthcheck",
    "user",
    "working_dir",
    "memory",
    "cpus",
    "stop_grace_period",
    "constraints",
    "spread",
    "max_replicas_per_node",
    "configs",
    "secrets",
];

/// The plan says how an update reaches the tasks, as it does for containers.
pub fn plan(prior: Option<&Value>, proposed: Value) -> Refined {
    let rolled = prior.is_some_and(|p| TASK_SETTINGS.iter().any(|k| Value::differs(p.get(k), proposed.get(k))));
    let note = rolled.then(|| match Rollout::of(proposed.get("update_config"), true) {
        Ok(rollout) => rollout.describe(),
        Err(_) => String::new(),
    });
    let warnings = tight_placement(&proposed).into_iter().collect();
    Refined::new(normalize_ports(proposed)).note(note.filter(|n| !n.is_empty())).warn(warnings)
}

/// Ports in the form refresh reads back (`8080:80/tcp` is `8080:80`), so
/// the same port written another way is not drift.
fn normalize_ports(mut planned: Value) -> Value {
    let Some(ports) = planned.get("ports").and_then(Value::as_list) else { return planned };
    let normal: Vec<Value> = ports
        .iter()
        .map(|p| match p.as_str().map(parse_port) {
            Some(Ok(port)) => Value::string(port_text(&port)),
            _ => p.clone(),
        })
        .collect();
    planned.set("ports", Value::List(normal));
    planned
}

/// A start-first update places each new task before its old one stops: with
/// a per-node cap, a swarm whose every node is at the cap has no room, and
/// the update waits until it times out.
fn tight_placement(planned: &Value) -> Option<String> {
    let cap = planned.get("max_replicas_per_node").and_then(Value::as_number)? as i64;
    let start_first = Rollout::of(planned.get("update_config"), true).is_ok_and(|r| r.start_first);
    start_first.then(|| {
        format!(
            "max_replicas_per_node = {} with start-first updates: each new task needs room beside the old one, \
             so when every node runs {} tasks of the service an update cannot place one. Leave the cap out \
             (the swarm spreads tasks over the nodes anyway), raise it, or set update_config {{ order = \"stop-first\" }}",
            cap, cap
        )
    })
}

/// Everything wrong with a configuration that the spec would refuse.
pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    if let Some(mode) = config.non_empty_text("mode").filter(|m| !matches!(*m, "replicated" | "global")) {
        errors.push(ProviderError::invalid("mode", format!("mode {mode:?} is neither replicated nor global")));
    }
    if let Some(mode) = config.non_empty_text("endpoint_mode").filter(|m| !matches!(*m, "vip" | "dnsrr")) {
        errors
            .push(ProviderError::invalid("endpoint_mode", format!("endpoint_mode {mode:?} is neither vip nor dnsrr")));
    }
    for port in config.strings("ports") {
        if let Err(e) = parse_port(&port) {
            errors.push(ProviderError::invalid("ports", e));
        }
    }
    if let Err(e) = crate::health::check(config) {
        errors.push(ProviderError::invalid("healthcheck", e));
    }
    for (key, files) in [("configs", handed_files(config, "configs")), ("secrets", handed_files(config, "secrets"))] {
        if let Err(e) = files {
            errors.push(ProviderError::invalid(key, e));
        }
    }
    if let Some(memory) = config.non_empty_text("memory").filter(|m| crate::container::parse_memory(m).is_none()) {
        errors.push(ProviderError::invalid("memory", format!("memory {memory:?} is not a size such as 256m or 1g")));
    }
    for block in ["update_config", "rollback_config"] {
        if let Err(e) = Rollout::of(config.get(block), block == "update_config") {
            errors.push(ProviderError::invalid(block, e));
        }
    }
    errors
}

/// `8080:80`, `8080:80/udp`, `host:8080:80`.
fn parse_port(text: &str) -> Result<EndpointPortConfig, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, "tcp")) => (spec, EndpointPortConfigProtocolEnum::TCP),
        Some((spec, "udp")) => (spec, EndpointPortConfigProtocolEnum::UDP),
        Some((spec, "sctp")) => (spec, EndpointPortConfigProtocolEnum::SCTP),
        Some(_) => return Err(format!("port {text:?}: the protocol must be tcp, udp or sctp")),
        None => (text, EndpointPortConfigProtocolEnum::TCP),
    };
    let (mode, numbers) = match spec.strip_prefix("host:") {
        Some(rest) => (EndpointPortConfigPublishModeEnum::HOST, rest),
        None => (EndpointPortConfigPublishModeEnum::INGRESS, spec),
    };
    let number = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0).map(i64::from);
    let (published, target) = numbers
        .split_once(':')
        .and_then(|(p, t)| Some((number(p)?, number(t)?)))
        .ok_or_else(|| format!("port {text:?} is not PUBLISHED:TARGET or host:PUBLISHED:TARGET"))?;
    Ok(EndpointPortConfig {
        protocol: Some(protocol),
        published_port: Some(published),
        target_port: Some(target),
        publish_mode: Some(mode),
        ..Default::default()
    })
}

fn port_text(port: &EndpointPortConfig) -> String {
    let host = if port.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST) { "host:" } else { "" };
    let protocol = match port.protocol {
        Some(EndpointPortConfigProtocolEnum::UDP) => "/udp",
        Some(EndpointPortConfigProtocolEnum::SCTP) => "/sctp",
        _ => "",
    };
    format!("{host}{}:{}{protocol}", port.published_port.unwrap_or(0), port.target_port.unwrap_or(0))
}

/// An update or rollback policy with the zero-downtime defaults filled in.
struct Rollout {
    parallelism: i64,
    delay: Duration,
    start_first: bool,
    failure_action: String,
    monitor: Duration,
    max_failure_ratio: f64,
}

impl Rollout {
    fn of(block: Option<&Value>, update: bool) -> Result<Rollout, String> {
        let block = block.filter(|b| !b.is_null()).cloned().unwrap_or(Value::Null);
        let duration = |key: &str, default: &str| parse_duration(block.non_empty_text(key).unwrap_or(default));
        let start_first = match block.non_empty_text("order").unwrap_or("start-first") {
            "start-first" => true,
            "stop-first" => false,
            other => return Err(format!("order {other:?} is neither start-first nor stop-first")),
        };
        let failure_action =
            block.non_empty_text("failure_action").unwrap_or(if update { "rollback" } else { "pause" });
        let allowed: &[&str] = if update { &["rollback", "pause", "continue"] } else { &["pause", "continue"] };
        if !allowed.contains(&failure_action) {
            return Err(format!("failure_action {failure_action:?} is not one of {}", allowed.join(", ")));
        }
        Ok(Rollout {
            parallelism: block.get("parallelism").and_then(Value::as_number).map_or(1, |n| n.max(0.0) as i64),
            delay: duration("delay", "0s")?,
            start_first,
            failure_action: failure_action.to_string(),
            monitor: duration("monitor", "5s")?,
            max_failure_ratio: block.get("max_failure_ratio").and_then(Value::as_number).unwrap_or(0.0),
        })
    }

    /// "rolling update by the swarm: 1 task at a time, each new one started first; rolled back on failure".
    fn describe(&self) -> String {
        let order = if self.start_first { "each new one started first" } else { "each old one stopped first" };
        let on_failure = match self.failure_action.as_str() {
            "rollback" => "rolled back on failure",
            "pause" => "paused on failure",
            _ => "continued on failure",
        };
        let s = if self.parallelism == 1 { "" } else { "s" };
        format!("rolling update by the swarm: {} task{s} at a time, {order}; {on_failure}", self.parallelism)
    }

    fn update_config(&self) -> ServiceSpecUpdateConfig {
        ServiceSpecUpdateConfig {
            parallelism: Some(self.parallelism),
            delay: Some(nanos(self.delay)),
            failure_action: Some(match self.failure_action.as_str() {
                "pause" => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
                "continue" => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
                _ => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
            }),
            monitor: Some(nanos(self.monitor)),
            max_failure_ratio: Some(self.max_failure_ratio),
            order: Some(if self.start_first {
                ServiceSpecUpdateConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
            }),
        }
    }

    fn rollback_config(&self) -> ServiceSpecRollbackConfig {
        ServiceSpecRollbackConfig {
            parallelism: Some(self.parallelism),
            delay: Some(nanos(self.delay)),
            failure_action: Some(match self.failure_action.as_str() {
                "continue" => ServiceSpecRollbackConfigFailureActionEnum::CONTINUE,
                _ => ServiceSpecRollbackConfigFailureActionEnum::PAUSE,
            }),
            monitor: Some(nanos(self.monitor)),
            max_failure_ratio: Some(self.max_failure_ratio),
            order: Some(if self.start_first {
                ServiceSpecRollbackConfigOrderEnum::START_FIRST
            } else {
                ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
            }),
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The spec Docker is given for `planned`.
pub fn spec(ctx: &OperationContext, planned: &Value) -> Result<ServiceSpec, ProviderError> {
    fn invalid(attribute: &'static str) -> impl Fn(String) -> ProviderError {
        move |e| ProviderError::invalid(attribute, e)
    }
    let ports = planned.strings("ports").iter().map(|p| parse_port(p)).collect::<Result<Vec<_>, _>>();
    let health = crate::health::check(planned).map_err(invalid("healthcheck"))?;
    let update = Rollout::of(planned.get("update_config"), true).map_err(invalid("update_config"))?;
    let rollback = Rollout::of(planned.get("rollback_config"), false).map_err(invalid("rollback_config"))?;
    let grace = planned.non_empty_text("stop_grace_period").map(parse_duration).transpose();
    let env: Vec<String> = planned
        .get("env")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect())
        .unwrap_or_default();
    let container = TaskSpecContainerSpec {
        image: Some(planned.text("image").to_string()),
        labels: Some(labels(ctx, planned)),
        command: Some(planned.strings("entrypoint")).filter(|c| !c.is_empty()),
        args: Some(planned.strings("command")).filter(|c| !c.is_empty()),
        env: Some(env).filter(|e| !e.is_empty()),
        dir: planned.non_empty_text("working_dir").map(str::to_string),
        user: planned.non_empty_text("user").map(str::to_string),
        stop_grace_period: grace.map_err(invalid("stop_grace_period"))?.map(nanos),
        health_check: health.map(|h| h.config),
        configs: Some(configs(planned)?).filter(|c| !c.is_empty()),
        secrets: Some(secrets(planned)?).filter(|s| !s.is_empty()),
        ..Default::default()
    };
    let limits = Limit {
        nano_cpus: planned.get("cpus").and_then(Value::as_number).map(|c| (c * 1e9) as i64),
        memory_bytes: planned.non_empty_text("memory").and_then(crate::container::parse_memory),
        pids: None,
    };
    let placement = TaskSpecPlacement {
        constraints: Some(planned.strings("constraints")).filter(|c| !c.is_empty()),
        preferences: Some(spread(planned)).filter(|p| !p.is_empty()),
        max_replicas: planned.get("max_replicas_per_node").and_then(Value::as_number).map(|n| n as i64),
        ..Default::default()
    };
    let networks: Vec<NetworkAttachmentConfig> = planned
        .strings("networks")
        .into_iter()
        .map(|target| NetworkAttachmentConfig { target: Some(target), ..Default::default() })
        .collect();
    let task = with_revision(TaskSpec {
        container_spec: Some(container),
        resources: Some(TaskSpecResources { limits: Some(limits), ..Default::default() }),
        placement: Some(placement),
        networks: Some(networks).filter(|n| !n.is_empty()),
        ..Default::default()
    });
    Ok(ServiceSpec {
        name: Some(planned.text("name").to_string()),
        labels: Some(labels(ctx, planned)),
        task_template: Some(task),
        mode: Some(mode(planned)),
        update_config: Some(update.update_config()),
        rollback_config: Some(rollback.rollback_config()),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(if planned.text("endpoint_mode") == "dnsrr" {
                EndpointSpecModeEnum::DNSRR
            } else {
                EndpointSpecModeEnum::VIP
            }),
            ports: Some(ports.map_err(invalid("ports"))?),
        }),
        ..Default::default()
    })
}

/// A config or secret handed to the tasks as a file.
struct HandedFile {
    id: String,
    name: String,
    target: String,
    mode: u32,
}

/// The `configs` or `secrets` of a service. Values not known yet (a config
/// made in the same apply) pass at plan time and are checked again at apply.
fn handed_files(config: &Value, key: &str) -> Result<Vec<HandedFile>, String> {
    let mut files = Vec::new();
    for (i, entry) in config.get(key).and_then(Value::as_list).unwrap_or_default().iter().enumerate() {
        let at = format!("{key}[{i}]");
        let source = entry.get("source").filter(|s| !s.is_null());
        let Some(source) = source else {
            return Err(format!("{at} needs `source`, e.g. `source = swarm_config.NAME`"));
        };
        let target = match entry.get("target").and_then(Value::as_str) {
            Some(target) if !target.is_empty() => target,
            _ if key == "secrets" => source.text("name"),
            _ => return Err(format!("{at} needs `target`, the path of the file in the task")),
        };
        let mode_text = entry.get("mode").and_then(Value::as_str).unwrap_or("0444");
        let mode = u32::from_str_radix(mode_text, 8)
            .map_err(|_| format!("{at}.mode {mode_text:?} is not octal permissions"))?;
        files.push(HandedFile {
            id: source.text("id").to_string(),
            name: source.text("swarm_name").to_string(),
            target: target.to_string(),
            mode,
        });
    }
    Ok(files)
}

fn configs(planned: &Value) -> Result<Vec<TaskSpecContainerSpecConfigs>, ProviderError> {
    let files = handed_files(planned, "configs").map_err(|e| ProviderError::invalid("configs", e))?;
    Ok(files
        .into_iter()
        .map(|f| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(f.target),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(f.mode),
            }),
            config_id: Some(f.id),
            config_name: Some(f.name),
            ..Default::default()
        })
        .collect())
}

fn secrets(planned: &Value) -> Result<Vec<TaskSpecContainerSpecSecrets>, ProviderError> {
    let files = handed_files(planned, "secrets").map_err(|e| ProviderError::invalid("secrets", e))?;
    Ok(files
        .into_iter()
        .map(|f| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(f.target),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(f.mode),
            }),
            secret_id: Some(f.id),
            secret_name: Some(f.name),
        })
        .collect())
}

/// The task spec with its digest as the `infra.revision` label of its
/// containers. Docker gives a task a copy of the spec minus the defaults it
/// fills into the service's, so the label is how a task of the current spec
/// is told from an older one.
fn with_revision(mut task: TaskSpec) -> TaskSpec {
    // Through `Value`, whose objects are ordered: the spec's label maps are not.
    let json = serde_json::to_value(&task).unwrap_or_default();
    let canonical = Value::from_json(&json).canonical().to_json().to_string();
    let digest = hex::encode(sha2::Sha256::digest(canonical.as_bytes()));
    if let Some(container) = task.container_spec.as_mut() {
        container.labels.get_or_insert_with(HashMap::new).insert(REVISION.to_string(), digest[..16].to_string());
    }
    task
}

/// The revision a task spec was made from (see [`with_revision`]).
pub fn revision(task: Option<&TaskSpec>) -> Option<&str> {
    task?.container_spec.as_ref()?.labels.as_ref()?.get(REVISION).map(String::as_str)
}

fn spread(planned: &Value) -> Vec<TaskSpecPlacementPreferences> {
    planned
        .strings("spread")
        .into_iter()
        .map(|descriptor| TaskSpecPlacementPreferences {
            spread: Some(TaskSpecPlacementSpread { spread_descriptor: Some(descriptor) }),
        })
        .collect()
}

fn mode(planned: &Value) -> ServiceSpecMode {
    if planned.text("mode") == "global" {
        return ServiceSpecMode { global: Some(HashMap::new()), ..Default::default() };
    }
    let replicas = planned.get("replicas").and_then(Value::as_number).map_or(1, |n| n.max(0.0) as i64);
    ServiceSpecMode { replicated: Some(ServiceSpecModeReplicated { replicas: Some(replicas) }), ..Default::default() }
}

/// How many tasks the service wants running; `None` for a global service
/// (one per eligible node, which only the swarm knows).
pub fn wanted_replicas(spec: &ServiceSpec) -> Option<usize> {
    let replicated = spec.mode.as_ref()?.replicated.as_ref()?;
    Some(replicated.replicas.unwrap_or(1).max(0) as usize)
}

/// What a reviewer would see change when someone edits the service by hand:
/// the image, the scale, the command, the environment, the published ports,
/// the constraints and the user's labels.
pub fn observed(id: &str, spec: &ServiceSpec) -> Value {
    let container = spec.task_template.as_ref().and_then(|t| t.container_spec.clone()).unwrap_or_default();
    let strings = |list: Option<Vec<String>>| match list {
        Some(items) if !items.is_empty() => Value::List(items.into_iter().map(Value::string).collect()),
        _ => Value::Null,
    };
    let env: BTreeMap<String, Value> = container
        .env
        .unwrap_or_default()
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), Value::string(v)))
        .collect();
    let user_labels: BTreeMap<String, Value> = spec
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !is_marker(k))
        .map(|(k, v)| (k, Value::string(v)))
        .collect();
    let ports = spec.endpoint_spec.as_ref().and_then(|e| e.ports.as_ref());
    let constraints =
        spec.task_template.as_ref().and_then(|t| t.placement.as_ref()).and_then(|p| p.constraints.clone());
    let mut value = Value::object([
        ("id", Value::string(id)),
        ("name", Value::string(spec.name.clone().unwrap_or_default())),
        ("image", Value::string(without_digest(container.image.as_deref().unwrap_or_default()))),
        ("entrypoint", strings(container.command)),
        ("command", strings(container.args)),
        ("env", if env.is_empty() { Value::Null } else { Value::Object(env.into()) }),
        ("labels", if user_labels.is_empty() { Value::Null } else { Value::Object(user_labels.into()) }),
        ("ports", strings(ports.map(|ports| ports.iter().map(port_text).collect()))),
        ("constraints", strings(constraints)),
    ]);
    if let Some(replicas) = wanted_replicas(spec) {
        value.set("replicas", Value::Number(replicas as f64));
    }
    value
}

/// `web:2@sha256:…` → `web:2`: the digest the CLI pins is not what was written.
fn without_digest(image: &str) -> &str {
    image.split_once('@').map_or(image, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infra_core::{InstanceKey, ResourceAddress};

    fn ctx() -> OperationContext {
        let address = ResourceAddress::new(Vec::new(), "swarm_service", "web", InstanceKey::None);
        OperationContext::new("L", address)
    }

    fn web() -> Value {
        Value::object([
            ("name", Value::string("web")),
            ("image", Value::string("tiny:1")),
            ("replicas", Value::Number(3.0)),
            ("mode", Value::string("replicated")),
            ("endpoint_mode", Value::string("vip")),
            ("command", Value::List(vec![Value::string("httpd"), Value::string("-f")])),
            ("env", Value::object([("A", Value::string("1"))])),
            ("ports", Value::List(vec![Value::string("8080:80"), Value::string("host:9000:9000/udp")])),
            ("constraints", Value::List(vec![Value::string("node.role == worker")])),
        ])
    }

    #[test]
    fn a_spec_reads_back_as_the_attributes_it_was_made_from() {
        let spec = spec(&ctx(), &web()).expect("a valid service");
        let back = observed("id1", &spec);
        for key in ["name", "image", "replicas", "command", "env", "ports", "constraints"] {
            assert_eq!(back.get(key), web().get(key), "{key}");
        }
        let labels = spec.labels.expect("labels");
        assert_eq!(labels.get(crate::util::ADDRESS).map(String::as_str), Some("swarm_service.web"));
        assert_eq!(back.get("labels"), Some(&Value::Null), "markers are not the user's labels");
    }

    #[test]
    fn updates_start_the_new_task_first_and_roll_back_on_failure_unless_told_otherwise() {
        let spec = spec(&ctx(), &web()).expect("a valid service");
        let update = spec.update_config.expect("update config");
        assert_eq!(update.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
        assert_eq!(update.failure_action, Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK));
        assert_eq!(update.parallelism, Some(1));
        let mut stop_first = web();
        stop_first.set("update_config", Value::object([("order", Value::string("stop-first"))]));
        let update = self::spec(&ctx(), &stop_first).expect("valid").update_config.expect("update config");
        assert_eq!(update.order, Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST));
    }

    #[test]
    fn wrong_settings_are_refused_naming_the_attribute() {
        let mut bad = web();
        bad.set("ports", Value::List(vec![Value::string("80")]));
        bad.set("mode", Value::string("daemonset"));
        bad.set("rollback_config", Value::object([("failure_action", Value::string("rollback"))]));
        let errors: Vec<String> = validate(&bad).into_iter().map(|e| e.message).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("\"daemonset\" is neither replicated nor global"), "{errors:?}");
        assert!(errors[1].contains("port \"80\" is not PUBLISHED:TARGET"), "{errors:?}");
        assert!(errors[2].contains("failure_action \"rollback\" is not one of pause, continue"), "{errors:?}");
    }

    #[test]
    fn tasks_carry_the_revision_of_the_spec_they_were_made_from() {
        let first = spec(&ctx(), &web()).expect("valid");
        let again = spec(&ctx(), &web()).expect("valid");
        let mut changed = web();
        changed.set("image", Value::string("tiny:2"));
        let changed = spec(&ctx(), &changed).expect("valid");
        let of = |s: &ServiceSpec| revision(s.task_template.as_ref()).map(str::to_string);
        assert!(of(&first).is_some());
        assert_eq!(of(&first), of(&again));
        assert_ne!(of(&first), of(&changed));
    }

    #[test]
    fn a_per_node_cap_with_start_first_updates_is_warned_about() {
        let mut capped = web();
        capped.set("max_replicas_per_node", Value::Number(1.0));
        let warned = plan(None, capped.clone()).warnings;
        assert_eq!(warned.len(), 1);
        assert!(warned[0].starts_with("max_replicas_per_node = 1 with start-first updates"), "{warned:?}");
        capped.set("update_config", Value::object([("order", Value::string("stop-first"))]));
        assert!(plan(None, capped).warnings.is_empty());
        assert!(plan(None, web()).warnings.is_empty());
    }

    #[test]
    fn ports_are_planned_as_refresh_reads_them() {
        let mut written = web();
        written.set("ports", Value::List(vec![Value::string("8080:80/tcp"), Value::string("host:53:53/udp")]));
        let planned = plan(None, written).planned;
        assert_eq!(planned.strings("ports"), ["8080:80", "host:53:53/udp"]);
    }

    #[test]
    fn a_pinned_digest_is_not_drift() {
        assert_eq!(without_digest("web:2@sha256:abc"), "web:2");
        assert_eq!(without_digest("web:2"), "web:2");
    }
}
