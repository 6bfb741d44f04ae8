//! `container`: a Docker container, labelled with its owner. Everything but
//! `running` is fixed at creation, so changing it recreates the container (the
//! plan names the attribute). Published ports bind to 127.0.0.1 unless an
//! address is written.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, StartContainerOptions, StopContainerOptions,
};
use infra_core::{AttributeSchema, BlockNesting, OperationContext, ProviderError, Refined, Schema, Type, Value};

use crate::publish::parse_port;
use crate::util::{Observed, Scope, docker_error, labels, str_list};

pub fn schema() -> Schema {
    let list = || Type::list(Type::String);
    Schema::new("A Docker container, or a set of identical replicas of one.")
        .attribute("name", AttributeSchema::required(Type::String).force_new().describe("replicas are named NAME-1, NAME-2, ..."))
        .attribute("image", AttributeSchema::required(Type::String).describe("image name, tag or id"))
        .attribute("command", AttributeSchema::optional(list()))
        .attribute("entrypoint", AttributeSchema::optional(list()))
        .attribute("env", AttributeSchema::optional(Type::map(Type::String)))
        .attribute(
            "env_files",
            AttributeSchema::optional(list())
                .describe("files of KEY=VALUE lines; their values are treated as secrets; `env` wins over them"),
        )
        .attribute("env_files_sha256", AttributeSchema::computed(Type::String))
        .attribute(
            "ports",
            AttributeSchema::optional(list())
                .describe("\"CONTAINER\", \"HOST:CONTAINER\" or \"ADDRESS:HOST:CONTAINER\", optionally /udp; address defaults to 127.0.0.1"),
        )
        .attribute(
            "mounts",
            AttributeSchema::optional(list()).describe("\"VOLUME:/path\" or \"/host/path:/path\", optionally :ro"),
        )
        .attribute("tmpfs", AttributeSchema::optional(list()).describe("\"/path\" or \"/path:size=64m,mode=1777\""))
        .attribute("log_driver", AttributeSchema::optional(Type::String))
        .attribute("log_options", AttributeSchema::optional(Type::map(Type::String)))
        .attribute("networks", AttributeSchema::optional(list()))
        .attribute(
            "network_aliases",
            AttributeSchema::optional(list()).describe("names other containers reach this one by, on every network"),
        )
        .attribute("restart", AttributeSchema::optional(Type::String).default(Value::string("no")))
        .attribute("user", AttributeSchema::optional(Type::String))
        .attribute("working_dir", AttributeSchema::optional(Type::String))
        .attribute("read_only", AttributeSchema::optional(Type::Bool).default(Value::Bool(false)))
        .attribute("labels", AttributeSchema::optional(Type::map(Type::String)))
        .attribute(
            "healthcheck",
            AttributeSchema::optional(crate::health::schema_type())
                .describe("{ cmd = [...], interval = \"5s\", timeout = \"5s\", retries = 3, start_period = \"0s\" }; creation waits until healthy"),
        )
        .attribute("cap_add", AttributeSchema::optional(list()))
        .attribute("cap_drop", AttributeSchema::optional(list()))
        .attribute("memory", AttributeSchema::optional(Type::String).describe("limit such as 256m or 1g"))
        .attribute("cpus", AttributeSchema::optional(Type::Number).describe("CPU limit, e.g. 0.5 or 2"))
        .attribute(
            "replicas",
            AttributeSchema::optional(Type::Number)
                .default(Value::Number(1.0))
                .describe("how many identical containers run; changed in place"),
        )
        .attribute(
            "proxy",
            AttributeSchema::optional(Type::Bool).describe(
                "run the replicas behind a proxy infra manages, which holds the published ports, so an update \
                 drops no connection; default true when every port names a host port over TCP and there is a \
                 healthcheck",
            ),
        )
        .block("update", BlockNesting::Single, update_schema())
        .attribute("running", AttributeSchema::optional(Type::Bool).default(Value::Bool(true)))
        .attribute("id", AttributeSchema::computed(Type::String).describe("the first replica's id"))
        .attribute("ids", AttributeSchema::computed(list()).describe("every replica's id, in replica order"))
        .attribute(
            "revision",
            AttributeSchema::computed(Type::String).describe("digest of the settings the replicas were created from"),
        )
        .attribute("image_id", AttributeSchema::computed(Type::String).describe("the id of the image the replicas run"))
        // `infra rollback` puts an earlier revision back, with the image it ran.
        .keeps_revisions()
}

