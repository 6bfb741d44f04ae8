//! What a firewall is, whichever backend enforces it: the attributes a
//! `firewall` block takes (policies, named address sets, rules) and `rules`,
//! which reads such a value into checked data. The `ssh` provider renders it
//! as an nftables table on a server; the `aws` provider as a security group.
//! Neither sees user text that was not parsed here.

pub mod rules;

use infra_core::{AttributeSchema, BlockNesting, Schema, Type, Value};

/// `base` with the firewall's own attributes and blocks added.
pub fn schema(base: Schema) -> Schema {
    let with_default =
        |ty: Type, default: Value, what: &'static str| AttributeSchema::optional(ty).default(default).describe(what);
    let policy = |default: &str, what| with_default(Type::String, Value::string(default), what);
    base.attribute("input_policy", policy("drop", "accept or drop what no input rule decides; default drop"))
        .attribute("forward_policy", policy("drop", "accept or drop routed traffic no rule decides; default drop"))
        .attribute("output_policy", policy("accept", "accept or drop outgoing traffic no rule decides"))
        .attribute(
            "keep_ssh",
            with_default(
                Type::Bool,
                Value::Bool(true),
                "always let in the SSH port infra logs in on; false only if a rule of yours does",
            ),
        )
        .block("set", BlockNesting::Named, set_schema())
        .block("rule", BlockNesting::Named, rule_schema())
}

fn set_schema() -> Schema {
    Schema::new("A named set of addresses, used in rules as \"@NAME\".")
        .attribute(
            "type",
            AttributeSchema::optional(Type::String).describe("ipv4 or ipv6; default: what the elements are"),
        )
        .attribute(
            "elements",
            AttributeSchema::optional(Type::list(Type::String)).describe("addresses and CIDR networks"),
        )
}

fn rule_schema() -> Schema {
    let any = |what: &'static str| AttributeSchema::optional(Type::Any).describe(what);
    let text = |what: &'static str| AttributeSchema::optional(Type::String).describe(what);
    Schema::new("One rule; rules are checked in order.")
        .attribute("chain", text("input (default), forward or output"))
        .attribute("action", text("accept (default), drop or reject"))
        .attribute("protocol", text("tcp (the default with ports), udp, icmp, icmpv6 or any"))
        .attribute("port", any("destination port, range (\"8000-8100\") or a list of them; [] matches nothing"))
        .attribute("from", any("source addresses, CIDR networks or \"@set\""))
        .attribute("to", any("destination addresses, CIDR networks or \"@set\""))
        .attribute("interface", text("the interface it arrives on (leaves by, for output); `br-*` matches a prefix"))
        .attribute("state", any("connection states: new, established, related, invalid, untracked"))
        .attribute("rate", text("at most this many matches, e.g. \"10/minute\"; the rest fall through"))
        .attribute("log", AttributeSchema::optional(Type::Bool).describe("log what it matches"))
        .attribute("comment", text("a note kept with the rule on the server"))
}
