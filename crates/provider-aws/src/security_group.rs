//! `security_group` (also offered as `firewall`): the same blocks as a
//! server's firewall (`rule "ssh" { port = 22 }`, named sets, policies),
//! enforced by EC2 as a security group. A security group only allows, so what
//! it cannot say (a drop rule, rate limits, logging, interfaces) is refused
//! with the rule's path rather than quietly widened or narrowed.
//!
//! The rules are compared as AWS holds them, one permission per line
//! (`in tcp 22 from 0.0.0.0/0`): a rule added by hand shows in the plan as an
//! added line and apply revokes it.

use std::collections::BTreeSet;
use std::fmt;

use crate::client::Clients;
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, ResourceType};
use infra_core::{AttributeSchema, OperationContext, ProviderError, Refined, Schema, Type, Value};
use infra_firewall::rules::{self, Chain, Firewall, Peer, Protocol, Verdict};
use ipnet::IpNet;

use crate::client::aws_error;
use crate::kind::{
    Kind, Observed, Query, delete_retrying, made_id, merged, required_text, retry_not_found, update_tags, visible,
    with_computed,
};
use crate::tags;

/// The port infra's SSH logins use on a cloud server.
const SSH_PORT: i32 = 22;

/// One permission as EC2 stores it: a direction, a protocol, a port range and
/// one peer. Ordered and printed as the plan shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    outbound: bool,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, or `-1` for every protocol.
    protocol: String,
    ports: Option<(i32, i32)>,
    peer: String,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = if self.outbound { "out" } else { "in" };
        let protocol = if self.protocol == "-1" { "all" } else { &self.protocol };
        write!(f, "{direction} {protocol}")?;
        match self.ports {
            Some((a, b)) if a == b => write!(f, " {a}")?,
            Some((a, b)) => write!(f, " {a}-{b}")?,
            None => {}
        }
        write!(f, " {} {}", if self.outbound { "to" } else { "from" }, self.peer)
    }
}

impl Permission {
    fn parse(line: &str) -> Option<Permission> {
        let words: Vec<&str> = line.split(' ').collect();
        let (direction, protocol, rest) = (words.first()?, words.get(1)?, &words[2..]);
        let (ports, peer) = match rest {
            [range, _, peer] => {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                (Some((a.parse().ok()?, b.parse().ok()?)), *peer)
            }
            [_, peer] => (None, *peer),
            _ => return None,
        };
        Some(Permission {
            outbound: *direction == "out",
            protocol: if *protocol == "all" { "-1".into() } else { protocol.to_string() },
            ports,
            peer: peer.to_string(),
        })
    }

    fn to_aws(&self) -> IpPermission {
        let mut p = IpPermission::builder().ip_protocol(&self.protocol);
        if let Some((from, to)) = self.ports {
            p = p.from_port(from).to_port(to);
        }
        match self.peer.parse::<IpNet>() {
            Ok(IpNet::V6(_)) => p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&self.peer).build()),
            _ => p.ip_ranges(IpRange::builder().cidr_ip(&self.peer).build()),
        }
        .build()
    }
}

/// What EC2 reports, one permission per peer.
fn from_aws(outbound: bool, permissions: &[IpPermission]) -> Vec<Permission> {
    let mut out = Vec::new();
    for p in permissions {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let ports = match (p.from_port(), p.to_port()) {
            (Some(a), Some(b)) if protocol != "-1" && a >= 0 => Some((a, b)),
            _ => None,
        };
        let peers = p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
            .chain(p.user_id_group_pairs().iter().filter_map(|g| g.group_id()));
        for peer in peers {
            out.push(Permission { outbound, protocol: protocol.clone(), ports, peer: peer.to_string() });
        }
    }
    out
}

