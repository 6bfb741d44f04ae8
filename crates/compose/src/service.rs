//! One compose service: a `container` block, and an `image` block to build
//! (`build:`) or pull (`image:` alone, as compose pulls a missing image).

use serde_yaml_ng::{Mapping, Value};

use crate::hcl::{self, Hcl};
use crate::{Block, Converter};

/// Service keys this converter carries over; the rest are reported.
const CARRIED: &[&str] = &[
    "image",
    "build",
    "container_name",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "networks",
    "depends_on",
    "healthcheck",
    "restart",
    "user",
    "working_dir",
    "labels",
    "read_only",
    "cap_add",
    "cap_drop",
    "deploy",
    "scale",
    "secrets",
    "configs",
    "logging",
    "mem_limit",
    "cpus",
    "links",
    "network_mode",
];

pub(crate) fn convert(c: &mut Converter, name: &str, service: &Mapping) {
    let place = format!("services.{name}");
    let mut container = Block::new("container", name);
    let resource = container.name.clone();
    let given_name = service.get("container_name").and_then(Value::as_str);
    container.set(
        "name",
        match given_name {
            Some(n) => c.interpolation.string(n),
            None => Hcl::Template(format!("${{var.project}}-{}", hcl::literal(name))),
        },
    );
    match image(c, &place, &resource, service) {
        Some(image) => container.set("image", image),
        None => {
            c.note(&place, "has neither `image` nor `build`: skipped");
            return;
        }
    }
    for (key, attribute) in [("command", "command"), ("entrypoint", "entrypoint")] {
        if let Some(value) = service.get(key) {
            container.set(attribute, command(c, &format!("{place}.{key}"), value));
        }
    }
    environment(c, &place, service, &mut container);
    let ports = service.get("ports").map(|p| ports_of(c, &place, p)).unwrap_or_default();
    if !ports.is_empty() {
        container.set("ports", Hcl::List(ports));
    }
    if service.get("expose").is_some() {
        c.note(format!("{place}.expose"), "not needed: containers on a network reach each other's ports");
    }
    mounts(c, &place, service, &mut container);
    networks(c, &place, name, service, &mut container);
    simple(c, service, &mut container);
    if let Some(check) = service.get("healthcheck").and_then(|h| healthcheck(c, &format!("{place}.healthcheck"), h)) {
        container.set("healthcheck", check);
    }
    deploy(c, &place, service, &mut container);
    if let Some(depends) = service.get("depends_on") {
        let depends = depends_on(c, &place, depends);
        if !depends.is_empty() {
            container.set("depends_on", Hcl::List(depends));
        }
    }
    if service.get("links").is_some() {
        c.note(format!("{place}.links"), "not needed: services reach each other by name on their networks");
    }
    for (key, _) in service {
        let key = key.as_str().unwrap_or_default();
        if !CARRIED.contains(&key) && !key.starts_with("x-") {
            c.note(format!("{place}.{key}"), "not a setting of infra's `container`");
        }
    }
    c.blocks.push(container);
}

