//! The firewall as a reviewer meets it: what a configuration becomes in
//! nftables, and what a mistake in it is told.

use infra_core::Value;

use super::{lines, nft};
use infra_firewall::rules;

fn firewall(json: serde_json::Value) -> Value {
    Value::from_json(&json)
}

fn errors(json: serde_json::Value) -> Vec<(String, String)> {
    rules::read(&firewall(json))
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.attribute.unwrap_or_default(), e.message))
        .collect()
}

#[test]
fn a_default_deny_rule_set_in_nftables() {
    let config = firewall(serde_json::json!({
        "input_policy": "drop",
        "log_dropped": true,
        "set": [{ "name": "admins", "elements": ["198.51.100.0/24", "203.0.113.7"] }],
        "rule": [
            { "name": "ssh", "port": 22, "from": ["@admins"], "rate": "10/minute", "state": ["new"] },
            { "name": "web", "port": [80, "8000-8100"], "from": ["0.0.0.0/0", "::/0"] },
            { "name": "ping", "protocol": "icmp", "comment": "monitoring" },
            { "name": "no-smtp", "chain": "output", "port": 25, "action": "reject" }
        ]
    }));
    let firewall = rules::read(&config).expect("valid");
    let expected = r#"table inet infra
delete table inet infra
table inet infra {
	set admins {
		type ipv4_addr
		flags interval
		elements = { 198.51.100.0/24, 203.0.113.7/32 }
	}
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		iif "lo" accept
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept
		tcp dport 2222 accept comment "firewall.web: keep_ssh (the port infra logs in on)"
		ip saddr @admins tcp dport 22 ct state new limit rate 10/minute accept comment "firewall.web: ssh"
		ip saddr 0.0.0.0/0 tcp dport { 80, 8000-8100 } accept comment "firewall.web: web"
		ip6 saddr ::/0 tcp dport { 80, 8000-8100 } accept comment "firewall.web: web"
		meta l4proto icmp accept comment "firewall.web: ping (monitoring)"
		limit rate 10/minute log prefix "infra drop: "
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct state invalid drop
		ct status dnat jump published
		limit rate 10/minute log prefix "infra drop: "
	}
	chain published {
		ip saddr @admins meta l4proto tcp ct original proto-dst 22 ct state new limit rate 10/minute accept comment "firewall.web: ssh"
		ip saddr 0.0.0.0/0 meta l4proto tcp ct original proto-dst { 80, 8000-8100 } accept comment "firewall.web: web"
		ip6 saddr ::/0 meta l4proto tcp ct original proto-dst { 80, 8000-8100 } accept comment "firewall.web: web"
		meta l4proto icmp accept comment "firewall.web: ping (monitoring)"
		limit rate 10/minute log prefix "infra drop: "
		drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
		tcp dport 25 reject comment "firewall.web: no-smtp"
	}
}
"#;
    assert_eq!(nft::render(&firewall, "firewall.web", 2222), expected);
}

#[test]
fn keep_ssh_false_leaves_ssh_to_the_rules() {
    let config = firewall(serde_json::json!({ "keep_ssh": false, "rule": [] }));
    let rendered = nft::render(&rules::read(&config).expect("valid"), "firewall.web", 22);
    assert!(!rendered.contains("keep_ssh"), "{rendered}");
}

#[test]
fn docker_hosts_let_containers_out_and_published_ports_obey_the_input_rules() {
    let config = firewall(serde_json::json!({ "docker": true, "rule": [{ "name": "app", "port": 8081 }] }));
    let rendered = nft::render(&rules::read(&config).expect("valid"), "firewall.web", 22);
    assert!(rendered.contains("iifname \"docker0\" accept"), "{rendered}");
    assert!(rendered.contains("meta l4proto tcp ct original proto-dst 8081 accept"), "{rendered}");
}

#[test]
fn mistakes_are_named_by_their_attribute() {
    let found = errors(serde_json::json!({
        "input_policy": "deny",
        "set": [{ "name": "admins", "elements": ["198.51.100.0/33"] }],
        "rule": [
            { "name": "ssh", "port": 70000 },
            { "name": "db", "port": 5432, "from": ["@dbas"] },
            { "name": "range", "port": "9000-8000" },
            { "name": "icmp-port", "protocol": "icmp", "port": 1 },
            { "name": "mixed", "from": ["10.0.0.0/8"], "to": ["2001:db8::/32"] },
            { "name": "bad-rate", "rate": "lots" }
        ]
    }));
    let expected = [
        ("set[0].elements[0]", "\"198.51.100.0/33\" is not an IP address or CIDR network (e.g. 198.51.100.0/24)"),
        ("rule[0].port[0]", "port 70000 is not a port from 1 to 65535 or a range like 8000-8100"),
        ("rule[1].from[0]", "`@dbas` names no `set` of this firewall (declared: admins)"),
        ("rule[2].port[0]", "port range 9000-8000 runs backwards"),
        ("rule[3].port", "ports need `protocol = \"tcp\"` or `\"udp\"`"),
        ("rule[4].to", "rule \"mixed\" can never match: `from` and `to` are of different IP versions"),
        ("rule[5].rate", "rate \"lots\" must read like \"10/minute\" (per second, minute, hour or day)"),
        ("input_policy", "`input_policy` is \"deny\"; it must be one of accept, drop"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, m)| (a.to_string(), m.to_string())).collect();
    assert_eq!(found, expected);
}

#[test]
fn rules_that_match_the_same_traffic_and_disagree_conflict() {
    let found = errors(serde_json::json!({
        "rule": [
            { "name": "web", "port": [443, 80], "from": ["0.0.0.0/0"] },
            { "name": "no-web", "port": [80, 443], "from": ["0.0.0.0/0"], "action": "drop" },
            { "name": "web-v6", "port": [80, 443], "from": ["::/0"], "action": "drop" }
        ]
    }));
    assert_eq!(
        found,
        [(
            "rule[1]".to_string(),
            "rules \"web\" and \"no-web\" match the same traffic but one says accept and the other drop; keep one"
                .to_string()
        )]
    );
}

#[test]
fn text_that_could_break_out_of_nftables_syntax_is_refused() {
    let found = errors(serde_json::json!({
        "rule": [
            { "name": "x\" accept; flush ruleset", "port": 1 },
            { "name": "y", "port": 2, "interface": "eth0\" accept" },
            { "name": "z", "port": 3, "comment": "a\"b" }
        ]
    }));
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["rule[0]", "rule[1].interface", "rule[2].comment"]);
}

#[test]
fn a_listing_becomes_one_line_per_rule_named_by_its_chain() {
    let listing = "table inet infra {\n\tset admins {\n\t\ttype ipv4_addr\n\t}\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 accept\n\t}\n}\n";
    let expected = [
        "admins: type ipv4_addr",
        "input: type filter hook input priority filter; policy drop;",
        "input: tcp dport 22 accept",
    ];
    assert_eq!(lines(listing), Value::List(expected.iter().map(|l| Value::string(*l)).collect()));
}

#[test]
fn an_empty_port_list_matches_nothing_rather_than_everything() {
    let config = firewall(serde_json::json!({ "rule": [{ "name": "open", "port": [] }] }));
    let rendered = nft::render(&rules::read(&config).expect("valid"), "firewall.web", 22);
    assert!(!rendered.contains("open"), "{rendered}");
}
