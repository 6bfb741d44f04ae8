//! The `ssh` provider: servers reached over SSH, and what lives on them
//! (files, accounts, packages, services, sysctls, timers, sshd settings).
//! Agentless: every change is a fixed script run over one shared connection
//! per server (`infra-ssh`), user data passed as quoted arguments or on stdin,
//! never spliced into the script.
//!
//! Refresh costs one round trip per server, whatever the number of resources
//! on it (`facts.rs`), and the servers of a fleet are read concurrently.

mod accounts;
mod backup;
mod facts;
mod firewall;
mod fs;
mod kind;
mod packages;
mod server;
mod sshd;
mod system;
mod timer;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use infra_core::{
    OperationContext, Provider, ProviderError, ProviderErrorKind, ProviderFactory, ProviderSchema, ReadRequest,
    Refined, Schema, Value,
};

use crate::facts::{Facts, Question};
use crate::kind::Kind;
use infra_core::ResourceKind as _;
use infra_ssh::{Connection, Pool, Target};

pub struct SshFactory;

static SCHEMA: LazyLock<ProviderSchema> = LazyLock::new(|| ProviderSchema {
    config: Schema::new("Servers reached over SSH; each `server` resource says how."),
    resources: Kind::ALL.iter().map(|kind| (kind.name(), kind.schema())).collect(),
});

#[async_trait]
impl ProviderFactory for SshFactory {
    fn schema(&self) -> &ProviderSchema {
        &SCHEMA
    }

    async fn configure(&self, _config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(SshProvider { pool: Pool::default() }))
    }
}

pub struct SshProvider {
    pool: Pool,
}

/// What refresh asks the server about one resource.
fn questions(kind: Kind, state: &Value) -> Vec<Question> {
    let name = kind.name();
    match kind {
        Kind::Server => Vec::new(),
        Kind::File | Kind::Directory | Kind::Permissions => fs::questions(name, state),
        Kind::Group | Kind::User | Kind::AuthorizedKey => vec![accounts::question(name, state)],
        Kind::Package => packages::questions(state),
        Kind::Service | Kind::Sysctl => vec![system::question(name, state)],
        Kind::Timer => timer::questions(state),
        Kind::Sshd => vec![sshd::question(state)],
        Kind::Firewall => vec![firewall::question()],
        Kind::Backup => backup::questions(state),
    }
}

/// A resource as refresh finds it, from the answers; `None` when it is gone.
fn observed(kind: Kind, state: &Value, connection: &Connection, facts: &Facts) -> Option<Value> {
    let name = kind.name();
    match kind {
        Kind::Server => Some(server::observed(state, connection, facts)),
        Kind::File | Kind::Directory | Kind::Permissions => fs::observed(name, state, facts),
        Kind::Group | Kind::User | Kind::AuthorizedKey => accounts::observed(name, state, facts),
        Kind::Package => Some(packages::observed(state, facts)),
        Kind::Service | Kind::Sysctl => system::observed(name, state, facts),
        Kind::Timer => timer::observed(state, facts),
        Kind::Sshd => sshd::observed(state, facts),
        Kind::Firewall => firewall::observed(state, facts),
        Kind::Backup => backup::observed(state, facts),
    }
}

/// The server a resource's value says it is on: itself for a `server`.
fn target_of(kind: Kind, value: &Value) -> Result<Target, ProviderError> {
    match kind {
        Kind::Server => Target::from_value(value),
        _ => Target::from_value(value.get("server").unwrap_or(&Value::Null)),
    }
}

