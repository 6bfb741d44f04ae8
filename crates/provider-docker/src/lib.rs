//! The `docker` provider: images, networks, volumes and containers on a Docker
//! Engine, through bollard: this machine's, one at another address, or one on
//! a server reached over SSH (`engine.rs`).
//!
//! Every object it creates carries two labels, `infra.lineage` and
//! `infra.address`, so refresh finds everything with one list call per object
//! type, and an object created just before a crash is found and adopted instead
//! of leaked.

mod backup;
mod container;
mod engine;
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

use crate::engine::Engine;
use crate::util::{Observed, Scope, docker_error};

pub struct DockerFactory;

static SCHEMA: LazyLock<ProviderSchema> = LazyLock::new(|| ProviderSchema {
    config: Schema::new("Where the Docker Engine is: this machine's, another address, or a server's over SSH.")
        .attribute(
            "host",
            AttributeSchema::optional(Type::String).describe(
                "unix:///path/to/docker.sock or tcp://host:port; default: DOCKER_HOST, then the local socket",
            ),
        )
        .attribute(
            "ssh",
            AttributeSchema::optional(Type::Any)
                .describe("the engine of a server, reached over its SSH connection: `ssh = server.NAME`"),
        )
        .attribute(
            "firewall",
            AttributeSchema::optional(Type::Any).describe(
                "the firewall of the engine's host (`firewall = firewall.NAME`): in place before any container, \
                 and ports published beyond loopback are then not warned about",
            ),
        )
        .attribute(
            "socket",
            AttributeSchema::optional(Type::String)
                .describe("the engine's socket on that server; default /var/run/docker.sock"),
        ),
    resources: [
        ("image", image::schema()),
        ("network", network::schema()),
        ("volume", volume::schema()),
        ("container", container::schema()),
        ("backup", backup::schema()),
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
        let firewalled = config.get("firewall").is_some_and(|f| !f.is_null());
        Ok(Arc::new(DockerProvider { engine: Engine::from_config(config).await?, firewalled }))
    }
}

pub struct DockerProvider {
    engine: Engine,
    /// A firewall was named for the engine's host.
    firewalled: bool,
}

impl DockerProvider {
    /// One refreshed object from the lists of its type.
    fn read_one(
        &self,
        r: &ReadRequest,
        listed: &HashMap<&str, Result<HashMap<String, Observed>, ProviderError>>,
    ) -> Result<Option<Value>, ProviderError> {
        let of = |kind: &str| listed.get(kind).ok_or_else(|| unknown_kind(kind))?.as_ref().map_err(Clone::clone);
        if r.kind == "backup" {
            return Ok(backup::observed(&r.state, of("container")?, of("volume")?));
        }
        let found = of(&r.kind)?;
        if r.kind == "container" {
            let address = r.address.to_string();
            return Ok(replicas::gather(&r.lineage, &address, &r.state, found.values()));
        }
        let id = r.state.get("id").and_then(Value::as_str).unwrap_or_default();
        Ok(found.get(id).map(|actual| util::merge_observed(&r.state, &actual.value)))
    }

    /// Docker's published ports pass by host firewalls such as ufw (they are
    /// forwarded, not delivered): a reviewer should see a port opened to the
    /// network when nothing filters it.
    fn published_warnings(&self, planned: &Value) -> Vec<String> {
        if self.firewalled {
            return Vec::new();
        }
        let host = self.engine.server().unwrap_or_else(|| "this machine".to_string());
        container::public_ports(planned)
            .into_iter()
            .map(|port| {
                format!(
                    "publishes {port} beyond loopback on {host}, and no firewall covers that host: Docker's \
                     published ports pass by host firewalls such as ufw. Bind it to 127.0.0.1, or give the \
                     server a `firewall` (docker = true) and name it in the provider: `firewall = firewall.NAME`"
                )
            })
            .collect()
    }
}

fn unknown_kind(kind: &str) -> ProviderError {
    ProviderError::invalid("", format!("the docker provider has no resource type `{kind}`"))
}

#[async_trait]
impl Provider for DockerProvider {
    fn plan(&self, kind: &str, prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        match kind {
            "image" => image::plan(prior, proposed),
            "backup" => backup::plan(prior, proposed),
            "container" => container::plan(prior, proposed).map(|refined| {
                let warnings = self.published_warnings(&refined.planned);
                refined.warn(warnings)
            }),
            _ => Ok(Refined::new(proposed)),
        }
    }

    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        match kind {
            "container" => container::validate(config),
            "image" => image::validate(config),
            "backup" => backup::validate(config),
            _ => Vec::new(),
        }
    }

    fn location(&self, _kind: &str, _value: &Value) -> Option<String> {
        self.engine.server()
    }

    /// One list call per object type for the whole refresh, whatever the count.
    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        let docker = match self.engine.client().await {
            Ok(docker) => docker,
            Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut listed: HashMap<&str, Result<HashMap<String, Observed>, ProviderError>> = HashMap::new();
        // A backup is found by its runner container and its settings volume.
        let wanted = |kind: &str| {
            requests.iter().any(|r| r.kind == kind || (r.kind == "backup" && matches!(kind, "container" | "volume")))
        };
        for kind in ["image", "container", "network", "volume"] {
            if wanted(kind) {
                // Containers and images: all of them, so an imported container or a
                // pulled image, which carry no labels of ours, are found too.
                let scope = if matches!(kind, "container" | "image") { Scope::All } else { Scope::Ours };
                let found = list(docker, kind, scope).await;
                listed.insert(kind, found);
            }
        }
        requests.iter().map(|r| self.read_one(r, &listed)).collect()
    }

    async fn create(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        let docker = self.engine.client().await?;
        let created = match kind {
            "image" => image::create(docker, ctx, planned).await,
            "network" => network::create(docker, ctx, planned).await,
            "volume" => volume::create(docker, ctx, planned).await,
            "container" => replicas::create(docker, ctx, planned).await,
            "backup" => backup::write(docker, ctx, None, planned).await,
            other => Err(unknown_kind(other)),
        };
        created.map_err(|e| self.engine.locate(e))
    }

    async fn update(
        &self,
        ctx: &OperationContext,
        kind: &str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        let updated = match kind {
            "container" => replicas::converge(self.engine.client().await?, ctx, prior, planned).await,
            "backup" => backup::write(self.engine.client().await?, ctx, Some(prior), planned).await,
            // Everything else about networks and volumes forces replacement.
            _ => Ok(util::with_computed(planned, prior)),
        };
        updated.map_err(|e| self.engine.locate(e))
    }

    async fn delete(&self, ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        let docker = self.engine.client().await?;
        if kind == "container" {
            return replicas::delete(docker, ctx, prior).await.map_err(|e| self.engine.locate(e));
        }
        if kind == "backup" {
            return backup::delete(docker, prior).await;
        }
        let id = prior.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let result = match kind {
            "image" => image::delete(docker, prior).await,
            "network" => network::remove(docker, &id).await,
            "volume" => docker.remove_volume(&id, None::<bollard::query_parameters::RemoveVolumeOptions>).await,
            other => return Err(unknown_kind(other)),
        };
        match result {
            Err(e) if kind == "network" && util::has_active_endpoints(&e) => {
                let mut error = docker_error(&format!("removing network {id}"), e);
                if network::attached(docker, &id).await == Some(0) {
                    error.message.push_str(
                        "; no container is attached: the daemon holds a stale endpoint (a Docker defect after an \
                         interrupted container start); restarting the Docker daemon releases it, then run destroy again",
                    );
                }
                Err(self.engine.locate(error))
            }
            Err(e) if !util::is_not_found(&e) => {
                Err(self.engine.locate(docker_error(&format!("removing {kind} {id}"), e)))
            }
            // A twin a killed run made of this network goes with it.
            _ if kind == "network" => network::remove_twins(docker, ctx, "").await.map_err(|e| self.engine.locate(e)),
            _ => Ok(()),
        }
    }

    async fn import(&self, _ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        let docker = self.engine.client().await?;
        let found = list(docker, kind, Scope::All).await?;
        let listed = found
            .into_values()
            .map(|o| o.value)
            .find(|v| {
                v.get("id").and_then(Value::as_str) == Some(id) || v.get("name").and_then(Value::as_str) == Some(id)
            })
            .ok_or_else(|| ProviderError::failed(format!("no {kind} with id or name {id}")))?;
        match kind {
            "container" => container::inspect(docker, listed.get("id").and_then(Value::as_str).unwrap_or(id)).await,
            _ => Ok(listed),
        }
    }

    async fn logs(&self, kind: &str, state: &Value, lines: usize) -> Result<String, ProviderError> {
        let docker = self.engine.client().await?;
        match kind {
            "container" => health::logs(docker, &util::id_of(state)?, &lines.to_string()).await,
            other => Err(ProviderError::invalid("", format!("`{other}` resources have no logs"))),
        }
    }

    async fn exec(&self, kind: &str, state: &Value, argv: &[String]) -> Result<infra_core::ExecOutput, ProviderError> {
        let docker = self.engine.client().await?;
        match kind {
            "container" => container::exec(docker, &util::id_of(state)?, argv).await,
            other => Err(ProviderError::invalid("", format!("commands cannot run inside `{other}` resources"))),
        }
    }

    async fn act(
        &self,
        kind: &str,
        state: &Value,
        action: &str,
        args: &[(String, String)],
    ) -> Result<infra_core::ExecOutput, ProviderError> {
        match kind {
            "backup" => backup::act(self.engine.client().await?, state, action, args).await,
            other => Err(ProviderError::invalid("", format!("`{other}` resources have no `{action}` operation"))),
        }
    }

    /// Finds an object created for this address by this state but never
    /// recorded (a crash between create and save). A backup's runner is made
    /// again, its settings volume reused.
    async fn adopt(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Option<Value>, ProviderError> {
        if kind == "backup" {
            return Ok(None);
        }
        let docker = self.engine.client().await?;
        if kind == "image" {
            return image::adopt(docker, ctx, planned).await;
        }
        let found = list(docker, kind, Scope::Ours).await?;
        let address = ctx.address.to_string();
        if kind == "container" {
            // The update that follows converges whatever members it finds.
            return Ok(replicas::gather(&ctx.lineage, &address, &Value::Null, found.values()));
        }
        // Never the object a create_before_destroy replacement replaces.
        let replaced = ctx.replaced_id();
        Ok(found
            .into_values()
            .find(|o| o.made_for(&ctx.lineage, &address) && Some(o.id()) != replaced)
            .map(|o| o.value))
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
