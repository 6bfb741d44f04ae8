//! The rule set as nftables text: one table, `inet infra`, replaced as a whole
//! in one transaction (`table`, `delete table`, then its definition, so `nft -f`
//! loads all of it or none). Other tables, Docker's among them, are left alone.
//!
//! A packet meets every base chain on its hook, and a drop in any of them is
//! final: so this table can refuse what Docker's own chains would accept.
//! Traffic that was port-forwarded (`ct status dnat`, which is how Docker
//! publishes a container's port) is judged by the *input* rules against the
//! port it was sent to, in the `published` chain: a published port obeys the
//! firewall like a port of the server itself.

use std::fmt::Write as _;

use infra_firewall::rules::{Chain, Family, Firewall, NamedSet, Peer, Ports, Protocol, Rule, Verdict};

pub const TABLE: &str = "infra";

/// Where a rule's port and destination are read from: the packet as it is,
/// or, for published ports, the connection as it was first addressed.
#[derive(Clone, Copy, PartialEq)]
enum View {
    Packet,
    Original,
}

/// The whole table. `origin` (the resource address) is written into every
/// rule's comment; `ssh_port` is kept open unless `keep_ssh = false`.
pub fn render(firewall: &Firewall, origin: &str, ssh_port: u16) -> String {
    let mut out = format!("table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    for set in &firewall.sets {
        out.push_str(&render_set(set));
    }
    let rules = |chain: Chain| firewall.rules.iter().filter(move |r| r.chain == chain);
    let mut input = stateful_start();
    input.push("iif \"lo\" accept".into());
    input.push("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept".into());
    if firewall.keep_ssh {
        input.push(format!("tcp dport {ssh_port} accept comment \"{origin}: keep_ssh (the port infra logs in on)\""));
    }
    input.extend(rules(Chain::Input).flat_map(|r| rule_lines(r, origin, View::Packet)));
    push_log(&mut input, firewall, firewall.input);
    out.push_str(&base_chain("input", firewall.input, &input));

    let mut forward = stateful_start();
    forward.push("ct status dnat jump published".into());
    if firewall.docker {
        forward.push(format!("iifname \"docker0\" accept comment \"{origin}: containers reach out (docker = true)\""));
        forward.push(format!("iifname \"br-*\" accept comment \"{origin}: containers reach out (docker = true)\""));
    }
    forward.extend(rules(Chain::Forward).flat_map(|r| rule_lines(r, origin, View::Packet)));
    push_log(&mut forward, firewall, firewall.forward);
    out.push_str(&base_chain("forward", firewall.forward, &forward));

    let mut published: Vec<String> = rules(Chain::Input).flat_map(|r| rule_lines(r, origin, View::Original)).collect();
    push_log(&mut published, firewall, firewall.input);
    published.push(firewall.input.word().to_string());
    out.push_str(&chain("published", None, &published));

    let output: Vec<String> = rules(Chain::Output).flat_map(|r| rule_lines(r, origin, View::Packet)).collect();
    out.push_str(&base_chain("output", firewall.output, &output));
    out.push_str("}\n");
    out
}

fn stateful_start() -> Vec<String> {
    vec!["ct state established,related accept".into(), "ct state invalid drop".into()]
}

fn push_log(lines: &mut Vec<String>, firewall: &Firewall, policy: Verdict) {
    if firewall.log_dropped && policy != Verdict::Accept {
        lines.push(format!("limit rate 10/minute log prefix \"{TABLE} drop: \""));
    }
}

fn base_chain(name: &str, policy: Verdict, lines: &[String]) -> String {
    let hook = format!("type filter hook {name} priority filter; policy {};", policy.word());
    chain(name, Some(&hook), lines)
}

fn chain(name: &str, header: Option<&str>, lines: &[String]) -> String {
    let mut out = format!("\tchain {name} {{\n");
    for line in header.into_iter().map(str::to_string).chain(lines.iter().cloned()) {
        let _ = writeln!(out, "\t\t{line}");
    }
    out.push_str("\t}\n");
    out
}

fn render_set(set: &NamedSet) -> String {
    let ty = match set.family {
        Family::V4 => "ipv4_addr",
        Family::V6 => "ipv6_addr",
    };
    let mut out = format!("\tset {} {{\n\t\ttype {ty}\n\t\tflags interval\n", set.name);
    if !set.elements.is_empty() {
        let elements: Vec<String> = set.elements.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
    }
    out.push_str("\t}\n");
    out
}

