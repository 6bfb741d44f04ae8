//! `server`: a machine reached over SSH. Creating one checks that infra can
//! log in and records the host key it presented (pinned from then on) and a
//! few facts; destroying one only forgets it. Resources on the server name it
//! with `server = server.NAME`.

use infra_core::{AttributeSchema, ProviderError, Schema, Type, Value};

use crate::facts::Facts;
use infra_ssh::{Connection, Target};

pub fn schema() -> Schema {
    Schema::new("A server infra logs in to over SSH.")
        .attribute("host", AttributeSchema::required(Type::String).force_new())
        .attribute("port", AttributeSchema::optional(Type::Number).default(Value::Number(22.0)).force_new())
        .attribute("user", AttributeSchema::optional(Type::String).default(Value::string("root")))
        .attribute(
            "private_key",
            AttributeSchema::optional(Type::String).describe("path of an ed25519 or RSA key; default: ssh-agent"),
        )
        .attribute(
            "passphrase_env",
            AttributeSchema::optional(Type::String).describe("environment variable holding the key's passphrase"),
        )
        .attribute(
            "host_key",
            AttributeSchema::optional(Type::String)
                .describe("the server's public host key, pinned (\"ssh-ed25519 AAAA...\")"),
        )
        .attribute(
            "known_hosts",
            AttributeSchema::optional(Type::String)
                .describe("known_hosts file to check the host key in; default ~/.ssh/known_hosts"),
        )
        .attribute(
            "trust_on_first_use",
            AttributeSchema::optional(Type::Bool)
                .default(Value::Bool(false))
                .describe("accept the key presented at creation and pin it from then on"),
        )
        .attribute(
            "bootstrap_user",
            AttributeSchema::optional(Type::String)
                .describe("log in as this user (e.g. root) while `user` is refused: a fresh server"),
        )
        .attribute(
            "jump",
            AttributeSchema::optional(Type::Any)
                .describe("reach this server through another one (a bastion): jump = server.bastion"),
        )
        .attribute(
            "wait_seconds",
            AttributeSchema::optional(Type::Number)
                .describe("at creation, keep trying to log in this long (a cloud instance still booting); default 0"),
        )
        .attribute(
            "sudo",
            AttributeSchema::optional(Type::Bool)
                .default(Value::Bool(false))
                .describe("run everything through sudo -n"),
        )
        .attribute(
            "host_key_recorded",
            AttributeSchema::computed(Type::String).describe("the host key seen at creation"),
        )
        .attribute("fingerprint", AttributeSchema::computed(Type::String))
        .attribute("hostname", AttributeSchema::computed(Type::String))
        .attribute("os", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errors = Vec::new();
    // A host known only after apply (a cloud instance's address) is checked then.
    let host_known = config.get("host").is_none_or(|h| !matches!(h.peel(), Value::Unknown));
    if host_known && let Err(e) = Target::from_value(config) {
        errors.push(e);
    }
    if let Some(key) = config.get("host_key").and_then(Value::as_str)
        && russh::keys::PublicKey::from_openssh(key.trim()).is_err()
    {
        errors.push(ProviderError::invalid(
            "host_key",
            "host_key is not an OpenSSH public key (\"ssh-ed25519 AAAA...\")",
        ));
    }
    errors
}

/// The id is known at plan time: `user@host:port`.
pub fn plan(mut proposed: Value) -> Value {
    let id = Target::from_value(&proposed).map_or(Value::Unknown, |t| Value::string(t.name()));
    if let Value::Object(map) = &mut proposed {
        map.insert("id".into(), id);
    }
    proposed
}

/// The planned value with what the connection and the facts tell.
pub fn observed(planned: &Value, connection: &Connection, facts: &Facts) -> Value {
    let mut value = plan(planned.clone());
    if let Value::Object(map) = &mut value {
        let recorded = map.get("host_key_recorded").and_then(Value::as_str).filter(|k| !k.is_empty());
        if recorded.is_none() {
            map.insert("host_key_recorded".into(), Value::string(&connection.host_key));
        }
        let fingerprint = russh::keys::PublicKey::from_openssh(&connection.host_key)
            .map(|k| infra_ssh::fingerprint(&k))
            .unwrap_or_default();
        map.insert("fingerprint".into(), Value::string(fingerprint));
        map.insert("hostname".into(), Value::string(&facts.hostname));
        map.insert("os".into(), Value::string(&facts.os));
    }
    value
}