fn update_schema() -> Schema {
    Schema::new("How a change of the container's settings reaches running replicas.").attribute(
        "strategy",
        AttributeSchema::optional(Type::String).describe(
            "recreate (stop, then start anew; the default for one replica), rolling (one replica at a time, \
             each new one healthy before its old one stops; the default for several) or blue-green (a whole \
             new set, healthy, then the network aliases move to it)",
        ),
    )
}

/// The settings a replica is created from: a change to any of them makes new
/// replicas (by recreating, or by a rolling or blue-green update).
pub const SETTINGS: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "env",
    "env_files",
    "env_files_sha256",
    "ports",
    "mounts",
    "tmpfs",
    "log_driver",
    "log_options",
    "networks",
    "network_aliases",
    "restart",
    "user",
    "working_dir",
    "read_only",
    "labels",
    "healthcheck",
    "cap_add",
    "cap_drop",
    "memory",
    "cpus",
];

fn check_mount(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target) = match parts.as_slice() {
        [source, target] | [source, target, "ro" | "rw"] => (*source, *target),
        _ => return Err(format!("mount {text:?} is not SOURCE:/path or SOURCE:/path:ro")),
    };
    if !target.starts_with('/') {
        return Err(format!("mount {text:?}: the path inside the container must be absolute"));
    }
    if source.is_empty() || source.starts_with('.') {
        return Err(format!("mount {text:?}: a bind mount's host path must be absolute; a volume needs a name"));
    }
    Ok(())
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    for port in str_list(config, "ports").unwrap_or_default() {
        if let Err(e) = parse_port(&port) {
            errors.push(ProviderError::invalid("ports", e));
        }
    }
    for mount in str_list(config, "mounts").unwrap_or_default() {
        if let Err(e) = check_mount(&mount) {
            errors.push(ProviderError::invalid("mounts", e));
        }
    }
    if let Err(e) = crate::health::check(config) {
        errors.push(ProviderError::invalid("healthcheck", e));
    }
    if let Some(memory) = config.get("memory").and_then(Value::as_str)
        && parse_memory(memory).is_none()
    {
        errors.push(ProviderError::invalid("memory", format!("memory {memory:?} is not a size such as 256m or 1g")));
    }
    if let Some(restart) = config.get("restart").and_then(Value::as_str)
        && restart_policy(restart).is_none()
    {
        errors.push(ProviderError::invalid(
            "restart",
            format!("restart {restart:?} is not no, always, unless-stopped or on-failure"),
        ));
    }
    if let Some(cpus) = config.get("cpus").and_then(Value::as_number)
        && !(cpus > 0.0 && cpus <= 1024.0)
    {
        errors.push(ProviderError::invalid("cpus", format!("cpus {cpus} is not a positive number of CPUs")));
    }
    errors.extend(validate_replicas(config));
    errors.extend(crate::publish::validate_proxy(config));
    errors
}

/// Several replicas, or new ones started before the old stop, cannot share a
/// fixed host port: say so before anything is created.
fn validate_replicas(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    let replicas = config.get("replicas").and_then(Value::as_number);
    if let Some(n) = replicas
        && (n < 0.0 || n.fract() != 0.0 || n > 1000.0)
    {
        errors.push(ProviderError::invalid("replicas", format!("replicas {n} is not a whole number from 0 to 1000")));
    }
    let strategy = match Strategy::of(config) {
        Ok(strategy) => strategy,
        Err(e) => return [errors, vec![e]].concat(),
    };
    let overlapping = strategy != Strategy::Recreate || replicas.unwrap_or(1.0) > 1.0;
    let fixed_port = str_list(config, "ports")
        .unwrap_or_default()
        .into_iter()
        .find(|p| parse_port(p).is_ok_and(|port| !port.host.is_empty()));
    if overlapping
        && !crate::publish::proxied(config)
        && let Some(port) = fixed_port
    {
        errors.push(ProviderError::invalid(
            "ports",
            format!(
                "port {port:?} names a host port, but {} containers of this set run at once; \
                 publish only the container port (\"{}\"), or give it a healthcheck (or proxy = true) \
                 to run it behind infra's proxy",
                if strategy == Strategy::Recreate { "several" } else { "during an update two" },
                parse_port(&port).map(|p| p.container).unwrap_or_default().trim_end_matches("/tcp"),
            ),
        ));
    }
    errors
}