/// The container's `image`: an `image` block built from `build:`, or pulled
/// for `image:` alone; its tag is what the container runs.
fn image(c: &mut Converter, place: &str, resource: &str, service: &Mapping) -> Option<Hcl> {
    let reference = service.get("image").and_then(Value::as_str);
    let mut block = Block::new("image", resource);
    match service.get("build") {
        Some(build) => {
            let (context, settings) = match build {
                Value::String(context) => (context.as_str(), None),
                other => (other.get("context").and_then(Value::as_str).unwrap_or("."), other.as_mapping()),
            };
            let repository = reference
                .map(|r| r.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')).map_or(r, |(repo, _)| repo))
                .map_or_else(
                    || format!("${{var.project}}/{}", hcl::literal(resource)),
                    |r| c.interpolation.template(&r.to_lowercase()),
                );
            block.set("name", Hcl::Template(repository));
            if context.contains("://") || context.starts_with("git@") {
                c.note(
                    format!("{place}.build.context"),
                    "a remote build context: clone it and point `context` at the directory",
                );
            }
            block.set(
                "context",
                Hcl::Template(format!(
                    "${{path.module}}/{}",
                    c.interpolation.template(context.trim_start_matches("./"))
                )),
            );
            if let Some(settings) = settings {
                build_settings(c, place, settings, &mut block);
            }
        }
        None => block.set("pull", c.interpolation.string(reference?)),
    }
    // As `docker compose down` does, destroy leaves images on the host.
    block.set("keep_locally", Hcl::Bool(true));
    let tag = Hcl::Expr(format!("image.{}.tag", block.name));
    c.blocks.push(block);
    Some(tag)
}

fn build_settings(c: &mut Converter, place: &str, settings: &Mapping, block: &mut Block) {
    if let Some(file) = settings.get("dockerfile").and_then(Value::as_str) {
        block.set("dockerfile", c.interpolation.string(file));
    }
    if let Some(args) = settings.get("args") {
        let args = string_map(c, args);
        block.set("build_args", args);
    }
    if let Some(target) = settings.get("target").and_then(Value::as_str) {
        block.set("target", c.interpolation.string(target));
    }
    for (key, _) in settings {
        let key = key.as_str().unwrap_or_default();
        if !["context", "dockerfile", "args", "target"].contains(&key) {
            c.note(format!("{place}.build.{key}"), "not a setting of infra's `image`");
        }
    }
}

/// `command` and `entrypoint`: a list as it is; a string split as a shell would
/// split it (compose runs no shell either).
fn command(c: &mut Converter, place: &str, value: &Value) -> Hcl {
    let words: Vec<String> = match value {
        Value::String(text) => shlex::split(text).unwrap_or_else(|| {
            c.note(place, "has unbalanced quotes: kept as one word");
            vec![text.clone()]
        }),
        Value::Sequence(items) => items.iter().map(scalar).collect(),
        other => vec![scalar(other)],
    };
    Hcl::List(words.iter().map(|w| c.interpolation.string(w)).collect())
}

/// A scalar as compose reads it: numbers and bools as their text.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// `KEY=VALUE` lines or a mapping, as a map of strings.
pub(crate) fn string_map(c: &mut Converter, value: &Value) -> Hcl {
    let pairs: Vec<(String, Option<String>)> = match value {
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let text = scalar(item);
                match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (text, None),
                }
            })
            .collect(),
        Value::Mapping(map) => map.iter().map(|(k, v)| (scalar(k), (!v.is_null()).then(|| scalar(v)))).collect(),
        _ => Vec::new(),
    };
    Hcl::Map(
        pairs
            .into_iter()
            .map(|(k, v)| {
                // A name without a value takes the variable from the shell running compose.
                let value = match v {
                    Some(v) => c.interpolation.string(&v),
                    None => Hcl::Template(c.interpolation.template(&format!("${{{k}}}"))),
                };
                (k, value)
            })
            .collect(),
    )
}