/// The permissions a firewall means, or the paths of what a security group cannot say.
pub fn permissions(firewall: &Firewall) -> Result<BTreeSet<Permission>, Vec<ProviderError>> {
    let mut errors = Vec::new();
    let mut out = BTreeSet::new();
    if firewall.input != Verdict::Drop {
        errors.push(ProviderError::invalid(
            "input_policy",
            "a security group drops whatever no rule allows: input_policy must be \"drop\"",
        ));
    }
    let everywhere = || vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
    if firewall.keep_ssh {
        for peer in everywhere() {
            out.insert(Permission { outbound: false, protocol: "tcp".into(), ports: Some((SSH_PORT, SSH_PORT)), peer });
        }
    }
    if firewall.output == Verdict::Accept {
        out.insert(Permission { outbound: true, protocol: "-1".into(), ports: None, peer: "0.0.0.0/0".into() });
    }
    for (i, rule) in firewall.rules.iter().enumerate() {
        let refuse = |errors: &mut Vec<ProviderError>, attribute: &str, what: &str| {
            errors.push(ProviderError::invalid(
                &format!("rule[{i}].{attribute}"),
                format!("rule \"{}\": a security group cannot {what}", rule.name),
            ));
        };
        let outbound = match rule.chain {
            Chain::Input => false,
            Chain::Output => true,
            Chain::Forward => {
                refuse(&mut errors, "chain", "filter forwarded traffic; use input or output rules");
                continue;
            }
        };
        if rule.action != Verdict::Accept {
            refuse(&mut errors, "action", "drop or reject: it only allows, and drops what no rule allows");
        }
        if rule.interface.is_some() {
            refuse(&mut errors, "interface", "match an interface");
        }
        if !rule.states.is_empty() {
            refuse(&mut errors, "state", "match connection states (it is stateful: replies are always let through)");
        }
        if rule.rate.is_some() {
            refuse(&mut errors, "rate", "limit a rate");
        }
        if rule.log {
            refuse(&mut errors, "log", "log what a rule matches");
        }
        let (peers, other) = if outbound { (&rule.to, &rule.from) } else { (&rule.from, &rule.to) };
        if !other.is_empty() {
            let (attribute, side) = if outbound { ("from", "source") } else { ("to", "destination") };
            refuse(
                &mut errors,
                attribute,
                &format!("match the {side} of {} traffic", if outbound { "outgoing" } else { "incoming" }),
            );
        }
        if rule.matches_nothing {
            continue;
        }
        let peers = expand(peers, firewall).unwrap_or_else(everywhere);
        let protocol = match rule.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::Any => "-1",
        };
        let ranges: Vec<Option<(i32, i32)>> = match (rule.protocol, rule.ports.as_slice()) {
            (Protocol::Tcp | Protocol::Udp, []) => vec![Some((0, 65535))],
            (Protocol::Tcp | Protocol::Udp, ports) => {
                ports.iter().map(|p| Some((i32::from(p.0), i32::from(p.1)))).collect()
            }
            _ => vec![None],
        };
        for ports in ranges {
            for peer in &peers {
                out.insert(Permission { outbound, protocol: protocol.into(), ports, peer: peer.clone() });
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// The networks of a rule's peers, sets opened up; `None` for no peers (anywhere).
fn expand(peers: &[Peer], firewall: &Firewall) -> Option<Vec<String>> {
    if peers.is_empty() {
        return None;
    }
    let mut nets = Vec::new();
    for peer in peers {
        match peer {
            Peer::Net(net) => nets.push(net.trunc().to_string()),
            Peer::Set { name, .. } => {
                let set = firewall.sets.iter().find(|s| &s.name == name);
                nets.extend(set.into_iter().flat_map(|s| s.elements.iter().map(|n| n.trunc().to_string())));
            }
        }
    }
    Some(nets)
}

fn lines(permissions: &BTreeSet<Permission>) -> Value {
    Value::List(permissions.iter().map(|p| Value::string(p.to_string())).collect())
}

fn parsed(value: &Value) -> BTreeSet<Permission> {
    value.strings("permissions").iter().filter_map(|l| Permission::parse(l)).collect()
}

pub struct SecurityGroup;

#[async_trait]
impl Kind for SecurityGroup {
    fn schema(&self) -> Schema {
        infra_firewall::schema(
            Schema::new("A firewall enforced by EC2: a security group, written like a server's firewall.")
                .attribute("vpc", AttributeSchema::required(Type::String).force_new().describe("the VPC's id"))
                .attribute(
                    "name",
                    AttributeSchema::optional_computed(Type::String)
                        .force_new()
                        .describe("default: the address and the state's lineage"),
                )
                .attribute(
                    "description",
                    AttributeSchema::optional(Type::String).default(Value::string("managed by infra")).force_new(),
                ),
        )
        .attribute("tags", tags::attribute())
        .attribute(
            "permissions",
            AttributeSchema::computed(Type::list(Type::String))
                .describe("the rules as EC2 holds them, one line each (`in tcp 22 from 0.0.0.0/0`)"),
        )
        .attribute("id", AttributeSchema::computed(Type::String))
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        match rules::read(config) {
            Ok(firewall) => permissions(&firewall).err().unwrap_or_default(),
            Err(errors) => errors,
        }
    }

    /// The permissions are known at plan time whenever the rules are.
    fn plan(&self, _prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        let (config, _) = proposed.unmark();
        if !config.get("rule").is_none_or(Value::is_wholly_known)
            || !config.get("set").is_none_or(Value::is_wholly_known)
        {
            return Ok(Refined::new(merged(&proposed, [("permissions", Value::Unknown)])));
        }
        let firewall = rules::read(&config).map_err(|mut e| e.remove(0))?;
        let wanted = permissions(&firewall).map_err(|mut e| e.remove(0))?;
        Ok(Refined::new(merged(&proposed, [("permissions", lines(&wanted))])))
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let groups = ec2
            .describe_security_groups()
            .set_filters(Some(query.filters("group-id")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing security groups", e))?;
        Ok(groups
            .into_iter()
            .map(|g| {
                let held: BTreeSet<Permission> = from_aws(false, g.ip_permissions())
                    .into_iter()
                    .chain(from_aws(true, g.ip_permissions_egress()))
                    .collect();
                Observed::tagged(
                    g.group_id().unwrap_or_default(),
                    g.tags(),
                    [
                        ("vpc", Value::string(g.vpc_id().unwrap_or_default())),
                        ("name", Value::string(g.group_name().unwrap_or_default())),
                        ("permissions", lines(&held)),
                    ],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let vpc = required_text(planned, "vpc")?;
        let name = planned.non_empty_text("name").map_or_else(|| default_name(ctx), str::to_string);
        let created = retry_not_found(|| {
            ec2.create_security_group()
                .vpc_id(vpc)
                .group_name(&name)
                .description(planned.non_empty_text("description").unwrap_or("managed by infra"))
                .tag_specifications(tags::spec(ResourceType::SecurityGroup, ctx, planned))
                .send()
        })
        .await
        .map_err(|e| aws_error(&format!("creating security group {name} in {vpc}"), e))?;
        let id = made_id(created.group_id(), "security group")?;
        // EC2 gives a new group an allow-all egress rule; converge from what it holds.
        let seen = visible(self, aws, &id, "security group").await?;
        converge(ec2, &id, &parsed(&seen.value), &parsed(planned)).await?;
        Ok(merged(planned, [("id", Value::string(id)), ("name", Value::string(name))]))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        update_tags(ec2, prior, planned).await?;
        converge(ec2, &prior.recorded_id("AWS")?, &parsed(prior), &parsed(planned)).await?;
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("security group {id}"), || ec2.delete_security_group().group_id(&id).send()).await
    }
}

/// A group name unique to this state and address.
fn default_name(ctx: &OperationContext) -> String {
    let lineage: String = ctx.lineage.chars().take(8).collect();
    format!("{}-{lineage}", ctx.address)
}

/// Revokes what should not be there, then authorizes what is missing.
async fn converge(
    ec2: &Client,
    id: &str,
    held: &BTreeSet<Permission>,
    wanted: &BTreeSet<Permission>,
) -> Result<(), ProviderError> {
    let (revoke, authorize): (Vec<&Permission>, Vec<&Permission>) =
        (held.difference(wanted).collect(), wanted.difference(held).collect());
    let aws = |ps: &[&Permission], outbound: bool| -> Option<Vec<IpPermission>> {
        let list: Vec<IpPermission> = ps.iter().filter(|p| p.outbound == outbound).map(|p| p.to_aws()).collect();
        (!list.is_empty()).then_some(list)
    };
    let failed = |what: &str| format!("{what} rules of security group {id}");
    if let Some(list) = aws(&revoke, false) {
        ec2.revoke_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(list))
            .send()
            .await
            .map_err(|e| aws_error(&failed("revoking inbound"), e))?;
    }
    if let Some(list) = aws(&revoke, true) {
        ec2.revoke_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(list))
            .send()
            .await
            .map_err(|e| aws_error(&failed("revoking outbound"), e))?;
    }
    if let Some(list) = aws(&authorize, false) {
        ec2.authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(list))
            .send()
            .await
            .map_err(|e| aws_error(&failed("authorizing inbound"), e))?;
    }
    if let Some(list) = aws(&authorize, true) {
        ec2.authorize_security_group_egress()
            .group_id(id)
            .set_ip_permissions(Some(list))
            .send()
            .await
            .map_err(|e| aws_error(&failed("authorizing outbound"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firewall(json: serde_json::Value) -> Value {
        Value::from_json(&json)
    }

    fn lines_of(config: serde_json::Value) -> Vec<String> {
        let fw = rules::read(&firewall(config)).expect("a valid firewall");
        permissions(&fw).expect("expressible").iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_firewall_becomes_one_permission_per_port_and_peer() {
        let got = lines_of(serde_json::json!({
            "set": [{"name": "office", "elements": ["198.51.100.0/24", "203.0.113.7"]}],
            "rule": [
                {"name": "web", "port": [80, 443]},
                {"name": "db", "port": 5432, "from": ["@office"]},
                {"name": "dns", "protocol": "udp", "port": "53"},
                {"name": "ping", "protocol": "icmp", "from": ["10.0.0.0/8"]},
            ],
        }));
        assert_eq!(
            got,
            [
                "in icmp from 10.0.0.0/8",
                "in tcp 22 from 0.0.0.0/0",
                "in tcp 22 from ::/0",
                "in tcp 80 from 0.0.0.0/0",
                "in tcp 80 from ::/0",
                "in tcp 443 from 0.0.0.0/0",
                "in tcp 443 from ::/0",
                "in tcp 5432 from 198.51.100.0/24",
                "in tcp 5432 from 203.0.113.7/32",
                "in udp 53 from 0.0.0.0/0",
                "in udp 53 from ::/0",
                "out all to 0.0.0.0/0",
            ]
        );
        for line in &got {
            assert_eq!(Permission::parse(line).map(|p| p.to_string()).as_deref(), Some(line.as_str()), "round trip");
        }
    }

    #[test]
    fn ssh_can_be_narrowed_and_outbound_traffic_closed() {
        let got = lines_of(serde_json::json!({
            "keep_ssh": false,
            "output_policy": "drop",
            "rule": [
                {"name": "ssh", "port": 22, "from": ["198.51.100.0/24"]},
                {"name": "https-out", "chain": "output", "port": 443, "to": ["0.0.0.0/0"]},
            ],
        }));
        assert_eq!(got, ["in tcp 22 from 198.51.100.0/24", "out tcp 443 to 0.0.0.0/0"]);
    }

    #[test]
    fn what_a_security_group_cannot_say_is_refused_with_the_rules_path() {
        let fw = rules::read(&firewall(serde_json::json!({
            "rule": [
                {"name": "ok", "port": 80},
                {"name": "block", "port": 25, "action": "drop"},
                {"name": "slow", "port": 22, "rate": "10/minute"},
                {"name": "routed", "chain": "forward", "port": 8080},
            ],
        })))
        .expect("valid for a server");
        let errors = permissions(&fw).expect_err("not for a security group");
        let paths: Vec<_> = errors.iter().filter_map(|e| e.attribute.clone()).collect();
        assert_eq!(paths, ["rule[1].action", "rule[2].rate", "rule[3].chain"]);
        assert!(errors[0].message.contains("rule \"block\""), "{}", errors[0].message);
    }
}
