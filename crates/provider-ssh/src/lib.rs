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
use infra_ssh::{Connection, Pool, Target};

pub struct SshFactory;

static SCHEMA: LazyLock<ProviderSchema> = LazyLock::new(|| ProviderSchema {
    config: Schema::new("Servers reached over SSH; each `server` resource says how."),
    resources: [
        ("server", server::schema()),
        ("file", fs::file_schema()),
        ("directory", fs::directory_schema()),
        ("permissions", fs::permissions_schema()),
        ("group", accounts::group_schema()),
        ("user", accounts::user_schema()),
        ("authorized_key", accounts::key_schema()),
        ("package", packages::schema()),
        ("service", system::service_schema()),
        ("sysctl", system::sysctl_schema()),
        ("timer", timer::schema()),
        ("sshd", sshd::schema()),
        ("firewall", firewall::schema()),
        ("backup", backup::schema()),
    ]
    .into_iter()
    .collect(),
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
fn questions(kind: &str, state: &Value) -> Vec<Question> {
    match kind {
        "file" | "directory" | "permissions" => fs::questions(kind, state),
        "group" | "user" | "authorized_key" => vec![accounts::question(kind, state)],
        "package" => packages::questions(state),
        "service" | "sysctl" => vec![system::question(kind, state)],
        "timer" => timer::questions(state),
        "sshd" => vec![sshd::question(state)],
        "firewall" => vec![firewall::question()],
        "backup" => backup::questions(state),
        _ => Vec::new(),
    }
}

/// A resource as refresh finds it, from the answers; `None` when it is gone.
fn observed(kind: &str, state: &Value, connection: &Connection, facts: &Facts) -> Option<Value> {
    match kind {
        "server" => Some(server::observed(state, connection, facts)),
        "file" | "directory" | "permissions" => fs::observed(kind, state, facts),
        "group" | "user" | "authorized_key" => accounts::observed(kind, state, facts),
        "package" => Some(packages::observed(state, facts)),
        "service" | "sysctl" => system::observed(kind, state, facts),
        "timer" => timer::observed(state, facts),
        "sshd" => sshd::observed(state, facts),
        "firewall" => firewall::observed(state, facts),
        "backup" => backup::observed(state, facts),
        _ => None,
    }
}

/// The server a resource's value says it is on: itself for a `server`.
fn target_of(kind: &str, value: &Value) -> Result<Target, ProviderError> {
    match kind {
        "server" => Target::from_value(value),
        _ => Target::from_value(value.get("server").unwrap_or(&Value::Null)),
    }
}

impl SshProvider {
    /// Creates or updates one resource: the same convergent script either way.
    async fn write(
        &self,
        ctx: &OperationContext,
        kind: &str,
        prior: Option<&Value>,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        let target = target_of(kind, planned)?;
        let connection = self.pool.get(&target).await?;
        match kind {
            "server" => {
                let facts = facts::gather(&connection, &[]).await?;
                Ok(server::observed(planned, &connection, &facts))
            }
            "file" | "directory" | "permissions" => fs::write(&connection, kind, planned).await,
            "package" => packages::write(&connection, planned).await,
            "service" | "sysctl" => system::write(&connection, kind, prior, planned).await,
            "timer" => timer::write(&connection, planned).await,
            "sshd" => sshd::write(&self.pool, &connection, &target, planned).await,
            "firewall" => firewall::write(&self.pool, &connection, &target, ctx, planned).await,
            "backup" => backup::write(&connection, ctx, planned).await,
            _ => accounts::write(&connection, kind, planned).await,
        }
    }

    /// A machine just started (a cloud instance) takes a while to answer SSH:
    /// with `wait_seconds`, logins that cannot connect are retried that long.
    async fn await_login(&self, planned: &Value) -> Result<(), ProviderError> {
        let limit = planned.get("wait_seconds").and_then(Value::as_number).unwrap_or(0.0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(limit.max(0.0));
        let target = target_of("server", planned)?;
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
        let questions: Vec<Question> = requests.iter().flat_map(|r| questions(&r.kind, &r.state)).collect();
        let facts = facts::gather(&connection, &questions).await?;
        Ok(requests.iter().map(|r| observed(&r.kind, &r.state, &connection, &facts)).collect())
    }
}

#[async_trait]
impl Provider for SshProvider {
    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        match kind {
            "server" => server::validate(config),
            "file" | "directory" | "permissions" => fs::validate(kind, config),
            "package" => packages::validate(config),
            "service" | "sysctl" => system::validate(kind, config),
            "timer" => timer::validate(config),
            "sshd" => sshd::validate(config),
            "firewall" => firewall::validate(config),
            "backup" => backup::validate(config),
            _ => accounts::validate(kind, config),
        }
    }

    fn plan(&self, kind: &str, prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        let planned = match kind {
            "server" => return Ok(Refined::new(server::plan(proposed))),
            "file" | "directory" | "permissions" => fs::plan(kind, proposed)?,
            "package" => packages::plan(proposed),
            "service" | "sysctl" => system::plan(kind, proposed),
            "timer" => timer::plan(proposed),
            "sshd" => sshd::plan(proposed),
            "firewall" => firewall::plan(prior, proposed),
            "backup" => backup::plan(prior, proposed),
            _ => accounts::plan(kind, proposed),
        };
        // Moving a resource to another machine makes a new one there.
        let moved = prior.is_some_and(|p| {
            let on = |v: &Value| target_of(kind, v).ok().map(|t| (t.host, t.port));
            on(p) != on(&planned) && on(&planned).is_some()
        });
        Ok(Refined::new(planned).replace_on(if moved { vec!["server".to_string()] } else { Vec::new() }))
    }

    fn location(&self, kind: &str, value: &Value) -> Option<String> {
        target_of(kind, value).ok().map(|t| t.name())
    }

    /// One connection and one script per server; the servers concurrently. A
    /// server that cannot be read fails only its own resources.
    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        let mut by_server: BTreeMap<String, (Target, Vec<usize>)> = BTreeMap::new();
        let mut results: Vec<Result<Option<Value>, ProviderError>> = requests.iter().map(|_| Ok(None)).collect();
        for (i, r) in requests.iter().enumerate() {
            match target_of(&r.kind, &r.state) {
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
        if kind == "server" {
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
        let mut updated = self.write(ctx, kind, Some(prior), planned).await?;
        if kind == "server"
            && let (Value::Object(map), Some(recorded)) = (&mut updated, prior.get("host_key_recorded"))
        {
            // The key recorded at creation stays pinned.
            map.insert("host_key_recorded".into(), recorded.clone());
        }
        Ok(updated)
    }

    async fn delete(&self, _ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        // Forgetting a server or a package declaration changes nothing there.
        if matches!(kind, "server" | "package") {
            return Ok(());
        }
        let connection = self.pool.get(&target_of(kind, prior)?).await?;
        match kind {
            "file" | "directory" | "permissions" => fs::remove(&connection, kind, prior).await,
            "service" | "sysctl" => system::remove(&connection, kind, prior).await,
            "timer" => timer::remove(&connection, prior).await,
            "sshd" => sshd::remove(&connection, prior).await,
            "firewall" => firewall::remove(&connection).await,
            "backup" => backup::remove(&connection, prior).await,
            _ => accounts::remove(&connection, kind, prior).await,
        }
    }

    async fn act(
        &self,
        kind: &str,
        state: &Value,
        action: &str,
        args: &[(String, String)],
    ) -> Result<infra_core::ExecOutput, ProviderError> {
        if kind != "backup" {
            return Err(ProviderError::invalid("", format!("`{kind}` resources have no `{action}` operation")));
        }
        let connection = self.pool.get(&target_of(kind, state)?).await?;
        backup::act(&connection, state, action, args).await
    }

    async fn import(&self, _ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        Err(ProviderError::invalid(
            "",
            format!("`{kind}` {id}: declare it and apply; infra adopts what is already there as it is"),
        ))
    }
}

/// A list-of-strings attribute (sensitive marks dropped).
fn strings(value: &Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(Value::as_list)
        .map(|l| l.iter().filter_map(|v| v.peel().as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Resources on a server name it: `server = server.NAME`.
fn on_server(schema: Schema) -> Schema {
    schema.attribute(
        "server",
        infra_core::AttributeSchema::required(infra_core::Type::Any)
            .describe("the server it lives on: `server = server.NAME`"),
    )
}

/// A string attribute, empty when unset.
fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn set(value: &mut Value, key: &str, v: Value) {
    if let Value::Object(map) = value {
        map.insert(key.to_string(), v);
    }
}
