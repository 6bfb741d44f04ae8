//! The `docker` provider: images, networks, volumes and containers on a Docker
//! Engine, through bollard: this machine's, one at another address, or one on
//! a server reached over SSH (`engine.rs`).
//!
//! Swarm (`swarm.rs`, `service.rs`): a swarm initialised on one engine, other
//! engines joined to it, and services run through a manager's engine.
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
mod kind;
mod network;
mod proxy;
mod publish;
mod replicas;
mod rollback;
mod service;
mod service_spec;
mod swarm;
mod swarm_data;
mod swarm_members;
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
use crate::kind::Kind;
use crate::swarm_data::Data;
use crate::util::{Observed, Scope, docker_error};
use infra_core::ResourceKind as _;

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
        )
        .attribute(
            "proxy_base",
            AttributeSchema::optional(Type::String).describe(
                "the Debian image (bookworm or later) infra builds the proxy in front of published containers \
                 FROM, with HAProxy from its packages; default debian:bookworm-slim",
            ),
        ),
    resources: Kind::ALL.iter().map(|kind| (kind.name(), kind.schema())).collect(),
});

#[async_trait]
impl ProviderFactory for DockerFactory {
    fn schema(&self) -> &ProviderSchema {
        &SCHEMA
    }

    async fn configure(&self, config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
        let firewalled = config.get("firewall").is_some_and(|f| !f.is_null());
        let proxy_base = config.get("proxy_base").and_then(Value::as_str).unwrap_or(proxy::DEFAULT_BASE).to_string();
        proxy::validate_base(&proxy_base)?;
        Ok(Arc::new(DockerProvider { engine: Engine::from_config(config).await?, firewalled, proxy_base }))
    }
}

pub struct DockerProvider {
    engine: Engine,
    /// A firewall was named for the engine's host.
    firewalled: bool,
    /// What the proxy in front of published containers is built FROM.
    proxy_base: String,
}

/// Every object of the types a refresh needs, by type.
type Listed = HashMap<Kind, Result<HashMap<String, Observed>, ProviderError>>;

