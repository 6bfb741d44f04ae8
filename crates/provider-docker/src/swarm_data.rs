//! `swarm_config` and `swarm_secret`: Swarm's own way to hand files to a
//! service's tasks, a config readable by anyone who can inspect it, a secret
//! never shown again once stored. Docker keeps both immutable, so a change of
//! data is a new object: its name is the one written plus a suffix chosen at
//! creation, and with `lifecycle { create_before_destroy = true }` the
//! service moves to the new one before the old is removed.

use std::collections::HashMap;

use base64::Engine as _;
use bollard::Docker;
use bollard::models::{ConfigSpec, SecretSpec};
use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};

use crate::util::{Observed, Scope, docker_error, labels};

/// Which of the two the functions below handle.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Data {
    Config,
    Secret,
}

impl Data {
    fn noun(self) -> &'static str {
        match self {
            Data::Config => "config",
            Data::Secret => "secret",
        }
    }
}

pub fn schema(data: Data) -> Schema {
    let (description, content) = match data {
        Data::Config => (
            "A Swarm config: a file handed to a service's tasks (`configs` of `swarm_service`).",
            AttributeSchema::required(Type::String).force_new(),
        ),
        Data::Secret => (
            "A Swarm secret: a file handed to a service's tasks, stored encrypted and never shown again (`secrets` of `swarm_service`).",
            AttributeSchema::required(Type::String).force_new().sensitive(),
        ),
    };
    Schema::new(description)
        .attribute(
            "name",
            AttributeSchema::required(Type::String).force_new().describe(
                "the name's start; the swarm's name adds a suffix, so a new version can exist beside the old",
            ),
        )
        .attribute("data", content.describe("the file's content"))
        .attribute("labels", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("id", AttributeSchema::computed(Type::String))
        .attribute("swarm_name", AttributeSchema::computed(Type::String).describe("NAME-SUFFIX, as the swarm knows it"))
}

pub async fn create(
    docker: &Docker,
    ctx: &OperationContext,
    data: Data,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let suffix: [u8; 4] = rand::random();
    let name = format!("{}-{}", planned.text("name"), hex::encode(suffix));
    let content = Some(base64::engine::general_purpose::STANDARD.encode(planned.text("data")));
    let labels = Some(labels(ctx, planned));
    let created = match data {
        Data::Config => {
            let spec = ConfigSpec { name: Some(name.clone()), labels, data: content, ..Default::default() };
            docker.create_config(spec).await
        }
        Data::Secret => {
            let spec = SecretSpec { name: Some(name.clone()), labels, data: content, ..Default::default() };
            docker.create_secret(spec).await
        }
    }
    .map_err(|e| docker_error(&format!("creating {} {name}", data.noun()), e))?;
    let mut state = planned.clone();
    state.set("id", Value::string(created.id));
    state.set("swarm_name", Value::string(name));
    Ok(state)
}

/// A config or secret as the swarm lists it.
struct Stored {
    id: Option<String>,
    name: Option<String>,
    labels: Option<HashMap<String, String>>,
    /// Base64; a secret's is never given back.
    data: Option<String>,
}

/// Every config or secret (labelled by infra, or all). A config's data is
/// read back, so a config changed behind infra's back shows; a secret's never is.
pub async fn list(docker: &Docker, data: Data, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    let failed = |e| docker_error(&format!("listing {}s", data.noun()), e);
    let found: Vec<Stored> = match data {
        Data::Config => {
            let options = bollard::query_parameters::ListConfigsOptions { filters: scope.filters() };
            let configs = docker.list_configs(Some(options)).await.map_err(failed)?;
            configs
                .into_iter()
                .map(|c| {
                    let spec = c.spec.unwrap_or_default();
                    Stored { id: c.id, name: spec.name, labels: spec.labels, data: spec.data }
                })
                .collect()
        }
        Data::Secret => {
            let options = bollard::query_parameters::ListSecretsOptions { filters: scope.filters() };
            let secrets = docker.list_secrets(Some(options)).await.map_err(failed)?;
            secrets
                .into_iter()
                .map(|s| {
                    let spec = s.spec.unwrap_or_default();
                    Stored { id: s.id, name: spec.name, labels: spec.labels, data: None }
                })
                .collect()
        }
    };
    Ok(found
        .into_iter()
        .filter_map(|stored| {
            let id = stored.id?;
            let name = Value::string(stored.name.unwrap_or_default());
            let mut value = Value::object([("id", Value::string(&id)), ("swarm_name", name)]);
            if let Some(text) = stored.data.as_deref().and_then(decode) {
                value.set("data", Value::string(text));
            }
            Some((id, Observed::new(value, &stored.labels.unwrap_or_default())))
        })
        .collect())
}

fn decode(base64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_data_is_sensitive_and_a_configs_is_not() {
        assert!(schema(Data::Secret).attributes["data"].sensitive);
        assert!(!schema(Data::Config).attributes["data"].sensitive);
        assert!(schema(Data::Config).attributes["data"].force_new, "Docker cannot change it in place");
    }

    #[test]
    fn config_data_reads_back_from_base64() {
        assert_eq!(decode("Z2xvYmFsCg==").as_deref(), Some("global\n"));
        assert_eq!(decode("not base64!"), None);
    }
}
