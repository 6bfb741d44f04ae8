//! The proxy infra puts in front of a published container, so an update drops
//! no connection and the user writes no proxy configuration (`proxy = true`,
//! the default for a container that publishes a fixed host port over TCP and
//! has a health check).
//!
//! HAProxy from Debian's packages, built FROM the provider's `proxy_base`,
//! holds the host ports; the replicas run unpublished behind it, on a network
//! of their own (`NAME-edge`) where they answer to one DNS name. A new replica
//! joins that network only once Docker says it is healthy, and counts as
//! admitted once the proxy itself sees it up; an old one is taken out of the
//! proxy's rotation and given time for its open connections to end before it
//! stops. HAProxy works at the TCP level, so any protocol passes.
//!
//! The proxy's container and network carry the resource's markers plus
//! `infra.role = proxy`: found again after a crash, never taken for a replica.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest, PortBinding, RestartPolicy};
use infra_core::{OperationContext, ProviderError, Value};

use crate::container;
use crate::publish::{Port, SLOTS, edge_network, proxy_name, published};
use crate::util::{Observed, REVISION, ROLE, carries_markers, docker_error, labels};

/// The `infra.role` of the proxy's container and network.
pub const ROLE_PROXY: &str = "proxy";
/// The name replicas answer to on the proxy's network.
const BACKEND_ALIAS: &str = "backend";
/// What the proxy image is built FROM when the provider names no `proxy_base`.
pub const DEFAULT_BASE: &str = "debian:bookworm-slim";
const SOCKET: &str = "/run/haproxy.sock";
/// How long a healthy replica may take to show as up in the proxy: its DNS
/// name is looked up every second and each address checked every second.
const ADMIT_DEADLINE: Duration = Duration::from_secs(30);
/// How long a replica taken out of rotation keeps its open connections.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How long the proxy may take to answer on its control socket after a start.
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// The provider's `proxy_base`: an image reference, nothing that could end
/// the Dockerfile's FROM line.
pub fn validate_base(base: &str) -> Result<(), ProviderError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    if base.is_empty() || !base.chars().all(allowed) {
        return Err(ProviderError::invalid("proxy_base", format!("proxy_base {base:?} is not an image reference")));
    }
    Ok(())
}

/// The HAProxy configuration: one frontend and one backend per container
/// port, the backend's servers whatever `backend` resolves to on the proxy's
/// network, looked up every second through Docker's DNS.
fn config_text(ports: &[Port]) -> String {
    let mut text = String::from(CONFIG_HEAD);
    let numbers: std::collections::BTreeSet<&str> =
        ports.iter().map(|p| p.container.trim_end_matches("/tcp")).collect();
    for number in numbers {
        text.push_str(&format!(
            "\nfrontend in{number}\n    bind :{number}\n    default_backend to{number}\n\
             \nbackend to{number}\n    server-template r {SLOTS} {BACKEND_ALIAS}:{number} check resolvers docker init-addr none\n"
        ));
    }
    text
}

/// Failed lookups keep the last answer for 30 s, and a replica counts as down
/// only after three failed checks of up to 3 s each: a busy host's slow DNS
/// or slow answer must not take the only replica out. An address gone from a
/// good answer goes after 1 s (it left the rotation before its container stopped).
const CONFIG_HEAD: &str = "global
    maxconn 4096
    stats socket /run/haproxy.sock mode 600 level admin
    hard-stop-after 15s
    log stderr format raw local0 notice

defaults
    mode tcp
    log global
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 3s
    retries 3
    option redispatch 1
    default-server inter 1s fall 3 rise 1

resolvers docker
    nameserver dns 127.0.0.11:53
    accepted_payload_size 8192
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 30s
    hold other 30s
    hold refused 30s
    hold nx 30s
    hold timeout 30s
    hold obsolete 1s
";

