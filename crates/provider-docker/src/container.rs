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
use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};

use crate::util::{Observed, Scope, docker_error, labels, set, str_list};

pub fn schema() -> Schema {
    let list = || Type::list(Type::String);
    Schema::new("A Docker container.")
        .attribute("name", AttributeSchema::required(Type::String).force_new())
        .attribute("image", AttributeSchema::required(Type::String).force_new().describe("image name, tag or id"))
        .attribute("command", AttributeSchema::optional(list()).force_new())
        .attribute("entrypoint", AttributeSchema::optional(list()).force_new())
        .attribute("env", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute(
            "env_files",
            AttributeSchema::optional(list())
                .force_new()
                .describe("files of KEY=VALUE lines; their values are treated as secrets; `env` wins over them"),
        )
        .attribute("env_files_sha256", AttributeSchema::computed(Type::String))
        .attribute(
            "ports",
            AttributeSchema::optional(list())
                .force_new()
                .describe("\"CONTAINER\", \"HOST:CONTAINER\" or \"ADDRESS:HOST:CONTAINER\", optionally /udp; address defaults to 127.0.0.1"),
        )
        .attribute(
            "mounts",
            AttributeSchema::optional(list()).force_new().describe("\"VOLUME:/path\" or \"/host/path:/path\", optionally :ro"),
        )
        .attribute("tmpfs", AttributeSchema::optional(list()).force_new().describe("\"/path\" or \"/path:size=64m,mode=1777\""))
        .attribute("log_driver", AttributeSchema::optional(Type::String).force_new())
        .attribute("log_options", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("networks", AttributeSchema::optional(list()).force_new())
        .attribute(
            "network_aliases",
            AttributeSchema::optional(list()).force_new().describe("names other containers reach this one by, on every network"),
        )
        .attribute(
            "network_aliases",
            AttributeSchema::optional(list()).force_new().describe("names other containers reach this one by, on every network"),
        )
        .attribute("restart", AttributeSchema::optional(Type::String).default(Value::string("no")).force_new())
        .attribute("user", AttributeSchema::optional(Type::String).force_new())
        .attribute("working_dir", AttributeSchema::optional(Type::String).force_new())
        .attribute("read_only", AttributeSchema::optional(Type::Bool).default(Value::Bool(false)).force_new())
        .attribute("labels", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute(
            "healthcheck",
            AttributeSchema::optional(crate::health::schema_type())
                .force_new()
                .describe("{ cmd = [...], interval = \"5s\", timeout = \"5s\", retries = 3, start_period = \"0s\" }; creation waits until healthy"),
        )
        .attribute("cap_add", AttributeSchema::optional(list()).force_new())
        .attribute("cap_drop", AttributeSchema::optional(list()).force_new())
        .attribute("memory", AttributeSchema::optional(Type::String).force_new().describe("limit such as 256m or 1g"))
        .attribute("running", AttributeSchema::optional(Type::Bool).default(Value::Bool(true)))
        .attribute("id", AttributeSchema::computed(Type::String))
}

struct Port {
    address: String,
    host: String,
    container: String,
}

fn parse_port(text: &str) -> Result<Port, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, p @ ("tcp" | "udp" | "sctp"))) => (spec, p),
        Some(_) => return Err(format!("port {text:?}: the protocol must be tcp, udp or sctp")),
        None => (text, "tcp"),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (address, host, container) = match parts.as_slice() {
        [container] => ("127.0.0.1", "", *container),
        [host, container] => ("127.0.0.1", *host, *container),
        [address, host, container] => (*address, *host, *container),
        _ => return Err(format!("port {text:?} is not CONTAINER, HOST:CONTAINER or ADDRESS:HOST:CONTAINER")),
    };
    let number = |p: &str| p.parse::<u16>().ok().filter(|n| *n > 0);
    if number(container).is_none() || (!host.is_empty() && number(host).is_none()) {
        return Err(format!("port {text:?}: ports are numbers from 1 to 65535"));
    }
    Ok(Port { address: address.to_string(), host: host.to_string(), container: format!("{container}/{protocol}") })
}

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
    errors
}

/// `256m`, `1g`, `512k` or plain bytes.
fn parse_memory(text: &str) -> Option<i64> {
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

fn body(ctx: &OperationContext, planned: &Value) -> Result<ContainerCreateBody, ProviderError> {
    // Secrets are marked for display; Docker gets the values themselves.
    let (bare, _) = planned.unmark();
    let get = |k: &str| bare.get(k).and_then(Value::as_str).map(str::to_string);
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for text in str_list(&bare, "ports").unwrap_or_default() {
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
        labels: Some(labels(ctx, &bare)),
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
            network_mode: first_network.clone(),
            ..Default::default()
        }),
        networking_config: first_network
            .map(|n| NetworkingConfig { endpoints_config: Some([(n, endpoint(&bare))].into()) }),
        ..Default::default()
    })
}