/// How changed settings reach the running replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Recreate,
    Rolling,
    BlueGreen,
}

impl Strategy {
    pub fn of(container: &Value) -> Result<Strategy, ProviderError> {
        let written = container.get("update").and_then(|u| u.get("strategy")).and_then(Value::as_str);
        match written {
            None if replicas(container) > 1 || crate::publish::proxied(container) => Ok(Strategy::Rolling),
            None | Some("recreate") => Ok(Strategy::Recreate),
            Some("rolling") => Ok(Strategy::Rolling),
            Some("blue-green") => Ok(Strategy::BlueGreen),
            Some(other) => Err(ProviderError::invalid(
                "update",
                format!("update strategy {other:?} is not recreate, rolling or blue-green"),
            )),
        }
    }
}

/// The number of replicas asked for (1 when left out).
pub fn replicas(container: &Value) -> usize {
    container.get("replicas").and_then(Value::as_number).map_or(1, |n| n.max(0.0) as usize)
}

/// The name of replica `slot` (1-based): the name itself for a single container.
pub fn replica_name(container: &Value, slot: usize) -> String {
    let name = container.get("name").and_then(Value::as_str).unwrap_or_default();
    if replicas(container) == 1 { name.to_string() } else { format!("{name}-{slot}") }
}

/// `256m`, `1g`, `512k` or plain bytes.
pub(crate) fn parse_memory(text: &str) -> Option<i64> {
    let lower = text.to_ascii_lowercase();
    let (number, factor) = match lower.strip_suffix(['k', 'm', 'g']) {
        Some(n) => (
            n,
            match lower.chars().last() {
                Some('k') => 1 << 10,
                Some('m') => 1 << 20,
                _ => 1 << 30,
            },
        ),
        None => (lower.as_str(), 1),
    };
    number.parse::<i64>().ok().filter(|n| *n > 0).and_then(|n| n.checked_mul(factor))
}

fn restart_policy(name: &str) -> Option<RestartPolicyNameEnum> {
    Some(match name {
        "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => return None,
    })
}

/// One container of a replica set, as it is about to be created.
pub struct Replica {
    pub slot: usize,
    pub name: String,
    /// False while a blue-green set is not yet switched to: it joins its networks
    /// without the aliases other containers find it by.
    pub aliases: bool,
}