impl SshProvider {
    /// Creates or updates one resource: the same convergent script either way.
    async fn write(
        &self,
        ctx: &OperationContext,
        kind: Kind,
        prior: Option<&Value>,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        let target = target_of(kind, planned)?;
        let connection = self.pool.get(&target).await?;
        let name = kind.name();
        match kind {
            Kind::Server => {
                let facts = facts::gather(&connection, &[]).await?;
                Ok(server::observed(planned, &connection, &facts))
            }
            Kind::File | Kind::Directory | Kind::Permissions => fs::write(&connection, name, planned).await,
            Kind::Package => packages::write(&connection, planned).await,
            Kind::Service | Kind::Sysctl => system::write(&connection, name, prior, planned).await,
            Kind::Timer => timer::write(&connection, planned).await,
            Kind::Sshd => sshd::write(&self.pool, &connection, &target, planned).await,
            Kind::Firewall => firewall::write(&self.pool, &connection, &target, ctx, planned).await,
            Kind::Backup => backup::write(&connection, ctx, planned).await,
            Kind::Group | Kind::User | Kind::AuthorizedKey => accounts::write(&connection, name, planned).await,
        }
    }

    /// A machine just started (a cloud instance) takes a while to answer SSH:
    /// with `wait_seconds`, logins that cannot connect are retried that long.
    async fn await_login(&self, planned: &Value) -> Result<(), ProviderError> {
        let limit = planned.get("wait_seconds").and_then(Value::as_number).unwrap_or(0.0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(limit.max(0.0));
        let target = target_of(Kind::Server, planned)?;
        loop {
            match self.pool.get(&target).await {
                Err(e) if e.kind == ProviderErrorKind::Unavailable && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Everything refresh needs from one server, in one round trip.
    async fn read_server(
        &self,
        target: &Target,
        requests: &[&ReadRequest],
    ) -> Result<Vec<Option<Value>>, ProviderError> {
        let connection = self.pool.get(target).await?;
        let kinds = requests.iter().map(|r| Kind::of(&r.kind)).collect::<Result<Vec<_>, _>>()?;
        let asked = requests.iter().zip(&kinds).flat_map(|(r, kind)| questions(*kind, &r.state));
        let facts = facts::gather(&connection, &asked.collect::<Vec<_>>()).await?;
        Ok(requests.iter().zip(kinds).map(|(r, kind)| observed(kind, &r.state, &connection, &facts)).collect())
    }
}

#[async_trait]
impl Provider for SshProvider {
    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        let kind = match Kind::of(kind) {
            Ok(kind) => kind,
            Err(e) => return vec![e],
        };
        let name = kind.name();
        match kind {
            Kind::Server => server::validate(config),
            Kind::File | Kind::Directory | Kind::Permissions => fs::validate(name, config),
            Kind::Package => packages::validate(config),
            Kind::Service | Kind::Sysctl => system::validate(name, config),
            Kind::Timer => timer::validate(config),
            Kind::Sshd => sshd::validate(config),
            Kind::Firewall => firewall::validate(config),
            Kind::Backup => backup::validate(config),
            Kind::Group | Kind::User | Kind::AuthorizedKey => accounts::validate(name, config),
        }
    }

    fn plan(&self, kind: &str, prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        let kind = Kind::of(kind)?;
        let name = kind.name();
        let planned = match kind {
            Kind::Server => return Ok(Refined::new(server::plan(proposed))),
            Kind::File | Kind::Directory | Kind::Permissions => fs::plan(name, proposed)?,
            Kind::Package => packages::plan(proposed),
            Kind::Service | Kind::Sysctl => system::plan(name, proposed),
            Kind::Timer => timer::plan(proposed),
            Kind::Sshd => sshd::plan(proposed),
            Kind::Firewall => firewall::plan(prior, proposed),
            Kind::Backup => backup::plan(prior, proposed),
            Kind::Group | Kind::User | Kind::AuthorizedKey => accounts::plan(name, proposed),
        };
        // Moving a resource to another machine makes a new one there.
        let moved = prior.is_some_and(|p| {
            let on = |v: &Value| target_of(kind, v).ok().map(|t| (t.host, t.port));
            on(p) != on(&planned) && on(&planned).is_some()
        });
        Ok(Refined::new(planned).replace_on(if moved { vec!["server".to_string()] } else { Vec::new() }))
    }

    fn location(&self, kind: &str, value: &Value) -> Option<String> {
        target_of(Kind::of(kind).ok()?, value).ok().map(|t| t.name())
    }

    /// One connection and one script per server; the servers concurrently. A
    /// server that cannot be read fails only its own resources.
    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        let mut by_server: BTreeMap<String, (Target, Vec<usize>)> = BTreeMap::new();
        let mut results: Vec<Result<Option<Value>, ProviderError>> = requests.iter().map(|_| Ok(None)).collect();
        for (i, r) in requests.iter().enumerate() {
            match Kind::of(&r.kind).and_then(|kind| target_of(kind, &r.state)) {
                Ok(target) => by_server.entry(target.name()).or_insert_with(|| (target, Vec::new())).1.push(i),
                Err(e) => results[i] = Err(e),
            }
        }
        let reads = by_server.values().map(|(target, indexes)| async move {
            let batch: Vec<&ReadRequest> = indexes.iter().map(|&i| &requests[i]).collect();
            (indexes, self.read_server(target, &batch).await)
        });
        for (indexes, outcome) in futures_util::future::join_all(reads).await {
            match outcome {
                Ok(values) => {
                    for (&i, value) in indexes.iter().zip(values) {
                        results[i] = Ok(value);
                    }
                }
                Err(e) => {
                    for &i in indexes {
                        results[i] = Err(e.clone());
                    }
                }
            }
        }
        results
    }

    async fn create(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        let kind = Kind::of(kind)?;
        if kind == Kind::Server {
            self.await_login(planned).await?;
        }
        self.write(ctx, kind, None, planned).await
    }

    async fn update(
        &self,
        ctx: &OperationContext,
        kind: &str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        let kind = Kind::of(kind)?;
        let mut updated = self.write(ctx, kind, Some(prior), planned).await?;
        if kind == Kind::Server
            && let (Value::Object(map), Some(recorded)) = (&mut updated, prior.get("host_key_recorded"))
        {
            // The key recorded at creation stays pinned.
            map.insert("host_key_recorded".into(), recorded.clone());
        }
        Ok(updated)
    }

    async fn delete(&self, _ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        let kind = Kind::of(kind)?;
        // Forgetting a server or a package declaration changes nothing there.
        if matches!(kind, Kind::Server | Kind::Package) {
            return Ok(());
        }
        let connection = self.pool.get(&target_of(kind, prior)?).await?;
        let name = kind.name();
        match kind {
            Kind::Server | Kind::Package => Ok(()),
            Kind::File | Kind::Directory | Kind::Permissions => fs::remove(&connection, name, prior).await,
            Kind::Service | Kind::Sysctl => system::remove(&connection, name, prior).await,
            Kind::Timer => timer::remove(&connection, prior).await,
            Kind::Sshd => sshd::remove(&connection, prior).await,
            Kind::Firewall => firewall::remove(&connection).await,
            Kind::Backup => backup::remove(&connection, prior).await,
            Kind::Group | Kind::User | Kind::AuthorizedKey => accounts::remove(&connection, name, prior).await,
        }
    }

    async fn act(
        &self,
        kind: &str,
        state: &Value,
        action: &str,
        args: &[(String, String)],
    ) -> Result<infra_core::ExecOutput, ProviderError> {
        if Kind::of(kind)? != Kind::Backup {
            return Err(ProviderError::invalid("", format!("`{kind}` resources have no `{action}` operation")));
        }
        let connection = self.pool.get(&target_of(Kind::Backup, state)?).await?;
        backup::act(&connection, state, action, args).await
    }

    async fn import(&self, _ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        Err(ProviderError::invalid(
            "",
            format!("`{kind}` {id}: declare it and apply; infra adopts what is already there as it is"),
        ))
    }
}

/// Resources on a server name it: `server = server.NAME`.
fn on_server(schema: Schema) -> Schema {
    schema.attribute(
        "server",
        infra_core::AttributeSchema::required(infra_core::Type::Any)
            .describe("the server it lives on: `server = server.NAME`"),
    )
}