impl DockerProvider {
    /// One refreshed object from the lists of its type.
    fn read_one(&self, r: &ReadRequest, listed: &Listed) -> Result<Option<Value>, ProviderError> {
        let of = |kind: Kind| match listed.get(&kind) {
            Some(found) => found.as_ref().map_err(Clone::clone),
            None => Err(not_listed(kind)),
        };
        match Kind::of(&r.kind)? {
            Kind::Backup => Ok(backup::observed(&r.state, of(Kind::Container)?, of(Kind::Volume)?)),
            Kind::SwarmMembers => {
                let swarm = of(Kind::SwarmMembers)?.values().next().map(|o| o.value.clone()).unwrap_or_default();
                Ok(Some(swarm_members::observed(&r.state, &swarm)))
            }
            Kind::Container => {
                let address = r.address.to_string();
                let listed = of(Kind::Container)?;
                let gathered = replicas::gather(&r.lineage, &address, &r.state, listed.values());
                Ok(gathered.map(|value| proxy::observed(value, &r.lineage, &address, listed.values())))
            }
            kind => {
                let found = of(kind)?;
                Ok(found.get(r.state.text("id")).map(|actual| util::merge_observed(&r.state, &actual.value)))
            }
        }
    }
    /// Docker's published ports pass by host firewalls such as ufw (they are
    /// forwarded, not delivered): a reviewer should see a port opened to the
    /// network when nothing filters it.
    fn published_warnings(&self, planned: &Value) -> Vec<String> {
        if self.firewalled {
            return Vec::new();
        }
        let host = self.engine.server().unwrap_or_else(|| "this machine".to_string());
        publish::public_ports(planned)
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

fn not_listed(kind: Kind) -> ProviderError {
    ProviderError::failed(format!("the {} objects were not listed", kind.name()))
}

#[async_trait]
impl Provider for DockerProvider {
    fn plan(&self, kind: &str, prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        match Kind::of(kind)? {
            Kind::Image => image::plan(prior, proposed),
            Kind::Backup => backup::plan(prior, proposed),
            Kind::Container => container::plan(prior, proposed).map(|refined| {
                let warnings = self.published_warnings(&refined.planned);
                refined.warn(warnings)
            }),
            Kind::SwarmNode => Ok(swarm::plan_node(prior, proposed)),
            Kind::SwarmMembers => Ok(swarm_members::plan(prior, proposed)),
            Kind::SwarmService => Ok(service_spec::plan(prior, proposed)),
            Kind::Network | Kind::Volume | Kind::Swarm | Kind::SwarmConfig | Kind::SwarmSecret => {
                Ok(Refined::new(proposed))
            }
        }
    }

    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        match Kind::of(kind) {
            Ok(Kind::Container) => container::validate(config),
            Ok(Kind::Image) => image::validate(config),
            Ok(Kind::Backup) => backup::validate(config),
            Ok(Kind::SwarmNode) => swarm::validate_node(config),
            Ok(Kind::SwarmMembers) => swarm_members::validate(config),
            Ok(Kind::SwarmService) => service_spec::validate(config),
            Ok(Kind::Network | Kind::Volume | Kind::Swarm | Kind::SwarmConfig | Kind::SwarmSecret) => Vec::new(),
            Err(e) => vec![e],
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
        let mut wanted: Vec<Kind> =
            requests.iter().filter_map(|r| Kind::of(&r.kind).ok()).flat_map(|k| k.listed().iter().copied()).collect();
        wanted.sort_by_key(|k| k.name());
        wanted.dedup();
        let mut listed = Listed::new();
        for kind in wanted {
            // Containers and images: all of them, so an imported container or a
            // pulled image, which carry no labels of ours, are found too.
            let scope = if matches!(kind, Kind::Container | Kind::Image) { Scope::All } else { Scope::Ours };
            listed.insert(kind, list(docker, kind, scope).await);
        }
        requests.iter().map(|r| self.read_one(r, &listed)).collect()
    }

    async fn create(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        let kind = Kind::of(kind)?;
        let docker = self.engine.client().await?;
        let created = match kind {
            Kind::Image => image::create(docker, ctx, planned).await,
            Kind::Network => network::create(docker, ctx, planned).await,
            Kind::Volume => volume::create(docker, ctx, planned).await,
            Kind::Container => replicas::create(docker, ctx, planned, &self.proxy_base).await,
            Kind::Backup => backup::write(docker, ctx, None, planned).await,
            Kind::Swarm => swarm::init(docker, ctx, planned).await,
            Kind::SwarmNode => swarm::join(docker, planned).await,
            Kind::SwarmService => service::create(docker, ctx, planned).await,
            Kind::SwarmConfig => swarm_data::create(docker, ctx, Data::Config, planned).await,
            Kind::SwarmSecret => swarm_data::create(docker, ctx, Data::Secret, planned).await,
            Kind::SwarmMembers => swarm_members::converge(docker, None, planned).await,
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
        let updated = match Kind::of(kind)? {
            Kind::Container => {
                replicas::converge(self.engine.client().await?, ctx, prior, planned, &self.proxy_base).await
            }
            Kind::Backup => backup::write(self.engine.client().await?, ctx, Some(prior), planned).await,
            Kind::SwarmService => service::update(self.engine.client().await?, ctx, prior, planned).await,
            Kind::SwarmMembers => swarm_members::converge(self.engine.client().await?, Some(prior), planned).await,
            // Everything else about these forces replacement.
            Kind::Image
            | Kind::Network
            | Kind::Volume
            | Kind::Swarm
            | Kind::SwarmNode
            | Kind::SwarmConfig
            | Kind::SwarmSecret => Ok(util::with_computed(planned, prior)),
        };
        updated.map_err(|e| self.engine.locate(e))
    }

    async fn delete(&self, ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        let kind = Kind::of(kind)?;
        let docker = self.engine.client().await?;
        let id = prior.text("id").to_string();
        let result = match kind {
            Kind::Container => return replicas::delete(docker, ctx, prior).await.map_err(|e| self.engine.locate(e)),
            Kind::Backup => return backup::delete(docker, prior).await,
            Kind::Swarm => return swarm::leave(docker, true).await.map_err(|e| self.engine.locate(e)),
            Kind::SwarmNode => {
                let manager = prior.text("role") == "manager";
                return swarm::leave(docker, manager).await.map_err(|e| self.engine.locate(e));
            }
            Kind::SwarmService => return service::delete(docker, prior).await.map_err(|e| self.engine.locate(e)),
            // The nodes stay as they are: forgetting their settings removes none.
            Kind::SwarmMembers => return Ok(()),
            Kind::SwarmConfig => docker.delete_config(&id).await,
            Kind::SwarmSecret => docker.delete_secret(&id).await,
            Kind::Image => image::delete(docker, prior).await,
            Kind::Network => network::remove(docker, &id).await,
            Kind::Volume => docker.remove_volume(&id, None::<bollard::query_parameters::RemoveVolumeOptions>).await,
        };
        match result {
            Err(e) if kind == Kind::Network && util::has_active_endpoints(&e) => {
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
                Err(self.engine.locate(docker_error(&format!("removing {} {id}", kind.name()), e)))
            }
            // A twin a killed run made of this network goes with it (not the
            // network itself, which a swarm may list a moment longer).
            _ if kind == Kind::Network => {
                network::remove_twins(docker, ctx, &id).await.map_err(|e| self.engine.locate(e))
            }
            _ => Ok(()),
        }
    }

    async fn import(&self, _ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        let kind = Kind::of(kind)?;
        let docker = self.engine.client().await?;
        let found = list(docker, kind, Scope::All).await?;
        let listed = found
            .into_values()
            .map(|o| o.value)
            .find(|v| v.non_empty_text("id") == Some(id) || v.non_empty_text("name") == Some(id))
            .ok_or_else(|| ProviderError::failed(format!("no {} with id or name {id}", kind.name())))?;
        match kind {
            Kind::Container => container::inspect(docker, listed.non_empty_text("id").unwrap_or(id)).await,
            _ => Ok(listed),
        }
    }

    async fn restore(&self, kind: &str, earlier: Value) -> Result<Value, ProviderError> {
        match Kind::of(kind)? {
            Kind::Container => rollback::restore(self.engine.client().await?, earlier).await,
            _ => Ok(earlier),
        }
    }

    async fn logs(&self, kind: &str, state: &Value, lines: usize) -> Result<String, ProviderError> {
        match Kind::of(kind)? {
            Kind::Container => {
                let docker = self.engine.client().await?;
                health::logs(docker, &state.recorded_id("Docker")?, &lines.to_string()).await
            }
            other => Err(ProviderError::invalid("", format!("`{}` resources have no logs", other.name()))),
        }
    }

    async fn exec(&self, kind: &str, state: &Value, argv: &[String]) -> Result<infra_core::ExecOutput, ProviderError> {
        match Kind::of(kind)? {
            Kind::Container => {
                let docker = self.engine.client().await?;
                container::exec(docker, &state.recorded_id("Docker")?, argv).await
            }
            other => {
                Err(ProviderError::invalid("", format!("commands cannot run inside `{}` resources", other.name())))
            }
        }
    }

    async fn act(
        &self,
        kind: &str,
        state: &Value,
        action: &str,
        args: &[(String, String)],
    ) -> Result<infra_core::ExecOutput, ProviderError> {
        match Kind::of(kind)? {
            Kind::Backup => backup::act(self.engine.client().await?, state, action, args).await,
            other => {
                Err(ProviderError::invalid("", format!("`{}` resources have no `{action}` operation", other.name())))
            }
        }
    }

    /// Finds an object created for this address by this state but never
    /// recorded (a crash between create and save). A backup's runner is made
    /// again, its settings volume reused.
    async fn adopt(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Option<Value>, ProviderError> {
        let kind = Kind::of(kind)?;
        if kind == Kind::Backup {
            return Ok(None);
        }
        let docker = self.engine.client().await?;
        match kind {
            Kind::Image => return image::adopt(docker, ctx, planned).await,
            Kind::SwarmNode => return swarm::adopt_node(docker, planned).await,
            Kind::SwarmService => return service::adopt(docker, ctx, planned).await,
            Kind::SwarmMembers => return Ok(None),
            _ => {}
        }
        let found = list(docker, kind, Scope::Ours).await?;
        let address = ctx.address.to_string();
        if kind == Kind::Container {
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

/// Lists the objects of one Docker type: only those labelled by infra, or all.
async fn list(docker: &Docker, kind: Kind, scope: Scope) -> Result<HashMap<String, Observed>, ProviderError> {
    match kind {
        Kind::Image => image::list(docker, scope).await,
        Kind::Container => container::list(docker, scope).await,
        Kind::Network => network::list(docker, scope).await,
        Kind::Volume => volume::list(docker, scope).await,
        Kind::Swarm => swarm::list_swarm(docker).await,
        Kind::SwarmNode => swarm::list_node(docker).await,
        Kind::SwarmService => service::list(docker, scope).await,
        Kind::SwarmConfig => swarm_data::list(docker, Data::Config, scope).await,
        Kind::SwarmSecret => swarm_data::list(docker, Data::Secret, scope).await,
        Kind::SwarmMembers => swarm_members::list(docker).await,
        // A backup has no Docker type of its own.
        Kind::Backup => Ok(HashMap::new()),
    }
}