fn body(ctx: &OperationContext, planned: &Value, replica: &Replica) -> Result<ContainerCreateBody, ProviderError> {
    // Secrets are marked for display; Docker gets the values themselves.
    let (bare, _) = planned.unmark();
    let get = |k: &str| bare.get(k).and_then(Value::as_str).map(str::to_string);
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    // Behind the proxy the replicas publish nothing: the proxy holds the ports.
    let published =
        if crate::publish::proxied(&bare) { Vec::new() } else { str_list(&bare, "ports").unwrap_or_default() };
    for text in published {
        let port = parse_port(&text).map_err(|e| ProviderError::invalid("ports", e))?;
        let binding = PortBinding { host_ip: Some(port.address), host_port: Some(port.host) };
        bindings.entry(port.container).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(binding);
    }
    let mut env: Vec<(String, String)> = read_env_files(&bare)?;
    if let Some(map) = bare.get("env").and_then(Value::as_object) {
        env.extend(map.iter().filter_map(|(k, v)| v.to_template_string().map(|v| (k.clone(), v))));
    }
    // Later entries win in Docker: `env` comes after the files.
    let env = Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>());
    let tmpfs = str_list(&bare, "tmpfs").map(|mounts| {
        mounts
            .into_iter()
            .map(|m| match m.split_once(':') {
                Some((path, options)) => (path.to_string(), options.to_string()),
                None => (m, String::new()),
            })
            .collect::<HashMap<_, _>>()
    });
    let log_config = get("log_driver").map(|driver| bollard::models::HostConfigLogConfig {
        typ: Some(driver),
        config: bare
            .get("log_options")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()),
    });
    let networks = str_list(&bare, "networks").unwrap_or_default();
    let first_network = networks.first().cloned();
    Ok(ContainerCreateBody {
        image: get("image"),
        cmd: str_list(&bare, "command"),
        entrypoint: str_list(&bare, "entrypoint"),
        env,
        user: get("user"),
        working_dir: get("working_dir"),
        labels: Some(replica_labels(ctx, &bare, replica)),
        healthcheck: crate::health::check(&bare)
            .map_err(|e| ProviderError::invalid("healthcheck", e))?
            .map(|c| c.config),
        exposed_ports: Some(bindings.keys().cloned().collect()),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            binds: str_list(&bare, "mounts"),
            restart_policy: Some(RestartPolicy {
                name: get("restart").as_deref().and_then(restart_policy),
                maximum_retry_count: None,
            }),
            readonly_rootfs: bare.get("read_only").and_then(Value::as_bool),
            tmpfs,
            log_config,
            cap_add: str_list(&bare, "cap_add"),
            cap_drop: str_list(&bare, "cap_drop"),
            memory: get("memory").as_deref().and_then(parse_memory),
            nano_cpus: bare.get("cpus").and_then(Value::as_number).map(|c| (c * 1e9) as i64),
            network_mode: first_network.clone(),
            ..Default::default()
        }),
        networking_config: first_network
            .map(|n| NetworkingConfig { endpoints_config: Some([(n, endpoint(&bare, replica.aliases))].into()) }),
        ..Default::default()
    })
}

pub fn endpoint(container: &Value, with_aliases: bool) -> EndpointSettings {
    let aliases = if with_aliases { str_list(container, "network_aliases") } else { None };
    EndpointSettings { aliases, ..Default::default() }
}

fn replica_labels(ctx: &OperationContext, bare: &Value, replica: &Replica) -> HashMap<String, String> {
    let mut labels = labels(ctx, bare);
    labels.insert(crate::util::REPLICA.into(), replica.slot.to_string());
    if let Some(revision) = bare.get("revision").and_then(Value::as_str) {
        labels.insert(crate::util::REVISION.into(), revision.to_string());
    }
    labels
}

/// A create refused because the name is taken (`Conflict`) stays a conflict,
/// for the engine to look for this state's object there, unless the container
/// holding the name carries another owner's markers: then it is an error at once.
async fn name_taken(docker: &Docker, ctx: &OperationContext, name: &str, error: ProviderError) -> ProviderError {
    if error.kind != infra_core::ProviderErrorKind::Conflict {
        return error;
    }
    let holder = docker.inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>).await;
    let labels = holder.ok().and_then(|c| c.config).and_then(|c| c.labels);
    match labels {
        Some(labels) if !crate::util::carries_markers(ctx, &labels) => {
            ProviderError::failed(format!("{}: the container is not this state's {}", error.message, ctx.address))
        }
        // Ours, or not listed yet (Docker holds the name while it creates).
        _ => error,
    }
}

/// Creates, connects and starts one replica, and waits until it is healthy;
/// one that never gets there is removed again and its logs returned.
pub async fn create_replica(
    docker: &Docker,
    ctx: &OperationContext,
    planned: &Value,
    replica: &Replica,
) -> Result<String, ProviderError> {
    let name = &replica.name;
    let options = CreateContainerOptions { name: Some(name.clone()), platform: String::new() };
    let created = match docker.create_container(Some(options), body(ctx, planned, replica)?).await {
        Ok(created) => created,
        Err(e) => {
            return Err(name_taken(docker, ctx, name, docker_error(&format!("creating container {name}"), e)).await);
        }
    };
    let id = created.id;
    let started = async {
        for network in str_list(planned, "networks").unwrap_or_default().iter().skip(1) {
            connect(docker, &id, name, network, planned, replica.aliases).await?;
        }
        if planned.get("running").and_then(Value::as_bool) != Some(false) {
            start(docker, &id, name).await?;
            if let Ok(Some(check)) = crate::health::check(planned) {
                crate::health::wait_healthy(docker, &id, name, check.deadline).await?;
            }
        }
        Ok(())
    };
    if let Err(e) = started.await {
        // The error carries its logs; leave nothing unrecorded behind.
        let _ = remove(docker, &id).await;
        return Err(e);
    }
    Ok(id)
}

