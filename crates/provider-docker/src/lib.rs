//! The `docker` provider: networks, volumes and containers on a Docker Engine,
//! through bollard.
//!
//! Every object it creates carries two labels, `infra.lineage` and
//! `infra.address`, so refresh finds everything with one list call per object
//! type, and an object created just before a crash is found and adopted instead
//! of leaked.

mod container;
mod health;
mod image;
mod network;
mod replicas;
mod util;
mod volume;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use bollard::Docker;
use infra_core::{
    AttributeSchema, OperationContext, Provider, ProviderError, ProviderFactory, ProviderSchema, ReadRequest, Refined,
    Schema, Type, Value,
};

use crate::util::{Observed, Scope, docker_error};

pub struct DockerFactory;

static SCHEMA: LazyLock<ProviderSchema> = LazyLock::new(|| ProviderSchema {
    config: Schema::new("Where the Docker Engine is.").attribute(
        "host",
        AttributeSchema::optional(Type::String)
            .describe("unix:///path/to/docker.sock or tcp://host:port; default: DOCKER_HOST, then the local socket"),
    ),
    resources: [
        ("image", image::schema()),
        ("network", network::schema()),
        ("volume", volume::schema()),
        ("container", container::schema()),
    ]
    .into_iter()
    .collect(),
});

#[async_trait]
impl ProviderFactory for DockerFactory {
    fn schema(&self) -> &ProviderSchema {
        &SCHEMA
    }

    async fn configure(&self, config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
        let host = config.get("host").and_then(Value::as_str);
        let where_ = host.unwrap_or("the local Docker socket").to_string();
        let docker = match host {
            Some(h) => Docker::connect_with_host(h),
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(|e| unreachable(&where_, &e))?;
        docker.ping().await.map_err(|e| unreachable(&where_, &e))?;
        Ok(Arc::new(DockerProvider { docker }))
    }
}

fn unreachable(where_: &str, e: &bollard::errors::Error) -> ProviderError {
    ProviderError::unavailable(format!("the Docker daemon at {where_} cannot be reached ({e}). Is it running?"))
}

pub struct DockerProvider {
    docker: Docker,
}

fn unknown_kind(kind: &str) -> ProviderError {
    ProviderError::invalid("", format!("the docker provider has no resource type `{kind}`"))
}

#[async_trait]
impl Provider for DockerProvider {
    fn plan(&self, kind: &str, prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        match kind {
            "image" => image::plan(prior, proposed),
            "container" => container::plan(prior, proposed),
            _ => Ok(Refined::new(proposed)),
        }
    }

    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        match kind {
            "container" => container::validate(config),
            "image" => image::validate(config),
            _ => Vec::new(),
        }
    }

    /// One list call per object type for the whole refresh, whatever the count.
    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        let mut listed: HashMap<&str, Result<HashMap<String, Observed>, ProviderError>> = HashMap::new();
        for kind in ["image", "container", "network", "volume"] {
            if requests.iter().any(|r| r.kind == kind) {
                // Containers and images: all of them, so an imported container or a
                // pulled image, which carry no labels of ours, are found too.
                let scope = if matches!(kind, "container" | "image") { Scope::All } else { Scope::Ours };
                let found = list(&self.docker, kind, scope).await;
                listed.insert(kind, found);
            }
        }
        requests
            .iter()
            .map(|r| {
                let found =
                    listed.get(r.kind.as_str()).ok_or_else(|| unknown_kind(&r.kind))?.as_ref().map_err(Clone::clone)?;
                if r.kind == "container" {
                    let address = r.address.to_string();
                    return Ok(replicas::gather(&r.lineage, &address, &r.state, found.values()));
                }
                let id = r.state.get("id").and_then(Value::as_str).unwrap_or_default();
                Ok(found.get(id).map(|actual| util::merge_observed(&r.state, &actual.value)))
            })
            .collect()
    }

    async fn create(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        match kind {
            "image" => image::create(&self.docker, ctx, planned).await,
            "network" => network::create(&self.docker, ctx, planned).await,
            "volume" => volume::create(&self.docker, ctx, planned).await,
            "container" => replicas::create(&self.docker, ctx, planned).await,
            other => Err(unknown_kind(other)),
        }
    }

    async fn update(
        &self,
        ctx: &OperationContext,
        kind: &str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        match kind {
            "container" => replicas::converge(&self.docker, ctx, prior, planned).await,
            // Everything else about networks and volumes forces replacement.
            _ => Ok(util::with_computed(planned, prior)),
        }
    }

    async fn delete(&self, ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        if kind == "container" {
            return replicas::delete(&self.docker, ctx, prior).await;
        }
        let id = prior.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let result = match kind {
            "image" => image::delete(&self.docker, prior).await,
            "network" => self.docker.remove_network(&id).await,
            "volume" => self.docker.remove_volume(&id, None::<bollard::query_parameters::RemoveVolumeOptions>).await,
            other => return Err(unknown_kind(other)),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if util::is_not_found(&e) => Ok(()),
            Err(e) => Err(docker_error(&format!("removing {kind} {id}"), e)),
        }
    }

    async fn import(&self, _ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        let found = list(&self.docker, kind, Scope::All).await?;
        let listed = found
            .into_values()
            .map(|o| o.value)
            .find(|v| {
                v.get("id").and_then(Value::as_str) == Some(id) || v.get("name").and_then(Value::as_str) == Some(id)
            })
            .ok_or_else(|| ProviderError::failed(format!("no {kind} with id or name {id}")))?;
        match kind {
            "container" => {
                container::inspect(&self.docker, listed.get("id").and_then(Value::as_str).unwrap_or(id)).await
            }
            _ => Ok(listed),
        }
    }

    async fn logs(&self, kind: &str, state: &Value, lines: usize) -> Result<String, ProviderError> {
        match kind {
            "container" => health::logs(&self.docker, &util::id_of(state)?, &lines.to_string()).await,
            other => Err(ProviderError::invalid("", format!("`{other}` resources have no logs"))),
        }
    }

    async fn exec(&self, kind: &str, state: &Value, argv: &[String]) -> Result<infra_core::ExecOutput, ProviderError> {
        match kind {
            "container" => container::exec(&self.docker, &util::id_of(state)?, argv).await,
            other => Err(ProviderError::invalid("", format!("commands cannot run inside `{other}` resources"))),
        }
    }

    /// Finds an object created for this address by this state but never
    /// recorded (a crash between create and save).
    async fn adopt(&self, ctx: &OperationContext, kind: &str) -> Result<Option<Value>, ProviderError> {
        let found = list(&self.docker, kind, Scope::Ours).await?;
        let address = ctx.address.to_string();
        if kind == "container" {
            // The update that follows converges whatever members it finds.
            return Ok(replicas::gather(&ctx.lineage, &address, &Value::Null, found.values()));
        }
        Ok(found.into_values().find(|o| o.made_for(&ctx.lineage, &address)).map(|o| o.value))
    }
}

/// Lists the objects of one type: only those labelled by infra, or all.
async fn list(docker: &Docker, kind: &str, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    match kind {
        "image" => image::list(docker, scope).await,
        "container" => container::list(docker, scope).await,
        "network" => network::list(docker, scope).await,
        "volume" => volume::list(docker, scope).await,
        other => Err(unknown_kind(other)),
    }
}
