//! What a container publishes: its `ports` as written and parsed, and whether
//! infra's proxy holds them for it (`proxy.rs` runs that proxy).

use infra_core::{ProviderError, Value};

use crate::util::str_list;

/// One entry of `ports`, parsed.
pub(crate) struct Port {
    pub address: String,
    pub host: String,
    /// `NUMBER/PROTOCOL`.
    pub container: String,
}

/// `"CONTAINER"`, `"HOST:CONTAINER"` or `"ADDRESS:HOST:CONTAINER"`, optionally
/// `/udp` or `/sctp`; the address defaults to 127.0.0.1.
pub(crate) fn parse_port(text: &str) -> Result<Port, String> {
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

/// The ports published on an address other hosts can reach (not loopback).
pub fn public_ports(planned: &Value) -> Vec<String> {
    let loopback = |address: &str| {
        address.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || address == "localhost"
    };
    str_list(planned, "ports")
        .unwrap_or_default()
        .into_iter()
        .filter(|p| parse_port(p).is_ok_and(|port| !loopback(&port.address)))
        .collect()
}

/// Server slots per port of infra's proxy. An update runs one replica more
/// than the count.
pub const SLOTS: usize = 32;

/// Whether a container goes behind infra's proxy: as written, else when it
/// publishes fixed host ports, all TCP, and has a health check (a replica must
/// be able to say it is ready before the proxy sends it anything).
pub fn proxied(container: &Value) -> bool {
    if let Some(written) = container.get("proxy").and_then(Value::as_bool) {
        return written;
    }
    let ports = published(container);
    let has_check = container.get("healthcheck").is_some_and(|h| !h.is_null());
    has_check && !ports.is_empty() && ports.iter().all(|p| !p.host.is_empty() && p.container.ends_with("/tcp"))
}

/// The container's ports that parse (validation reports the others).
pub fn published(container: &Value) -> Vec<Port> {
    str_list(container, "ports").unwrap_or_default().iter().filter_map(|p| parse_port(p).ok()).collect()
}

/// What `proxy = true` needs of the rest of the container.
pub fn validate_proxy(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    if config.get("proxy").and_then(Value::as_bool) != Some(true) {
        return errors;
    }
    let ports = published(config);
    if ports.is_empty() {
        errors.push(ProviderError::invalid("proxy", "proxy = true needs `ports` for the proxy to publish"));
    }
    if let Some(port) = ports.iter().find(|p| !p.container.ends_with("/tcp")) {
        errors.push(ProviderError::invalid(
            "proxy",
            format!("infra's proxy passes TCP only, not {}: set proxy = false", port.container),
        ));
    }
    if config.get("replicas").and_then(Value::as_number).unwrap_or(1.0) >= SLOTS as f64 {
        errors.push(ProviderError::invalid(
            "replicas",
            format!("behind infra's proxy a container runs at most {} replicas", SLOTS - 1),
        ));
    }
    errors
}

/// The proxy's container.
pub fn proxy_name(container: &Value) -> String {
    format!("{}-proxy", container.text("name"))
}

/// The network the proxy and the replicas meet on.
pub fn edge_network(container: &Value) -> String {
    format!("{}-edge", container.text("name"))
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

    fn container(ports: &[&str], healthcheck: bool) -> Value {
        let mut c = Value::object([
            ("name", Value::string("web")),
            ("ports", Value::List(ports.iter().map(|p| Value::string(*p)).collect())),
        ]);
        if healthcheck {
            c.set("healthcheck", Value::object([("cmd", Value::List(vec![Value::string("true")]))]));
        }
        c
    }

    #[test]
    fn a_fixed_tcp_port_with_a_health_check_is_proxied_unless_said_otherwise() {
        assert!(proxied(&container(&["127.0.0.1:8080:8080"], true)));
        assert!(!proxied(&container(&["127.0.0.1:8080:8080"], false)), "no health check");
        assert!(!proxied(&container(&["8080"], true)), "no fixed host port: replicas can each have one");
        assert!(!proxied(&container(&["53:53/udp"], true)), "UDP");
        assert!(!proxied(&container(&[], true)));
        let mut opted_out = container(&["8080:80"], true);
        opted_out.set("proxy", Value::Bool(false));
        assert!(!proxied(&opted_out));
    }
}