/// Removes a container, running or not (its volumes stay).
pub async fn remove(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let options = bollard::query_parameters::RemoveContainerOptions { force: true, v: false, link: false };
    docker.remove_container(id, Some(options)).await
}

pub async fn connect(
    docker: &Docker,
    id: &str,
    name: &str,
    network: &str,
    planned: &Value,
    with_aliases: bool,
) -> Result<(), ProviderError> {
    let request = bollard::models::NetworkConnectRequest {
        container: id.to_string(),
        endpoint_config: Some(endpoint(&planned.unmark().0, with_aliases)),
    };
    docker
        .connect_network(network, request)
        .await
        .map_err(|e| docker_error(&format!("connecting container {name} to network {network}"), e))
}

pub async fn start(docker: &Docker, id: &str, name: &str) -> Result<(), ProviderError> {
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
        .map_err(|e| docker_error(&format!("starting container {name}"), e))
}

/// Starts a container found earlier; `Ok(false)` when it is gone by now. A
/// container whose creating client was killed is removed by the daemon a moment
/// later, so one listed just after such a crash may vanish before it starts.
pub async fn start_if_present(docker: &Docker, id: &str, name: &str) -> Result<bool, ProviderError> {
    match docker.start_container(id, None::<StartContainerOptions>).await {
        Ok(()) => Ok(true),
        Err(e) if crate::util::is_not_found(&e) => Ok(false),
        Err(e) => Err(docker_error(&format!("starting container {name}"), e)),
    }
}

pub async fn stop(docker: &Docker, id: &str, name: &str) -> Result<(), ProviderError> {
    match docker.stop_container(id, Some(StopContainerOptions { t: Some(10), signal: None })).await {
        Ok(()) => Ok(()),
        Err(e) if crate::util::is_not_found(&e) => Ok(()),
        Err(e) => Err(docker_error(&format!("stopping container {name}"), e)),
    }
}

/// Fills the env files' digest, canonical ports and the revision at plan time,
/// and decides how changed settings reach the replicas: recreated (the plan
/// names the settings that force it), or rolled out in place.
pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Result<Refined, ProviderError> {
    let hash = env_files_hash(&proposed)?;
    proposed.set("env_files_sha256", hash);
    let mut planned = canonical_ports(proposed);
    if planned.get("proxy").is_none_or(Value::is_null) && crate::publish::proxied(&planned) {
        planned.set("proxy", Value::Bool(true));
    }
    let revision = revision(&planned);
    planned.set("revision", revision);
    let Some(prior) = prior else { return Ok(Refined::new(planned)) };
    let changed: Vec<String> =
        SETTINGS.iter().filter(|k| Value::differs(prior.get(k), planned.get(k))).map(|k| k.to_string()).collect();
    let strategy = Strategy::of(&planned)?;
    if strategy == Strategy::Recreate && !changed.is_empty() {
        return Ok(Refined::new(planned).replace_on(changed));
    }
    let prior_revision = prior.get("revision").cloned().unwrap_or(Value::Null);
    if changed.is_empty() && prior_revision.is_null() {
        // Imported, or made before revisions were recorded: it matches as it is.
        planned.set("revision", Value::Null);
    }
    let rolls = Value::differs(Some(&prior_revision), planned.get("revision"));
    let (before, after) = (prior.get("replicas").map_or(1, |_| replicas(prior)), replicas(&planned));
    if rolls || before != after {
        planned.set("id", Value::Unknown);
        planned.set("ids", Value::Unknown);
    }
    if rolls {
        planned.set("image_id", Value::Unknown);
    }
    let proxied = (crate::publish::proxied(&planned), prior.get("proxy").and_then(Value::as_bool) == Some(true));
    let note = match proxied {
        (true, false) if !rolls => Some(format!(
            "infra's proxy {} is gone or stopped: it is started again in front of the replicas",
            crate::publish::proxy_name(&planned)
        )),
        (true, false) => Some(format!(
            "moves behind infra's proxy: the old container stops first (a moment without service), then the \
             proxy {} holds the published ports and the replicas run behind it",
            crate::publish::proxy_name(&planned)
        )),
        (false, true) => Some("leaves infra's proxy: the proxy stops, then the replicas publish the ports".into()),
        _ => rollout_note(strategy, rolls, before, after, proxied.0),
    };
    Ok(Refined::new(planned).note(note))
}