/// The proxy image's Dockerfile; the configuration comes at run time, from
/// the container's environment.
fn dockerfile(base: &str) -> String {
    format!(
        r#"FROM {base}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy socat \
 && rm -rf /var/lib/apt/lists/*
CMD ["sh", "-c", "printf '%s\\n' \"$INFRA_PROXY_CONFIG\" >/run/haproxy.cfg && exec haproxy -W -db -f /run/haproxy.cfg"]
"#
    )
}

fn digest(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))[..12].to_string()
}

/// The proxy image, built once per base (its tag names its Dockerfile) and
/// shared by every proxy on the engine. Like a built image with
/// `keep_locally`, it stays after destroy.
async fn ensure_image(docker: &Docker, base: &str) -> Result<String, ProviderError> {
    let dockerfile = dockerfile(base);
    let tag = format!("infra-proxy:{}", digest(&dockerfile));
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let mut context = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    let packed =
        context.append_data(&mut header, "Dockerfile", dockerfile.as_bytes()).and_then(|_| context.into_inner());
    let body = packed.map_err(|e| ProviderError::failed(format!("packing the proxy's build context: {e}")))?;
    let labels = HashMap::from([(ROLE.to_string(), ROLE_PROXY.to_string())]);
    crate::image::build_tar(docker, body, "Dockerfile", &tag, labels, HashMap::new(), "").await.map_err(|e| {
        ProviderError::failed(format!(
            "{}\ninfra's proxy image is built FROM {base}: set `proxy_base` in the docker provider to a \
             Debian image this engine has, or `proxy = false` on the container",
            e.message
        ))
    })?;
    Ok(tag)
}

/// The network replicas and the proxy meet on, made once.
async fn ensure_network(docker: &Docker, ctx: &OperationContext, container: &Value) -> Result<String, ProviderError> {
    let name = edge_network(container);
    let options = None::<bollard::query_parameters::InspectNetworkOptions>;
    match docker.inspect_network(&name, options).await {
        Ok(found) if found.labels.as_ref().is_some_and(|l| carries_markers(ctx, l)) => Ok(name),
        Ok(_) => Err(ProviderError::failed(format!(
            "network {name} exists and is not the proxy network of this state's {}",
            ctx.address
        ))),
        Err(e) if crate::util::is_not_found(&e) => {
            let request =
                NetworkCreateRequest { name: name.clone(), labels: Some(proxy_labels(ctx)), ..Default::default() };
            docker.create_network(request).await.map_err(|e| docker_error(&format!("creating network {name}"), e))?;
            Ok(name)
        }
        Err(e) => Err(docker_error(&format!("inspecting network {name}"), e)),
    }
}

fn proxy_labels(ctx: &OperationContext) -> HashMap<String, String> {
    let mut labels = labels(ctx, &Value::Null);
    labels.insert(ROLE.into(), ROLE_PROXY.into());
    labels
}

/// A running proxy of one container.
pub struct Proxy {
    id: String,
    name: String,
    network: String,
    /// How many backends (container ports) it has.
    backends: usize,
}

/// Makes sure the container's proxy runs as planned: its image, its network,
/// and its container, made anew only when the ports change.
pub async fn ensure(
    docker: &Docker,
    ctx: &OperationContext,
    container: &Value,
    base: &str,
) -> Result<Proxy, ProviderError> {
    validate_base(base)?;
    let image = ensure_image(docker, base).await?;
    let network = ensure_network(docker, ctx, container).await?;
    let ports = published(container);
    let config = config_text(&ports);
    let bindings: Vec<String> = ports.iter().map(|p| format!("{}:{}:{}", p.address, p.host, p.container)).collect();
    let revision = digest(&format!("{image}\n{}\n{config}", bindings.join(",")));
    let name = proxy_name(container);
    let backends = config.matches("\nbackend ").count();
    let existing = docker.inspect_container(&name, None::<bollard::query_parameters::InspectContainerOptions>).await;
    if let Ok(found) = existing {
        let found_labels = found.config.and_then(|c| c.labels).unwrap_or_default();
        if !carries_markers(ctx, &found_labels) {
            return Err(ProviderError::failed(format!(
                "container {name} exists and is not the proxy of this state's {}",
                ctx.address
            )));
        }
        let id = found.id.unwrap_or_default();
        if found_labels.get(REVISION) == Some(&revision) {
            let running = found.state.and_then(|s| s.running).unwrap_or(false);
            if !running {
                container::start(docker, &id, &name).await?;
            }
            let proxy = Proxy { id, name, network, backends };
            proxy.wait_ready(docker).await?;
            return Ok(proxy);
        }
        // Other ports: a new proxy (the old one lets go of its ports first).
        container::remove(docker, &id).await.map_err(|e| docker_error(&format!("removing container {name}"), e))?;
    }
    let mut labels = proxy_labels(ctx);
    labels.insert(REVISION.into(), revision);
    let body = create_body(&image, &network, &ports, &config, labels);
    let options =
        bollard::query_parameters::CreateContainerOptions { name: Some(name.clone()), platform: String::new() };
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| docker_error(&format!("creating container {name}"), e))?;
    container::start(docker, &created.id, &name).await?;
    let proxy = Proxy { id: created.id, name, network, backends };
    proxy.wait_ready(docker).await?;
    Ok(proxy)
}

fn create_body(
    image: &str,
    network: &str,
    ports: &[Port],
    config: &str,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in ports {
        let binding = PortBinding { host_ip: Some(port.address.clone()), host_port: Some(port.host.clone()) };
        bindings
            .entry(port.container.clone())
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    ContainerCreateBody {
        image: Some(image.to_string()),
        env: Some(vec![format!("INFRA_PROXY_CONFIG={config}")]),
        labels: Some(labels),
        exposed_ports: Some(bindings.keys().cloned().collect()),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            network_mode: Some(network.to_string()),
            restart_policy: Some(RestartPolicy {
                name: Some(bollard::models::RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([("/run".to_string(), String::new())])),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(vec!["NET_BIND_SERVICE".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One server slot of the proxy, as `show servers state` reports it.
#[derive(Debug, PartialEq)]
struct Server {
    backend: String,
    name: String,
    address: String,
    up: bool,
    /// Taken out of rotation by infra (HAProxy's forced maintenance).
    held: bool,
}

/// Reads `show servers state`, by its header's column names.
fn parse_servers(text: &str) -> Vec<Server> {
    let mut columns: Vec<&str> = Vec::new();
    let mut servers = Vec::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("# ") {
            columns = header.split_whitespace().collect();
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let field = |name: &str| columns.iter().position(|c| *c == name).and_then(|i| fields.get(i)).copied();
        let (Some(backend), Some(name), Some(address)) = (field("be_name"), field("srv_name"), field("srv_addr"))
        else {
            continue;
        };
        let admin = field("srv_admin_state").and_then(|a| a.parse::<u32>().ok()).unwrap_or(0);
        servers.push(Server {
            backend: backend.to_string(),
            name: name.to_string(),
            address: address.to_string(),
            up: field("srv_op_state") == Some("2"),
            held: admin & 0x01 != 0,
        });
    }
    servers
}

/// Current sessions per `backend/server`, from `show stat`'s CSV.
fn parse_sessions(text: &str) -> HashMap<String, u64> {
    let mut lines = text.lines();
    let header: Vec<&str> =
        lines.next().and_then(|h| h.strip_prefix("# ")).map(|h| h.split(',').collect()).unwrap_or_default();
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (Some(proxy), Some(server), Some(current)) = (column("pxname"), column("svname"), column("scur")) else {
        return HashMap::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let count = fields.get(current)?.parse().ok()?;
            Some((format!("{}/{}", fields.get(proxy)?, fields.get(server)?), count))
        })
        .collect()
}

impl Proxy {
    /// Sends one command to HAProxy's control socket. The command is an
    /// argument of the shell, never part of its script.
    async fn command(&self, docker: &Docker, command: &str) -> Result<String, ProviderError> {
        let script = format!("printf '%s\\n' \"$1\" | socat -t 5 stdio unix-connect:{SOCKET}");
        let argv: Vec<String> = ["sh", "-c", &script, "sh", command].map(str::to_string).into();
        let output = container::exec(docker, &self.id, &argv).await?;
        if output.exit_code != 0 {
            return Err(ProviderError::failed(format!(
                "infra's proxy {} did not answer `{command}`: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    async fn wait_ready(&self, docker: &Docker) -> Result<(), ProviderError> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.command(docker, "show info").await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    let logs = crate::health::logs(docker, &self.id, "20").await.unwrap_or_default();
                    return Err(ProviderError::failed(format!("{}\nits last output:\n{logs}", e.message)));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    async fn servers(&self, docker: &Docker) -> Result<Vec<Server>, ProviderError> {
        Ok(parse_servers(&self.command(docker, "show servers state").await?))
    }

    /// Puts a healthy replica behind the proxy, and returns once the proxy
    /// sees it up on every port.
    pub async fn admit(&self, docker: &Docker, id: &str, name: &str) -> Result<(), ProviderError> {
        let address = match address_on(docker, id, &self.network).await? {
            Some(address) => address,
            None => {
                self.connect(docker, id, name).await?;
                address_on(docker, id, &self.network).await?.ok_or_else(|| {
                    ProviderError::failed(format!("container {name} has no address on network {}", self.network))
                })?
            }
        };
        let deadline = Instant::now() + ADMIT_DEADLINE;
        loop {
            let servers = self.servers(docker).await?;
            let mine: Vec<&Server> = servers.iter().filter(|s| s.address == address).collect();
            // A slot an interrupted update held out of rotation serves again.
            for held in mine.iter().filter(|s| s.held) {
                self.command(docker, &format!("set server {}/{} state ready", held.backend, held.name)).await?;
            }
            if mine.iter().filter(|s| s.up && !s.held).count() >= self.backends {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ProviderError::failed(format!(
                    "container {name} is healthy, but infra's proxy {} did not see it up within {} s \
                     (it checks {address} on the container's ports)",
                    self.name,
                    ADMIT_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn connect(&self, docker: &Docker, id: &str, name: &str) -> Result<(), ProviderError> {
        let request = bollard::models::NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: Some(vec![BACKEND_ALIAS.to_string()]),
                ..Default::default()
            }),
        };
        docker
            .connect_network(&self.network, request)
            .await
            .map_err(|e| docker_error(&format!("connecting container {name} to network {}", self.network), e))
    }

    /// Takes a replica out of rotation and waits (a while) until the
    /// connections it was serving have ended, so stopping it cuts none.
    pub async fn drain(&self, docker: &Docker, id: &str) -> Result<(), ProviderError> {
        let Some(address) = address_on(docker, id, &self.network).await? else { return Ok(()) };
        let slots: Vec<String> = self
            .servers(docker)
            .await?
            .into_iter()
            .filter(|s| s.address == address)
            .map(|s| format!("{}/{}", s.backend, s.name))
            .collect();
        for slot in &slots {
            self.command(docker, &format!("set server {slot} state maint")).await?;
        }
        let deadline = Instant::now() + DRAIN_DEADLINE;
        while Instant::now() < deadline {
            let sessions = parse_sessions(&self.command(docker, "show stat").await?);
            if slots.iter().all(|s| sessions.get(s).copied().unwrap_or(0) == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

/// A container's address on a network, if it is attached.
async fn address_on(docker: &Docker, id: &str, network: &str) -> Result<Option<String>, ProviderError> {
    let options = None::<bollard::query_parameters::InspectContainerOptions>;
    let inspected = match docker.inspect_container(id, options).await {
        Ok(inspected) => inspected,
        Err(e) if crate::util::is_not_found(&e) => return Ok(None),
        Err(e) => return Err(docker_error(&format!("inspecting container {id}"), e)),
    };
    let mut networks = inspected.network_settings.and_then(|n| n.networks).unwrap_or_default();
    Ok(networks.remove(network).and_then(|e| e.ip_address).filter(|a| !a.is_empty()))
}

/// Removes the container's proxy and its network, if there are any (once no
/// replica is attached to it).
pub async fn remove(docker: &Docker, ctx: &OperationContext, container: &Value) -> Result<(), ProviderError> {
    remove_container(docker, ctx, container).await?;
    remove_network(docker, ctx, container).await
}

/// Removes the proxy's container, freeing the published ports.
pub async fn remove_container(docker: &Docker, ctx: &OperationContext, container: &Value) -> Result<(), ProviderError> {
    let name = proxy_name(container);
    let options = None::<bollard::query_parameters::InspectContainerOptions>;
    if let Ok(found) = docker.inspect_container(&name, options).await
        && carries_markers(ctx, &found.config.and_then(|c| c.labels).unwrap_or_default())
    {
        match container::remove(docker, &found.id.unwrap_or_default()).await {
            Err(e) if !crate::util::is_not_found(&e) => {
                return Err(docker_error(&format!("removing container {name}"), e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Removes the proxy's network.
pub async fn remove_network(docker: &Docker, ctx: &OperationContext, container: &Value) -> Result<(), ProviderError> {
    let network = edge_network(container);
    let options = None::<bollard::query_parameters::InspectNetworkOptions>;
    if let Ok(found) = docker.inspect_network(&network, options).await
        && carries_markers(ctx, &found.labels.unwrap_or_default())
    {
        match crate::network::remove(docker, &found.id.unwrap_or_default()).await {
            Err(e) if !crate::util::is_not_found(&e) => {
                return Err(docker_error(&format!("removing network {network}"), e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refresh: a container planned behind a proxy whose proxy is gone or
/// stopped reads as `proxy = false`, so the plan shows it made again.
pub fn observed<'a>(
    mut value: Value,
    lineage: &str,
    address: &str,
    listed: impl Iterator<Item = &'a Observed>,
) -> Value {
    if value.get("proxy").and_then(Value::as_bool) != Some(true) {
        return value;
    }
    let name = proxy_name(&value);
    let running = listed.into_iter().any(|o| {
        o.made_for(lineage, address)
            && o.labels.get(ROLE).map(String::as_str) == Some(ROLE_PROXY)
            && o.value.get("name").and_then(Value::as_str) == Some(name.as_str())
            && o.value.get("running").and_then(Value::as_bool) == Some(true)
    });
    if !running {
        value.set("proxy", Value::Bool(false));
    }
    value
}

/// A replica as listed, without the proxy's network (infra's, not the user's).
pub fn without_edge(container: &Value, replica: &Value) -> Value {
    let edge = edge_network(container);
    let mut networks = crate::util::str_list(replica, "networks").unwrap_or_default();
    if !networks.contains(&edge) {
        return replica.clone();
    }
    networks.retain(|n| *n != edge);
    let mut value = replica.clone();
    value.set(
        "networks",
        if networks.is_empty() { Value::Null } else { Value::List(networks.into_iter().map(Value::String).collect()) },
    );
    value
}

/// Whether a listed container is some resource's proxy, not a replica.
pub fn is_proxy(observed: &Observed) -> bool {
    observed.labels.get(ROLE).map(String::as_str) == Some(ROLE_PROXY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_has_a_frontend_and_backend_per_container_port() {
        let ports: Vec<Port> = ["127.0.0.1:8080:80", "0.0.0.0:8081:80", "9000:9000"]
            .iter()
            .map(|p| crate::publish::parse_port(p).expect("port"))
            .collect();
        let text = config_text(&ports);
        assert_eq!(text.matches("\nfrontend ").count(), 2, "{text}");
        assert!(text.contains("bind :80\n") && text.contains("bind :9000\n"), "{text}");
        assert!(text.contains("server-template r 32 backend:9000 check resolvers docker init-addr none"), "{text}");
    }

    #[test]
    fn servers_are_read_by_column_name() {
        let text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n\
                    3 to80 1 r1 172.20.0.3 2 0 1\n3 to80 2 r2 172.20.0.4 2 1 1\n3 to80 3 r3 - 0 32 1\n";
        let servers = parse_servers(text);
        assert_eq!(servers.len(), 3);
        assert_eq!(
            servers[0],
            Server { backend: "to80".into(), name: "r1".into(), address: "172.20.0.3".into(), up: true, held: false }
        );
        assert!(servers[1].held, "forced maintenance");
        assert!(!servers[2].up && !servers[2].held, "a slot without an address is down, not held");
    }

    #[test]
    fn sessions_are_read_from_the_stat_csv() {
        let text = "# pxname,svname,qcur,qmax,scur,smax\nin80,FRONTEND,,,3,9\nto80,r1,0,0,2,5\nto80,r2,0,0,0,1\n";
        let sessions = parse_sessions(text);
        assert_eq!(sessions.get("to80/r1"), Some(&2));
        assert_eq!(sessions.get("to80/r2"), Some(&0));
    }

    #[test]
    fn the_base_is_an_image_reference_and_nothing_more() {
        assert!(validate_base("infra-base:bookworm-589722391082").is_ok());
        assert!(validate_base("debian:bookworm-slim").is_ok());
        assert!(validate_base("debian\nRUN rm -rf /").is_err());
        assert!(validate_base("").is_err());
    }
}