fn endpoint(container: &Value) -> EndpointSettings {
    EndpointSettings { aliases: str_list(container, "network_aliases"), ..Default::default() }
}

pub async fn create(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let name = planned.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let options = CreateContainerOptions { name: Some(name.clone()), platform: String::new() };
    let created = docker
        .create_container(Some(options), body(ctx, planned)?)
        .await
        .map_err(|e| docker_error(&format!("creating container {name}"), e))?;
    let id = created.id;
    for network in str_list(planned, "networks").unwrap_or_default().iter().skip(1) {
        let request = bollard::models::NetworkConnectRequest {
            container: id.clone(),
            endpoint_config: Some(endpoint(&planned.unmark().0)),
        };
        docker
            .connect_network(network, request)
            .await
            .map_err(|e| docker_error(&format!("connecting container {name} to network {network}"), e))?;
    }
    let mut state = planned.clone();
    set(&mut state, "id", Value::string(&id));
    if planned.get("running").and_then(Value::as_bool) != Some(false) {
        start(docker, &id, &name).await?;
        if let Ok(Some(check)) = crate::health::check(planned)
            && let Err(e) = crate::health::wait_healthy(docker, &id, &name, check.deadline).await
        {
            // The error carries its logs; leave nothing unrecorded behind.
            let options = bollard::query_parameters::RemoveContainerOptions { force: true, v: false, link: false };
            let _ = docker.remove_container(&id, Some(options)).await;
            return Err(e);
        }
    }
    Ok(state)
}

async fn start(docker: &Docker, id: &str, name: &str) -> Result<(), ProviderError> {
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
        .map_err(|e| docker_error(&format!("starting container {name}"), e))
}

/// Only `running` changes in place: start or stop the container.
pub async fn update(docker: &Docker, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
    let id = prior.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let name = planned.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    match planned.get("running").and_then(Value::as_bool) {
        Some(false) => docker
            .stop_container(&id, Some(StopContainerOptions { t: Some(10), signal: None }))
            .await
            .map_err(|e| docker_error(&format!("stopping container {name}"), e))?,
        _ => start(docker, &id, &name).await?,
    }
    Ok(crate::util::with_computed(planned, prior))
}

/// Ports as Docker reports them back: `ADDRESS:HOST:CONTAINER/PROTOCOL`. The plan
/// shows this form, so a container read back (or imported) compares equal.
pub fn plan(prior: Option<&Value>, mut proposed: Value) -> Result<(Value, Vec<String>), ProviderError> {
    let hash = env_files_hash(&proposed)?;
    let changed = prior.is_some_and(|p| p.get("env_files_sha256").cloned().unwrap_or(Value::Null) != hash);
    set(&mut proposed, "env_files_sha256", hash);
    Ok((canonical_ports(proposed), if changed { vec!["env_files".to_string()] } else { Vec::new() }))
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

fn canonical_ports(mut proposed: Value) -> Value {
    if let Some(ports) = str_list(&proposed, "ports") {
        let canonical = ports
            .iter()
            .map(|p| match parse_port(p) {
                Ok(port) => Value::string(format!("{}:{}:{}", port.address, port.host, port.container)),
                Err(_) => Value::string(p),
            })
            .collect();
        set(&mut proposed, "ports", Value::List(canonical));
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
    let labels: Vec<(String, Value)> = config
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| k != crate::util::LINEAGE && k != crate::util::ADDRESS && image_labels.get(k) != Some(v))
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
        ("running", Value::Bool(c.state.and_then(|s| s.running).unwrap_or(false))),
    ]))
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
        set(&mut merged, "networks", recorded.get("networks").cloned().unwrap_or(Value::Null));
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
    fn ports_default_to_loopback() {
        let p = parse_port("8080:80").expect("valid");
        assert_eq!((p.address.as_str(), p.host.as_str(), p.container.as_str()), ("127.0.0.1", "8080", "80/tcp"));
        let p = parse_port("0.0.0.0:53:53/udp").expect("valid");
        assert_eq!((p.address.as_str(), p.container.as_str()), ("0.0.0.0", "53/udp"));
        assert!(parse_port("80:http").is_err());
        assert!(parse_port("1:2:3:4").is_err());
    }

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