fn rollout_note(strategy: Strategy, rolls: bool, before: usize, after: usize, proxied: bool) -> Option<String> {
    let scale = (before != after).then(|| format!("scaled from {before} to {after} replicas"));
    // One replica reads as one ("1 replicas replaced one at a time" did not).
    let (replaced, new, old) = if after == 1 {
        ("the replica replaced".to_string(), "the new one", "the old one")
    } else {
        (format!("{after} replicas replaced one at a time"), "each new one", "its old one")
    };
    let roll = rolls.then(|| match strategy {
        Strategy::BlueGreen => format!(
            "blue-green update: {after} new replicas start and turn healthy, then the network aliases move to them and the old ones stop"
        ),
        _ if proxied => format!(
            "rolling update behind infra's proxy: {replaced}, {new} healthy and taking connections before {old} \
             leaves the proxy, then stops once its connections end"
        ),
        _ => format!("rolling update: {replaced}, {new} healthy before {old} stops"),
    });
    match (roll, scale) {
        (Some(roll), Some(scale)) => Some(format!("{roll}; {scale}")),
        (roll, scale) => roll.or(scale),
    }
}

/// A digest of every setting a replica is created from; unknown until they are
/// all known. It covers secret values, so it is marked sensitive when they are.
fn revision(planned: &Value) -> Value {
    let mut settings = Value::object(SETTINGS.iter().map(|k| (*k, planned.get(k).cloned().unwrap_or(Value::Null))));
    // Only when on: the revisions of containers made before the proxy existed stay as they were.
    if crate::publish::proxied(planned) {
        settings.set("proxy", Value::Bool(true));
    }
    if !settings.is_wholly_known() {
        return Value::Unknown;
    }
    let secret = settings.contains_sensitive();
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(settings.canonical().to_json().to_string().as_bytes()));
    let revision = Value::string(&digest[..16]);
    if secret { revision.sensitive() } else { revision }
}

/// Reads `KEY=VALUE` lines (blank lines and `#` comments skipped).
fn read_env_files(container: &Value) -> Result<Vec<(String, String)>, ProviderError> {
    let mut out = Vec::new();
    for path in str_list(container, "env_files").unwrap_or_default() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ProviderError::invalid("env_files", format!("cannot read env file {path}: {e}")))?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                return Err(ProviderError::invalid("env_files", format!("{path}:{}: expected KEY=VALUE", number + 1)));
            };
            let value = value.trim().trim_matches('"');
            out.push((key.trim().to_string(), value.to_string()));
        }
    }
    Ok(out)
}

/// What the env files hold, as a digest: a changed file recreates the container
/// without its values ever appearing in a plan.
fn env_files_hash(container: &Value) -> Result<Value, ProviderError> {
    if str_list(container, "env_files").is_none_or(|f| f.is_empty()) {
        return Ok(Value::Null);
    }
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for (k, v) in read_env_files(container)? {
        hasher.update(format!("{k}={v}\n").as_bytes());
    }
    Ok(Value::string(hex::encode(hasher.finalize())))
}

