//! The `ssh` provider: servers reached over SSH (russh), and what lives on
//! them (`file`, `directory`). Agentless: every change is a fixed script run
//! over one shared connection per server, user data passed as quoted
//! arguments or on stdin (`shell.rs`), never spliced into the script.
//!
//! Refresh costs one round trip per server, whatever the number of resources
//! on it (`facts.rs`), and the servers of a fleet are read concurrently.

mod connection;
mod facts;
mod fs;
mod server;
mod shell;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use infra_core::{
    OperationContext, Provider, ProviderError, ProviderFactory, ProviderSchema, ReadRequest, Refined, Schema, Value,
};

use crate::connection::{Pool, Target};

pub struct SshFactory;

static SCHEMA: LazyLock<ProviderSchema> = LazyLock::new(|| ProviderSchema {
    config: Schema::new("Servers reached over SSH; each `server` resource says how."),
    resources: [("server", server::schema()), ("file", fs::file_schema()), ("directory", fs::directory_schema())]
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

/// The server a resource's value says it is on: itself for a `server`.
fn target_of(kind: &str, value: &Value) -> Result<Target, ProviderError> {
    match kind {
        "server" => Target::from_value(value),
        _ => Target::from_value(value.get("server").unwrap_or(&Value::Null)),
    }
}

impl SshProvider {
    /// Everything refresh needs from one server, in one round trip.
    async fn read_server(
        &self,
        target: &Target,
        requests: &[&ReadRequest],
    ) -> Result<Vec<Option<Value>>, ProviderError> {
        let connection = self.pool.get(target).await?;
        let paths: Vec<String> = requests
            .iter()
            .filter(|r| r.kind != "server")
            .filter_map(|r| r.state.get("path").and_then(Value::as_str).map(str::to_string))
            .collect();
        let facts = facts::gather(&connection, &paths).await?;
        Ok(requests
            .iter()
            .map(|r| match r.kind.as_str() {
                "server" => Some(server::observed(&r.state, &connection, &facts)),
                kind => {
                    let path = r.state.get("path").and_then(Value::as_str).unwrap_or_default();
                    fs::observed(kind, &r.state, facts.paths.get(path))
                }
            })
            .collect())
    }
}

#[async_trait]
impl Provider for SshProvider {
    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        match kind {
            "server" => server::validate(config),
            _ => fs::validate(kind, config),
        }
    }

    fn plan(&self, kind: &str, prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        if kind == "server" {
            return Ok(Refined::new(server::plan(proposed)));
        }
        let planned = fs::plan(kind, proposed)?;
        // Moving a resource to another machine makes a new one there.
        let moved = prior.is_some_and(|p| {
            let on = |v: &Value| target_of(kind, v).ok().map(|t| (t.host, t.port));
            on(p) != on(&planned) && on(&planned).is_some()
        });
        Ok(Refined::new(planned).replace_on(if moved { vec!["server".to_string()] } else { Vec::new() }))
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

    async fn create(&self, _ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        let connection = self.pool.get(&target_of(kind, planned)?).await?;
        match kind {
            "server" => {
                let facts = facts::gather(&connection, &[]).await?;
                Ok(server::observed(planned, &connection, &facts))
            }
            _ => fs::write(&connection, kind, planned).await,
        }
    }

    async fn update(
        &self,
        ctx: &OperationContext,
        kind: &str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        if kind == "server" {
            let mut updated = self.create(ctx, kind, planned).await?;
            // The key recorded at creation stays pinned.
            if let (Value::Object(map), Some(recorded)) = (&mut updated, prior.get("host_key_recorded")) {
                map.insert("host_key_recorded".into(), recorded.clone());
            }
            return Ok(updated);
        }
        self.create(ctx, kind, planned).await
    }

    async fn delete(&self, _ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        if kind == "server" {
            return Ok(());
        }
        let connection = self.pool.get(&target_of(kind, prior)?).await?;
        fs::remove(&connection, kind, prior).await
    }

    async fn import(&self, _ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        Err(ProviderError::invalid(
            "",
            format!("`{kind}` {id}: declare it and apply; infra adopts what is already there as it is"),
        ))
    }
}
