//! `network`: a Docker network (bridge by default), labelled with its owner.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};

use crate::util::{Observed, Scope, docker_error, labels};

pub fn schema() -> Schema {
    Schema::new("A Docker network.")
        .attribute("name", AttributeSchema::required(Type::String).force_new())
        .attribute("driver", AttributeSchema::optional(Type::String).default(Value::string("bridge")).force_new())
        .attribute("internal", AttributeSchema::optional(Type::Bool).default(Value::Bool(false)).force_new())
        .attribute("labels", AttributeSchema::optional(Type::map(Type::String)).force_new())
        .attribute("id", AttributeSchema::computed(Type::String))
}

pub async fn create(docker: &Docker, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
    let name = planned.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let request = NetworkCreateRequest {
        name: name.clone(),
        driver: planned.get("driver").and_then(Value::as_str).map(str::to_string),
        internal: planned.get("internal").and_then(Value::as_bool),
        labels: Some(labels(ctx, planned)),
        ..Default::default()
    };
    let created =
        docker.create_network(request).await.map_err(|e| docker_error(&format!("creating network {name}"), e))?;
    remove_twins(docker, ctx, &created.id).await?;
    let mut state = planned.clone();
    state.set("id", Value::string(created.id));
    Ok(state)
}

/// Removes the networks this state made for the address other than `keep`.
/// Docker's check for a taken name races: a killed run's create still in
/// flight and the next run's both succeed, and then every container naming the
/// network fails ("network is ambiguous"). The twin was never recorded.
pub async fn remove_twins(docker: &Docker, ctx: &OperationContext, keep: &str) -> Result<(), ProviderError> {
    let address = ctx.address.to_string();
    for twin in list(docker, Scope::Ours).await?.values().filter(|o| o.made_for(&ctx.lineage, &address)) {
        if twin.id() != keep {
            match remove(docker, twin.id()).await {
                Err(e) if !crate::util::is_not_found(&e) => {
                    return Err(docker_error(&format!("removing network {}, a twin of {address}", twin.id()), e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

pub async fn list(docker: &Docker, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    let options = bollard::query_parameters::ListNetworksOptions { filters: scope.filters() };
    let networks = docker.list_networks(Some(options)).await.map_err(|e| docker_error("listing networks", e))?;
    Ok(networks
        .into_iter()
        .filter_map(|n| {
            let id = n.id?;
            let value = Value::object([
                ("id", Value::string(&id)),
                ("name", Value::string(n.name.unwrap_or_default())),
                ("driver", Value::string(n.driver.unwrap_or_default())),
                ("internal", Value::Bool(n.internal.unwrap_or(false))),
            ]);
            Some((id, Observed::new(value, &n.labels.unwrap_or_default())))
        })
        .collect())
}

/// How many containers Docker says are attached to a network, if it answers.
pub async fn attached(docker: &Docker, id: &str) -> Option<usize> {
    let options = None::<bollard::query_parameters::InspectNetworkOptions>;
    docker.inspect_network(id, options).await.ok().map(|n| n.containers.map_or(0, |c| c.len()))
}

/// How long a network removal waits for the endpoints of containers just
/// removed to be released.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Removes a network. Docker can answer "active endpoints" for a moment after
/// the last container on it was removed (it releases endpoints as it cleans up
/// after the container's process), so that answer is retried for a while;
/// a container that stays attached still fails the removal.
pub async fn remove(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        match docker.remove_network(id).await {
            Err(e) if crate::util::has_active_endpoints(&e) && started.elapsed() < RELEASE_WAIT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
            other => return other,
        }
    }
}