fn environment(c: &mut Converter, place: &str, service: &Mapping, container: &mut Block) {
    if let Some(env) = service.get("environment") {
        let env = string_map(c, env);
        container.set("env", env);
    }
    let files: Vec<String> = match service.get("env_file") {
        Some(Value::String(file)) => vec![file.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|i| i.as_str().or_else(|| i.get("path").and_then(Value::as_str)).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if !files.is_empty() {
        let files = files.iter().map(|f| {
            Hcl::Template(format!("${{path.module}}/{}", c.interpolation.template(f.trim_start_matches("./"))))
        });
        container.set("env_files", Hcl::List(files.collect()));
        c.note(format!("{place}.env_file"), "carried over as `env_files`; infra treats their values as secrets");
    }
}

/// Published ports as `ADDRESS:HOST:CONTAINER[/udp]`. Compose publishes on
/// every address unless one is given, so the address is written out.
fn ports_of(c: &mut Converter, place: &str, ports: &Value) -> Vec<Hcl> {
    let mut out = Vec::new();
    for port in ports.as_sequence().into_iter().flatten() {
        let spec = match port {
            Value::Mapping(long) => {
                let get = |k: &str| long.get(k).map(scalar).filter(|s| !s.is_empty());
                let target = get("target").unwrap_or_default();
                let published = get("published").map_or(String::new(), |p| format!("{p}:"));
                let address = get("host_ip").unwrap_or_else(|| "0.0.0.0".to_string());
                let protocol = get("protocol").filter(|p| p != "tcp").map_or(String::new(), |p| format!("/{p}"));
                format!("{address}:{published}{target}{protocol}")
            }
            short => short_port(&scalar(short)),
        };
        if is_range_or_ipv6(&spec) {
            c.note(format!("{place}.ports"), format!("{spec}: port ranges and IPv6 addresses are not carried over"));
            continue;
        }
        out.push(c.interpolation.string(&spec));
    }
    out
}

/// `8000-8010:8000-8010` or `[::1]:80:80`, judged outside `${...}`.
fn is_range_or_ipv6(spec: &str) -> bool {
    let mut plain = String::new();
    let mut rest = spec;
    while let Some(at) = rest.find("${") {
        plain.push_str(&rest[..at]);
        rest = rest[at..].find('}').map_or("", |end| &rest[at + end + 1..]);
    }
    plain.push_str(rest);
    plain.contains('-') || plain.contains('[')
}

fn short_port(spec: &str) -> String {
    let (ports, protocol) = spec.split_once('/').map_or((spec, ""), |(p, proto)| (p, proto));
    let protocol = if protocol.is_empty() || protocol == "tcp" { String::new() } else { format!("/{protocol}") };
    match ports.split(':').count() {
        // Only the container's port: Docker picks a host port.
        1 => format!("0.0.0.0::{ports}{protocol}"),
        2 => format!("0.0.0.0:{ports}{protocol}"),
        _ => format!("{ports}{protocol}"),
    }
}

/// Volumes, bind mounts, secrets and configs as `mounts`; tmpfs as `tmpfs`.
fn mounts(c: &mut Converter, place: &str, service: &Mapping, container: &mut Block) {
    let mut mounts = Vec::new();
    let mut tmpfs = Vec::new();
    for volume in service.get("volumes").and_then(Value::as_sequence).into_iter().flatten() {
        let (source, target, read_only, kind) = match volume {
            Value::Mapping(long) => {
                let get = |k: &str| long.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                let read_only = long.get("read_only").and_then(Value::as_bool) == Some(true);
                (get("source"), get("target"), read_only, get("type"))
            }
            short => {
                let text = scalar(short);
                let parts: Vec<&str> = text.split(':').collect();
                match parts.as_slice() {
                    [target] => (String::new(), target.to_string(), false, "volume".to_string()),
                    [source, target] => (source.to_string(), target.to_string(), false, String::new()),
                    [source, target, mode, ..] => {
                        (source.to_string(), target.to_string(), mode.split(',').any(|m| m == "ro"), String::new())
                    }
                    [] => continue,
                }
            }
        };
        let suffix = if read_only { ":ro" } else { "" };
        let is_path = source.starts_with('.') || source.starts_with('/') || source.starts_with('~');
        match kind.as_str() {
            "tmpfs" => tmpfs.push(c.interpolation.string(&target)),
            _ if source.is_empty() => c.note(
                format!("{place}.volumes"),
                format!("{target}: an anonymous volume; name it in `volumes:` to keep its data"),
            ),
            "bind" | "" if is_path || kind == "bind" => {
                let host = host_path(c, &source);
                mounts.push(Hcl::Template(format!("{host}:{}{suffix}", c.interpolation.template(&target))));
            }
            _ => {
                let volume = c.volumes.get(&source).cloned().unwrap_or_else(|| Hcl::Template(hcl::literal(&source)));
                let volume = match volume {
                    Hcl::Expr(e) => format!("${{{e}}}"),
                    Hcl::Template(t) => t,
                    other => other.render(),
                };
                mounts.push(Hcl::Template(format!("{volume}:{}{suffix}", c.interpolation.template(&target))));
            }
        }
    }
    for section in ["secrets", "configs"] {
        for item in service.get(section).and_then(Value::as_sequence).into_iter().flatten() {
            let (source, target) = match item {
                Value::Mapping(long) => {
                    let source = long.get("source").and_then(Value::as_str).unwrap_or_default().to_string();
                    (source.clone(), long.get("target").and_then(Value::as_str).map_or(source, str::to_string))
                }
                short => (scalar(short), scalar(short)),
            };
            let Some(file) = c.files.get(&source).cloned() else {
                c.note(format!("{place}.{section}"), format!("{source}: not read from a file; not carried over"));
                continue;
            };
            let target = if target.starts_with('/') {
                target
            } else if section == "secrets" {
                format!("/run/secrets/{target}")
            } else {
                format!("/{target}")
            };
            let host = host_path(c, &file);
            mounts.push(Hcl::Template(format!("{host}:{}:ro", hcl::literal(&target))));
        }
    }
    if let Some(extra) = service.get("tmpfs") {
        let extra: Vec<String> = match extra {
            Value::Sequence(items) => items.iter().map(scalar).collect(),
            other => vec![scalar(other)],
        };
        tmpfs.extend(extra.iter().map(|t| c.interpolation.string(t)));
    }
    if !mounts.is_empty() {
        container.set("mounts", Hcl::List(mounts));
    }
    if !tmpfs.is_empty() {
        container.set("tmpfs", Hcl::List(tmpfs));
    }
}

/// A host path of a bind mount, absolute: relative ones are from the compose
/// file's directory, which is the configuration's.
fn host_path(c: &mut Converter, source: &str) -> String {
    if source.starts_with('/') {
        c.interpolation.template(source)
    } else if let Some(home) = source.strip_prefix("~/") {
        format!("${{pathexpand(\"~/{}\")}}", c.interpolation.template(home))
    } else {
        let relative = source.trim_start_matches("./");
        let relative = if relative == "." { String::new() } else { format!("/{}", c.interpolation.template(relative)) };
        format!("${{abspath(path.module)}}{relative}")
    }
}

fn networks(c: &mut Converter, place: &str, name: &str, service: &Mapping, container: &mut Block) {
    if let Some(mode) = service.get("network_mode") {
        c.note(
            format!("{place}.network_mode"),
            format!("{}: not carried over; the container joins no network", scalar(mode)),
        );
        return;
    }
    let mut aliases = vec![Hcl::Template(hcl::literal(name))];
    let joined: Vec<String> = match service.get("networks") {
        None => vec!["default".to_string()],
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        Some(Value::Mapping(map)) => {
            for (network, settings) in map {
                for alias in settings.get("aliases").and_then(Value::as_sequence).into_iter().flatten() {
                    aliases.push(c.interpolation.string(&scalar(alias)));
                }
                if settings.get("ipv4_address").is_some() || settings.get("ipv6_address").is_some() {
                    c.note(format!("{place}.networks.{}", scalar(network)), "fixed addresses are not carried over");
                }
            }
            map.keys().map(scalar).collect()
        }
        Some(_) => Vec::new(),
    };
    let names =
        joined.iter().map(|n| c.networks.get(n).cloned().unwrap_or_else(|| Hcl::Template(hcl::literal(n)))).collect();
    container.set("networks", Hcl::List(names));
    container.set("network_aliases", Hcl::List(aliases));
}

/// Settings that carry over as they are.
fn simple(c: &mut Converter, service: &Mapping, container: &mut Block) {
    for (key, attribute) in [("restart", "restart"), ("user", "user"), ("working_dir", "working_dir")] {
        if let Some(value) = service.get(key) {
            container.set(attribute, c.interpolation.string(&scalar(value)));
        }
    }
    if service.get("read_only").and_then(Value::as_bool) == Some(true) {
        container.set("read_only", Hcl::Bool(true));
    }
    if let Some(labels) = service.get("labels") {
        let labels = string_map(c, labels);
        container.set("labels", labels);
    }
    for key in ["cap_add", "cap_drop"] {
        if let Some(items) = service.get(key).and_then(Value::as_sequence) {
            let items = items.iter().map(|i| c.interpolation.string(&scalar(i))).collect();
            container.set(if key == "cap_add" { "cap_add" } else { "cap_drop" }, Hcl::List(items));
        }
    }
    if let Some(logging) = service.get("logging") {
        if let Some(driver) = logging.get("driver").and_then(Value::as_str) {
            container.set("log_driver", c.interpolation.string(driver));
        }
        if let Some(options) = logging.get("options") {
            let options = string_map(c, options);
            container.set("log_options", options);
        }
    }
}

/// `test` as the exec form infra runs; durations in the one unit infra reads.
fn healthcheck(c: &mut Converter, place: &str, check: &Value) -> Option<Hcl> {
    if check.get("disable").and_then(Value::as_bool) == Some(true) {
        c.note(place, "disabled: no healthcheck written");
        return None;
    }
    let test: Vec<String> = match check.get("test") {
        Some(Value::String(shell)) => vec!["/bin/sh".into(), "-c".into(), shell.clone()],
        Some(Value::Sequence(items)) => {
            let words: Vec<String> = items.iter().map(scalar).collect();
            match words.split_first() {
                Some((first, rest)) if first == "CMD" => rest.to_vec(),
                Some((first, rest)) if first == "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
                Some((first, _)) if first == "NONE" => {
                    c.note(place, "NONE: no healthcheck written");
                    return None;
                }
                _ => words,
            }
        }
        _ => {
            c.note(place, "has no `test` (the image's own healthcheck): not carried over");
            return None;
        }
    };
    let mut fields = vec![("cmd".to_string(), Hcl::List(test.iter().map(|w| c.interpolation.string(w)).collect()))];
    for key in ["interval", "timeout", "start_period"] {
        if let Some(text) = check.get(key).map(scalar) {
            match duration(&text) {
                Some(d) => fields.push((key.to_string(), Hcl::Template(d))),
                None => c.note(format!("{place}.{key}"), format!("{text:?} is not a duration infra reads")),
            }
        }
    }
    if let Some(retries) = check.get("retries").and_then(Value::as_f64) {
        fields.push(("retries".to_string(), Hcl::Number(retries)));
    }
    Some(Hcl::Map(fields))
}

/// A compose duration (`1m30s`, `500ms`, `10s`) in one unit (`90s`, `500ms`).
fn duration(text: &str) -> Option<String> {
    let mut total_ms: u64 = 0;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        total_ms += number * factor;
        rest = &rest[unit_len..];
    }
    Some(if total_ms.is_multiple_of(1_000) { format!("{}s", total_ms / 1_000) } else { format!("{total_ms}ms") })
}

fn deploy(c: &mut Converter, place: &str, service: &Mapping, container: &mut Block) {
    let replicas = service.get("deploy").and_then(|d| d.get("replicas")).or_else(|| service.get("scale"));
    if let Some(replicas) = replicas.and_then(Value::as_f64) {
        container.set("replicas", Hcl::Number(replicas));
    }
    let limits = service.get("deploy").and_then(|d| d.get("resources")).and_then(|r| r.get("limits"));
    let memory = limits.and_then(|l| l.get("memory")).or_else(|| service.get("mem_limit"));
    if let Some(memory) = memory {
        container.set("memory", Hcl::Template(hcl::literal(scalar(memory).to_lowercase().trim_end_matches('b'))));
    }
    let cpus = limits.and_then(|l| l.get("cpus")).or_else(|| service.get("cpus"));
    if let Some(cpus) = cpus.and_then(|v| scalar(v).parse::<f64>().ok()) {
        container.set("cpus", Hcl::Number(cpus));
    }
    let Some(deploy) = service.get("deploy").and_then(Value::as_mapping) else { return };
    if let Some(condition) = deploy.get("restart_policy").and_then(|r| r.get("condition")).and_then(Value::as_str) {
        let restart = match condition {
            "any" => "always",
            "none" => "no",
            other => other,
        };
        container.set("restart", Hcl::Template(restart.to_string()));
    }
    for (key, _) in deploy {
        let key = key.as_str().unwrap_or_default();
        if !["replicas", "resources", "restart_policy"].contains(&key) {
            c.note(
                format!("{place}.deploy.{key}"),
                "not carried over (infra updates replicas by its own `update` block)",
            );
        }
    }
}

/// `depends_on`: a list, or a mapping with conditions. infra starts a
/// container once what it depends on is created, and creating a container
/// with a healthcheck waits until it is healthy: `service_healthy` holds.
fn depends_on(c: &mut Converter, place: &str, depends: &Value) -> Vec<Hcl> {
    let names: Vec<String> = match depends {
        Value::Sequence(items) => items.iter().map(scalar).collect(),
        Value::Mapping(map) => {
            for (name, settings) in map {
                if settings.get("condition").and_then(Value::as_str) == Some("service_completed_successfully") {
                    c.note(
                        format!("{place}.depends_on.{}", scalar(name)),
                        "service_completed_successfully: infra only orders the start",
                    );
                }
            }
            map.keys().map(scalar).collect()
        }
        _ => Vec::new(),
    };
    names.iter().map(|n| Hcl::Expr(format!("container.{}", hcl::name(n)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ports_are_spelled_as_infra_reads_them() {
        assert_eq!(duration("1m30s").as_deref(), Some("90s"));
        assert_eq!(duration("1500ms").as_deref(), Some("1500ms"));
        assert_eq!(duration("10x"), None);
        assert_eq!(short_port("80:80"), "0.0.0.0:80:80");
        assert_eq!(short_port("127.0.0.1:8080:80/udp"), "127.0.0.1:8080:80/udp");
        assert_eq!(short_port("3000"), "0.0.0.0::3000");
        assert!(!is_range_or_ipv6("127.0.0.1:${WEB_PORT:-8080}:8000"));
        assert!(is_range_or_ipv6("8000-8001:8000-8001"));
    }
}