/// Ports as Docker reports them back: `ADDRESS:HOST:CONTAINER/PROTOCOL`. The plan
/// shows this form, so a container read back (or imported) compares equal.
fn canonical_ports(mut proposed: Value) -> Value {
    if let Some(ports) = str_list(&proposed, "ports") {
        let canonical = ports
            .iter()
            .map(|p| match parse_port(p) {
                Ok(port) => Value::string(format!("{}:{}:{}", port.address, port.host, port.container)),
                Err(_) => Value::string(p),
            })
            .collect();
        proposed.set("ports", Value::List(canonical));
    }
    proposed
}

/// Everything about an existing container that its configuration could say,
/// leaving out what its image brings by itself (for `infra import`).
pub async fn inspect(docker: &Docker, id: &str) -> Result<Value, ProviderError> {
    let c = docker
        .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .map_err(|e| docker_error(&format!("inspecting container {id}"), e))?;
    let config = c.config.unwrap_or_default();
    let host = c.host_config.unwrap_or_default();
    let image_ref = config.image.clone().unwrap_or_default();
    let image = docker.inspect_image(&image_ref).await.ok().and_then(|i| i.config).unwrap_or_default();
    let strings = |v: Option<Vec<String>>| {
        v.filter(|l| !l.is_empty()).map_or(Value::Null, |l| Value::List(l.into_iter().map(Value::String).collect()))
    };
    let own = |mine: Option<Vec<String>>, inherited: Option<Vec<String>>| {
        if mine == inherited { Value::Null } else { strings(mine) }
    };
    let image_env = image.env.unwrap_or_default();
    let env: Vec<(String, Value)> = config
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !image_env.contains(e))
        .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), Value::string(v))))
        .collect();
    let mut ports: Vec<String> = host
        .port_bindings
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(container, bindings)| {
            bindings.unwrap_or_default().into_iter().map(move |b| {
                format!("{}:{}:{container}", b.host_ip.unwrap_or_default(), b.host_port.unwrap_or_default())
            })
        })
        .collect();
    ports.sort();
    let networks: Vec<String> = c
        .network_settings
        .and_then(|n| n.networks)
        .map(|n| n.into_keys().filter(|name| name != "bridge").collect())
        .unwrap_or_default();
    let image_labels = image.labels.unwrap_or_default();
    let all_labels = config.labels.unwrap_or_default();
    let revision = all_labels.get(crate::util::REVISION).map_or(Value::Null, Value::string);
    let labels: Vec<(String, Value)> = all_labels
        .into_iter()
        .filter(|(k, v)| !crate::util::is_marker(k) && image_labels.get(k) != Some(v))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let restart = host.restart_policy.and_then(|r| r.name).map_or("no".to_string(), |n| match n {
        RestartPolicyNameEnum::ALWAYS => "always".into(),
        RestartPolicyNameEnum::UNLESS_STOPPED => "unless-stopped".into(),
        RestartPolicyNameEnum::ON_FAILURE => "on-failure".into(),
        _ => "no".into(),
    });
    let text = |v: Option<String>| v.filter(|s| !s.is_empty()).map_or(Value::Null, Value::String);
    Ok(Value::object([
        ("id", Value::string(c.id.unwrap_or_default())),
        ("name", Value::string(c.name.unwrap_or_default().trim_start_matches('/'))),
        ("image", Value::string(image_ref)),
        ("command", own(config.cmd, image.cmd)),
        ("entrypoint", own(config.entrypoint, image.entrypoint)),
        ("env", if env.is_empty() { Value::Null } else { Value::object(env) }),
        ("ports", strings(Some(ports))),
        ("mounts", strings(host.binds)),
        ("networks", strings(Some(networks))),
        ("restart", Value::string(restart)),
        ("user", text(config.user)),
        ("working_dir", text(config.working_dir)),
        ("read_only", Value::Bool(host.readonly_rootfs.unwrap_or(false))),
        ("cap_add", strings(host.cap_add)),
        ("cap_drop", strings(host.cap_drop)),
        ("labels", if labels.is_empty() { Value::Null } else { Value::object(labels) }),
        ("cpus", host.nano_cpus.filter(|n| *n > 0).map_or(Value::Null, |n| Value::Number(n as f64 / 1e9))),
        ("running", Value::Bool(c.state.and_then(|s| s.running).unwrap_or(false))),
        ("revision", revision),
        ("image_id", text(c.image)),
    ]))
}