/// The nftables lines of one rule: one per address family it names (a rule
/// matches `ip` or `ip6` addresses, not both) and per named set (an anonymous
/// set cannot hold a named one).
fn rule_lines(rule: &Rule, origin: &str, view: View) -> Vec<String> {
    if rule.matches_nothing {
        return Vec::new();
    }
    if rule.from.is_empty() && rule.to.is_empty() {
        return vec![rule_line(rule, None, origin, view)];
    }
    let mut lines = Vec::new();
    for family in [Family::V4, Family::V6] {
        let (from, to) = (groups(&rule.from, family), groups(&rule.to, family));
        if from.as_ref().is_some_and(Vec::is_empty) || to.as_ref().is_some_and(Vec::is_empty) {
            continue;
        }
        let ip = if family == Family::V4 { "ip" } else { "ip6" };
        for source in from.unwrap_or_else(|| vec![String::new()]) {
            for destination in to.clone().unwrap_or_else(|| vec![String::new()]) {
                let mut addresses = Vec::new();
                if !source.is_empty() {
                    addresses.push(format!("{ip} saddr {source}"));
                }
                if !destination.is_empty() {
                    let original = if view == View::Original { "ct original " } else { "" };
                    addresses.push(format!("{original}{ip} daddr {destination}"));
                }
                lines.push(rule_line(rule, Some(addresses.join(" ")), origin, view));
            }
        }
    }
    lines
}

/// The address matches of one family: `None` when the rule names no peers
/// at all (anything goes), empty when it names only other-family ones.
fn groups(peers: &[Peer], family: Family) -> Option<Vec<String>> {
    if peers.is_empty() {
        return None;
    }
    let nets: Vec<String> = peers
        .iter()
        .filter_map(|p| match p {
            Peer::Net(net) if p.family() == family => Some(net.to_string()),
            _ => None,
        })
        .collect();
    let mut groups: Vec<String> = match nets.as_slice() {
        [] => Vec::new(),
        [one] => vec![one.clone()],
        many => vec![format!("{{ {} }}", many.join(", "))],
    };
    groups.extend(peers.iter().filter_map(|p| match p {
        Peer::Set { name, family: f } if *f == family => Some(format!("@{name}")),
        _ => None,
    }));
    Some(groups)
}

fn rule_line(rule: &Rule, addresses: Option<String>, origin: &str, view: View) -> String {
    let mut words: Vec<String> = Vec::new();
    if let Some(interface) = &rule.interface {
        let key = if rule.chain == Chain::Output { "oifname" } else { "iifname" };
        words.push(format!("{key} \"{interface}\""));
    }
    words.extend(addresses.filter(|a| !a.is_empty()));
    let protocol = match rule.protocol {
        Protocol::Tcp => Some("tcp"),
        Protocol::Udp => Some("udp"),
        Protocol::Icmp => Some("icmp"),
        Protocol::Icmpv6 => Some("ipv6-icmp"),
        Protocol::Any => None,
    };
    match (protocol, ports(&rule.ports)) {
        (Some(p), Some(ports)) if view == View::Packet => words.push(format!("{p} dport {ports}")),
        (Some(p), Some(ports)) => words.push(format!("meta l4proto {p} ct original proto-dst {ports}")),
        (Some(p), None) => words.push(format!("meta l4proto {p}")),
        (None, _) => {}
    }
    if !rule.states.is_empty() {
        words.push(format!("ct state {}", rule.states.join(",")));
    }
    if let Some(rate) = &rule.rate {
        words.push(format!("limit rate {}/{}", rate.count, rate.per));
    }
    if rule.log {
        words.push(format!("log prefix \"{TABLE} {}: \"", rule.name));
    }
    words.push(rule.action.word().to_string());
    let note = rule.comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
    words.push(format!("comment \"{origin}: {}{note}\"", rule.name));
    words.join(" ")
}

fn ports(ports: &[Ports]) -> Option<String> {
    match ports {
        [] => None,
        [one] => Some(one.to_string()),
        many => Some(format!("{{ {} }}", many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))),
    }
}
