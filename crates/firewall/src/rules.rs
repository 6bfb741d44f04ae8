//! The firewall as data: policies, named address sets and rules, read from a
//! `firewall` resource's value and checked. Every problem is reported with the
//! path of the attribute it is about (`rule[1].from[0]`), so the diagnostic
//! points at the line; nothing reaches nftables that was not parsed here, so
//! no user text can change the meaning of the generated rule set.

use std::fmt;

use infra_core::{ProviderError, Value};
use ipnet::IpNet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    Input,
    Forward,
    Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
}

/// A port or an inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ports(pub u16, pub u16);

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 { write!(f, "{}", self.0) } else { write!(f, "{}-{}", self.0, self.1) }
    }
}

/// A source or destination: a network, or a named set of them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Net(IpNet),
    Set { name: String, family: Family },
}

impl Peer {
    pub fn family(&self) -> Family {
        match self {
            Peer::Net(net) => Family::of(net),
            Peer::Set { family, .. } => *family,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamedSet {
    pub name: String,
    pub family: Family,
    pub elements: Vec<IpNet>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    pub count: u32,
    pub per: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    /// `port = []`: the rule matches nothing (so a list variable may be empty).
    pub matches_nothing: bool,
    pub chain: Chain,
    pub action: Verdict,
    pub protocol: Protocol,
    pub ports: Vec<Ports>,
    pub from: Vec<Peer>,
    pub to: Vec<Peer>,
    pub interface: Option<String>,
    pub states: Vec<&'static str>,
    pub rate: Option<Rate>,
    pub log: bool,
    pub comment: Option<String>,
}

impl Rule {
    /// What a packet must be to match, without the verdict: two rules that
    /// match the same packets and decide differently conflict.
    fn matcher(&self) -> impl PartialEq + '_ {
        let mut ports = self.ports.clone();
        ports.sort();
        let sorted = |peers: &[Peer]| {
            let mut peers = peers.to_vec();
            peers.sort();
            peers
        };
        (self.chain, self.protocol, ports, sorted(&self.from), sorted(&self.to), &self.interface, &self.states)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Firewall {
    pub input: Verdict,
    pub forward: Verdict,
    pub output: Verdict,
    pub keep_ssh: bool,
    pub docker: bool,
    pub log_dropped: bool,
    pub sets: Vec<NamedSet>,
    pub rules: Vec<Rule>,
}

/// Collects problems as it reads, so one run reports all of them.
#[derive(Default)]
struct Reader {
    errors: Vec<ProviderError>,
}

impl Reader {
    fn error(&mut self, path: &str, message: String) {
        self.errors.push(ProviderError::invalid(path, message));
    }

    fn word<T: Copy>(&mut self, value: &Value, path: &str, default: T, choices: &[(&str, T)]) -> T {
        let Some(text) = value.peel().as_str() else { return default };
        match choices.iter().find(|(word, _)| *word == text) {
            Some((_, choice)) => *choice,
            None => {
                let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                self.error(path, format!("`{path}` is {text:?}; it must be one of {}", words.join(", ")));
                default
            }
        }
    }

    fn policy(&mut self, value: &Value, key: &str, default: Verdict) -> Verdict {
        let choices = [("accept", Verdict::Accept), ("drop", Verdict::Drop)];
        self.word(value.get(key).unwrap_or(&Value::Null), key, default, &choices)
    }

    fn sets(&mut self, value: &Value) -> Vec<NamedSet> {
        let mut sets = Vec::new();
        for (i, set) in list(value, "set").iter().enumerate() {
            let path = format!("set[{i}]");
            let name = set.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            if !is_identifier(&name) {
                self.error(&path, format!("set name {name:?} must be letters, digits and _ (starting with a letter)"));
            }
            let mut elements = Vec::new();
            let written = list(set, "elements");
            for (j, element) in written.iter().enumerate() {
                if let Some(net) = self.net(element, &format!("{path}.elements[{j}]")) {
                    elements.push(net);
                }
            }
            let families: Vec<Family> = elements.iter().map(Family::of).collect();
            let declared = set.get("type").map(|t| {
                self.word(t, &format!("{path}.type"), Family::V4, &[("ipv4", Family::V4), ("ipv6", Family::V6)])
            });
            let family = match (declared, families.first()) {
                (Some(declared), _) => declared,
                (None, Some(first)) => *first,
                (None, None) if written.is_empty() => {
                    self.error(&path, format!("set {name:?} is empty: give `type = \"ipv4\"` or `\"ipv6\"`"));
                    Family::V4
                }
                (None, None) => Family::V4,
            };
            if let Some(j) = families.iter().position(|f| *f != family) {
                self.error(
                    &format!("{path}.elements[{j}]"),
                    format!("set {name:?} holds {} addresses; this one is not", family_name(family)),
                );
            }
            if sets.iter().any(|s: &NamedSet| s.name == name) {
                self.error(&path, format!("two sets are named {name:?}"));
            }
            sets.push(NamedSet { name, family, elements });
        }
        sets
    }

    fn net(&mut self, value: &Value, path: &str) -> Option<IpNet> {
        let text = value.peel().as_str()?;
        let parsed =
            text.parse::<IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from)).map(|net| net.trunc());
        match parsed {
            Ok(net) => Some(net),
            Err(_) => {
                self.error(path, format!("{text:?} is not an IP address or CIDR network (e.g. 198.51.100.0/24)"));
                None
            }
        }
    }

    fn peers(&mut self, rule: &Value, key: &str, path: &str, sets: &[NamedSet]) -> Vec<Peer> {
        let mut peers = Vec::new();
        for (j, peer) in string_or_list(rule.get(key)).iter().enumerate() {
            let at = format!("{path}.{key}[{j}]");
            match peer.peel().as_str().and_then(|t| t.strip_prefix('@')) {
                Some(name) => match sets.iter().find(|s| s.name == name) {
                    Some(set) => peers.push(Peer::Set { name: set.name.clone(), family: set.family }),
                    None => {
                        let known: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
                        let hint = if known.is_empty() {
                            "no sets are declared".to_string()
                        } else {
                            format!("declared: {}", known.join(", "))
                        };
                        self.error(&at, format!("`@{name}` names no `set` of this firewall ({hint})"));
                    }
                },
                None => peers.extend(self.net(peer, &at).map(Peer::Net)),
            }
        }
        peers
    }

    fn ports(&mut self, rule: &Value, path: &str) -> Vec<Ports> {
        let mut ports = Vec::new();
        for (j, port) in string_or_list(rule.get("port")).iter().enumerate() {
            let at = format!("{path}.port[{j}]");
            let text = match port.peel() {
                Value::Number(n) => number_text(*n),
                Value::String(s) => s.clone(),
                _ => continue,
            };
            let (low, high) = text.split_once('-').unwrap_or((&text, &text));
            match (parse_port(low), parse_port(high)) {
                (Some(low), Some(high)) if low <= high => ports.push(Ports(low, high)),
                (Some(_), Some(_)) => self.error(&at, format!("port range {text} runs backwards")),
                _ => self.error(&at, format!("port {text} is not a port from 1 to 65535 or a range like 8000-8100")),
            }
        }
        ports
    }

    fn rule(&mut self, i: usize, rule: &Value, sets: &[NamedSet]) -> Rule {
        let path = format!("rule[{i}]");
        let name = rule.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if !is_label(&name) {
            self.error(&path, format!("rule name {name:?} must be letters, digits, `_`, `-` and `.`"));
        }
        let field = |k: &str| rule.get(k).unwrap_or(&Value::Null);
        let chains = [("input", Chain::Input), ("forward", Chain::Forward), ("output", Chain::Output)];
        let chain = self.word(field("chain"), &format!("{path}.chain"), Chain::Input, &chains);
        let actions = [("accept", Verdict::Accept), ("drop", Verdict::Drop), ("reject", Verdict::Reject)];
        let action = self.word(field("action"), &format!("{path}.action"), Verdict::Accept, &actions);
        let ports = self.ports(rule, &path);
        let protocols = [
            ("tcp", Protocol::Tcp),
            ("udp", Protocol::Udp),
            ("icmp", Protocol::Icmp),
            ("icmpv6", Protocol::Icmpv6),
            ("any", Protocol::Any),
        ];
        let default_protocol = if ports.is_empty() { Protocol::Any } else { Protocol::Tcp };
        let protocol = self.word(field("protocol"), &format!("{path}.protocol"), default_protocol, &protocols);
        if !ports.is_empty() && !matches!(protocol, Protocol::Tcp | Protocol::Udp) {
            self.error(&format!("{path}.port"), "ports need `protocol = \"tcp\"` or `\"udp\"`".to_string());
        }
        let from = self.peers(rule, "from", &path, sets);
        let to = self.peers(rule, "to", &path, sets);
        let interface = field("interface").peel().as_str().map(str::to_string);
        if let Some(name) = &interface
            && !is_interface(name)
        {
            self.error(&format!("{path}.interface"), format!("{name:?} is not an interface name (e.g. eth0, br-*)"));
        }
        let states = self.states(rule, &path);
        let rate = field("rate").peel().as_str().and_then(|r| self.rate(r, &format!("{path}.rate")));
        let comment = field("comment").peel().as_str().map(str::to_string);
        if let Some(text) = &comment
            && (text.len() > 100 || text.chars().any(|c| c == '"' || c == '\\' || c.is_control()))
        {
            self.error(
                &format!("{path}.comment"),
                "a comment is at most 100 characters, without quotes or backslashes".into(),
            );
        }
        let matches_nothing = field("port").peel().as_list().is_some_and(<[Value]>::is_empty);
        let rule = Rule {
            name,
            matches_nothing,
            chain,
            action,
            protocol,
            ports,
            from,
            to,
            interface,
            states,
            rate,
            log: field("log").peel().as_bool().unwrap_or(false),
            comment,
        };
        self.check_families(&rule, &path);
        rule
    }

    fn states(&mut self, rule: &Value, path: &str) -> Vec<&'static str> {
        const STATES: [&str; 5] = ["new", "established", "related", "invalid", "untracked"];
        let mut states = Vec::new();
        for (j, state) in string_or_list(rule.get("state")).iter().enumerate() {
            let text = state.peel().as_str().unwrap_or_default();
            match STATES.iter().find(|s| **s == text) {
                Some(s) if !states.contains(s) => states.push(*s),
                Some(_) => {}
                None => self.error(
                    &format!("{path}.state[{j}]"),
                    format!("connection state {text:?} is not one of {}", STATES.join(", ")),
                ),
            }
        }
        states.sort_by_key(|s| STATES.iter().position(|k| k == s));
        states
    }

    fn rate(&mut self, text: &str, path: &str) -> Option<Rate> {
        let units = [("second", "second"), ("minute", "minute"), ("hour", "hour"), ("day", "day")];
        let parsed = text.split_once('/').and_then(|(count, unit)| {
            let count = count.trim().parse::<u32>().ok().filter(|c| *c > 0)?;
            let per = units.iter().find(|(w, _)| *w == unit.trim())?.1;
            Some(Rate { count, per })
        });
        if parsed.is_none() {
            self.error(path, format!("rate {text:?} must read like \"10/minute\" (per second, minute, hour or day)"));
        }
        parsed
    }

    /// A rule whose sources and destinations share no address family, or whose
    /// ICMP flavour contradicts them, can never match: almost surely a mistake.
    fn check_families(&mut self, rule: &Rule, path: &str) {
        let families = |peers: &[Peer]| {
            let mut f: Vec<Family> = peers.iter().map(Peer::family).collect();
            f.sort();
            f.dedup();
            f
        };
        let (from, to) = (families(&rule.from), families(&rule.to));
        if !from.is_empty() && !to.is_empty() && !from.iter().any(|f| to.contains(f)) {
            self.error(
                &format!("{path}.to"),
                format!("rule {:?} can never match: `from` and `to` are of different IP versions", rule.name),
            );
        }
        let needs = match rule.protocol {
            Protocol::Icmp => Some(Family::V4),
            Protocol::Icmpv6 => Some(Family::V6),
            _ => None,
        };
        if let Some(family) = needs
            && [&from, &to].iter().any(|f| !f.is_empty() && !f.contains(&family))
        {
            self.error(
                &format!("{path}.protocol"),
                format!(
                    "rule {:?} can never match: its protocol is for {} addresses only",
                    rule.name,
                    family_name(family)
                ),
            );
        }
    }

    fn conflicts(&mut self, rules: &[Rule]) {
        for (i, rule) in rules.iter().enumerate() {
            let earlier = rules[..i].iter().find(|r| {
                r.matcher() == rule.matcher() && r.action != rule.action && !r.matches_nothing && !rule.matches_nothing
            });
            if let Some(earlier) = earlier
                && rule.rate.is_none()
                && earlier.rate.is_none()
            {
                self.error(
                    &format!("rule[{i}]"),
                    format!(
                        "rules {:?} and {:?} match the same traffic but one says {} and the other {}; keep one",
                        earlier.name,
                        rule.name,
                        earlier.action.word(),
                        rule.action.word()
                    ),
                );
            }
        }
    }
}

/// Reads and checks a firewall; all problems at once.
pub fn read(value: &Value) -> Result<Firewall, Vec<ProviderError>> {
    let (value, _) = value.unmark();
    let mut reader = Reader::default();
    let sets = reader.sets(&value);
    let rules: Vec<Rule> = list(&value, "rule").iter().enumerate().map(|(i, r)| reader.rule(i, r, &sets)).collect();
    reader.conflicts(&rules);
    let flag = |k: &str, default: bool| value.get(k).and_then(Value::as_bool).unwrap_or(default);
    let firewall = Firewall {
        input: reader.policy(&value, "input_policy", Verdict::Drop),
        forward: reader.policy(&value, "forward_policy", Verdict::Drop),
        output: reader.policy(&value, "output_policy", Verdict::Accept),
        keep_ssh: flag("keep_ssh", true),
        docker: flag("docker", false),
        log_dropped: flag("log_dropped", false),
        sets,
        rules,
    };
    if reader.errors.is_empty() { Ok(firewall) } else { Err(reader.errors) }
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value.get(key).and_then(Value::as_list).unwrap_or_default()
}

/// `port = 22` and `port = [22, 80]` alike.
fn string_or_list(value: Option<&Value>) -> Vec<Value> {
    match value.map(Value::peel) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::List(items)) => items.clone(),
        Some(one) => vec![one.clone()],
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn is_identifier(name: &str) -> bool {
    name.len() <= 32
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_label(name: &str) -> bool {
    !name.is_empty() && name.len() <= 48 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// Linux interface names: at most 15 bytes; `*` at the end matches a prefix.
fn is_interface(name: &str) -> bool {
    let body = name.strip_suffix('*').unwrap_or(name);
    !body.is_empty() && name.len() <= 15 && body.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A whole number as the user wrote it (`22`, not `22.0`).
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(fields: Vec<(&'static str, Value)>) -> Value {
        Value::object(fields)
    }

    fn firewall(sets: Vec<Value>, rules: Vec<Value>) -> Value {
        Value::object([("set", Value::List(sets)), ("rule", Value::List(rules))])
    }

    fn problems(value: &Value) -> Vec<(String, String)> {
        read(value).expect_err("refused").into_iter().map(|e| (e.attribute.unwrap_or_default(), e.message)).collect()
    }

    #[test]
    fn policies_default_to_drop_in_accept_out_and_ssh_kept() {
        let read = read(&firewall(Vec::new(), Vec::new())).expect("valid");
        assert_eq!((read.input, read.forward, read.output), (Verdict::Drop, Verdict::Drop, Verdict::Accept));
        assert!(read.keep_ssh && read.rules.is_empty());
    }

    #[test]
    fn a_rule_reads_ports_networks_and_sets_into_typed_data() {
        let admins = Value::object([
            ("name", Value::string("admins")),
            ("elements", Value::List(vec![Value::string("198.51.100.7"), Value::string("203.0.113.0/24")])),
        ]);
        let web = rule(vec![
            ("name", Value::string("web")),
            ("port", Value::List(vec![Value::Number(443.0), Value::string("8000-8100")])),
            ("from", Value::List(vec![Value::string("@admins"), Value::string("10.1.2.3/8")])),
        ]);
        let read = read(&firewall(vec![admins], vec![web])).expect("valid");
        let rule = &read.rules[0];
        assert_eq!((rule.chain, rule.action, rule.protocol), (Chain::Input, Verdict::Accept, Protocol::Tcp));
        assert_eq!(rule.ports, [Ports(443, 443), Ports(8000, 8100)]);
        let expected_net: IpNet = "10.0.0.0/8".parse().expect("a network");
        assert_eq!(rule.from, [Peer::Set { name: "admins".into(), family: Family::V4 }, Peer::Net(expected_net)]);
        assert_eq!(read.sets[0].elements.len(), 2);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_attribute_path() {
        let bad = rule(vec![
            ("name", Value::string("bad")),
            ("port", Value::List(vec![Value::Number(22.0), Value::string("90-80"), Value::Number(70000.0)])),
            ("from", Value::List(vec![Value::string("@nobody"), Value::string("not-an-address")])),
            ("action", Value::string("allow")),
        ]);
        let found = problems(&firewall(Vec::new(), vec![bad]));
        let paths: Vec<&str> = found.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            ["rule[0].action", "rule[0].port[1]", "rule[0].port[2]", "rule[0].from[0]", "rule[0].from[1]"]
        );
        assert!(found[1].1.contains("runs backwards"), "{found:?}");
        assert!(found[3].1.contains("names no `set`"), "{found:?}");
    }

    #[test]
    fn two_rules_for_the_same_traffic_with_opposite_verdicts_conflict() {
        let ssh = |name: &str, action: &str| {
            rule(vec![("name", Value::string(name)), ("port", Value::Number(22.0)), ("action", Value::string(action))])
        };
        let found = problems(&firewall(Vec::new(), vec![ssh("open", "accept"), ssh("shut", "drop")]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "rule[1]");
        assert!(found[0].1.contains("\"open\" and \"shut\" match the same traffic"), "{found:?}");
    }

    #[test]
    fn a_set_mixing_address_families_is_refused() {
        let mixed = Value::object([
            ("name", Value::string("mixed")),
            ("elements", Value::List(vec![Value::string("192.0.2.1"), Value::string("2001:db8::1")])),
        ]);
        let found = problems(&firewall(vec![mixed], Vec::new()));
        assert_eq!(
            found,
            [("set[0].elements[1]".to_string(), "set \"mixed\" holds IPv4 addresses; this one is not".into())]
        );
    }
}