/// The id of the image a container runs.
pub async fn image_id(docker: &Docker, id: &str) -> Result<Value, ProviderError> {
    let c = docker
        .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .map_err(|e| docker_error(&format!("inspecting container {id}"), e))?;
    Ok(c.image.filter(|i| !i.is_empty()).map_or(Value::Null, Value::String))
}

/// What Docker reports laid over what was recorded. Networks are a set: the
/// recorded order stands unless membership changed (a network disconnected by
/// hand shows as drift).
pub fn reconcile(recorded: &Value, observed: &Value) -> Value {
    let mut merged = crate::util::merge_observed(recorded, observed);
    let as_set = |v: Option<Vec<String>>| {
        let mut v = v.unwrap_or_default();
        v.sort();
        v
    };
    if as_set(str_list(recorded, "networks")) == as_set(str_list(observed, "networks")) {
        merged.set("networks", recorded.get("networks").cloned().unwrap_or(Value::Null));
    }
    merged
}

/// Runs an argv in a running container and collects what it wrote.
pub async fn exec(docker: &Docker, id: &str, argv: &[String]) -> Result<infra_core::ExecOutput, ProviderError> {
    let config = bollard::models::ExecConfig {
        cmd: Some(argv.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let what = format!("running {:?} in container {id}", argv.first().map(String::as_str).unwrap_or_default());
    let created = docker.create_exec(id, config).await.map_err(|e| docker_error(&what, e))?;
    let mut output = infra_core::ExecOutput::default();
    if let bollard::exec::StartExecResults::Attached { output: mut stream, .. } =
        docker.start_exec(&created.id, None).await.map_err(|e| docker_error(&what, e))?
    {
        use futures_util::StreamExt as _;
        while let Some(chunk) = stream.next().await {
            match chunk.map_err(|e| docker_error(&what, e))? {
                bollard::container::LogOutput::StdErr { message } => output.stderr.extend_from_slice(&message),
                other => output.stdout.extend_from_slice(&other.into_bytes()),
            }
        }
    }
    let inspected = docker.inspect_exec(&created.id).await.map_err(|e| docker_error(&what, e))?;
    output.exit_code = inspected.exit_code.unwrap_or(-1);
    Ok(output)
}

pub async fn list(docker: &Docker, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    let options = ListContainersOptions { all: true, filters: scope.filters(), ..Default::default() };
    let containers = docker.list_containers(Some(options)).await.map_err(|e| docker_error("listing containers", e))?;
    Ok(containers
        .into_iter()
        .filter_map(|c| {
            let id = c.id?;
            let name =
                c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default();
            let mut networks: Vec<String> = c
                .network_settings
                .and_then(|n| n.networks)
                .map(|n| n.into_keys().filter(|name| name != "bridge").collect())
                .unwrap_or_default();
            networks.sort();
            let value = Value::object([
                ("id", Value::string(&id)),
                ("name", Value::string(name)),
                ("running", Value::Bool(c.state == Some(ContainerSummaryStateEnum::RUNNING))),
                ("image_id", c.image_id.filter(|i| !i.is_empty()).map_or(Value::Null, Value::String)),
                (
                    "networks",
                    if networks.is_empty() {
                        Value::Null
                    } else {
                        Value::List(networks.into_iter().map(Value::String).collect())
                    },
                ),
            ]);
            Some((id, Observed::new(value, &c.labels.unwrap_or_default())))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("256m"), Some(256 << 20));
        assert_eq!(parse_memory("1G"), Some(1 << 30));
        assert_eq!(parse_memory("lots"), None);
    }

    #[test]
    fn mounts_need_absolute_paths() {
        assert!(check_mount("data:/var/lib/postgresql").is_ok());
        assert!(check_mount("/srv/site:/usr/share/nginx/html:ro").is_ok());
        assert!(check_mount("data:relative").is_err());
        assert!(check_mount("./site:/srv").is_err());
    }
}
