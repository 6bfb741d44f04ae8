//! The `local` provider: files, directories, random values and commands on the
//! machine running `infra`. It needs no server, so every engine behaviour can be
//! tested with it, and users use it for generated config files, secrets and hooks.
//!
//! Resources: `file`, `directory`, `random_id`, `random_password`, `exec`.

mod exec;
mod fs;
mod random;

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use infra_core::{
    OperationContext, Provider, ProviderError, ProviderFactory, ProviderSchema, ReadRequest, Refined, Schema, Value,
};

pub struct LocalFactory;

static SCHEMA: LazyLock<ProviderSchema> = LazyLock::new(|| ProviderSchema {
    config: Schema::new("The local provider takes no settings."),
    resources: [
        ("file", fs::file_schema()),
        ("directory", fs::directory_schema()),
        ("random_id", random::id_schema()),
        ("random_password", random::password_schema()),
        ("exec", exec::schema()),
    ]
    .into_iter()
    .collect(),
});

#[async_trait]
impl ProviderFactory for LocalFactory {
    fn schema(&self) -> &ProviderSchema {
        &SCHEMA
    }

    async fn configure(&self, _config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(LocalProvider))
    }
}

pub struct LocalProvider;

fn unknown_kind(kind: &str) -> ProviderError {
    ProviderError::invalid("", format!("the local provider has no resource type `{kind}`"))
}

#[async_trait]
impl Provider for LocalProvider {
    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        match kind {
            "file" => fs::validate_file(config),
            "exec" => exec::validate(config),
            "random_id" | "random_password" => random::validate(kind, config),
            _ => Vec::new(),
        }
    }

    fn plan(&self, kind: &str, _prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        match kind {
            "file" => fs::plan_file(proposed).map(Refined::new),
            "directory" => Ok(Refined::new(fs::with_id_from_path(proposed))),
            _ => Ok(Refined::new(proposed)),
        }
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        let requests = requests.to_vec();
        // One blocking batch for the whole refresh: no per-file task overhead.
        let batch = tokio::task::spawn_blocking(move || {
            requests
                .iter()
                .map(|r| match r.kind.as_str() {
                    "file" => fs::read_file(&r.state),
                    "directory" => fs::read_directory(&r.state),
                    "random_id" | "random_password" | "exec" => Ok(Some(r.state.clone())),
                    other => Err(unknown_kind(other)),
                })
                .collect::<Vec<_>>()
        });
        match batch.await {
            Ok(results) => results,
            Err(e) => vec![Err(ProviderError::failed(format!("refresh task failed: {e}")))],
        }
    }

    async fn create(&self, _ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        match kind {
            "file" => blocking(planned, fs::write_file).await,
            "directory" => blocking(planned, fs::create_directory).await,
            "random_id" | "random_password" => random::create(kind, planned),
            "exec" => exec::run(planned).await,
            other => Err(unknown_kind(other)),
        }
    }

    async fn update(
        &self,
        ctx: &OperationContext,
        kind: &str,
        _prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        match kind {
            // Writing is idempotent: update is create over the existing object.
            "file" | "directory" => self.create(ctx, kind, planned).await,
            // Only keepers/triggers changes matter and they force replacement;
            // anything else is recorded as is.
            _ => Ok(planned.clone()),
        }
    }

    async fn delete(&self, _ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        match kind {
            "file" => blocking(prior, fs::delete_file).await,
            "directory" => blocking(prior, fs::delete_directory).await,
            "random_id" | "random_password" | "exec" => Ok(()),
            other => Err(unknown_kind(other)),
        }
    }

    async fn import(&self, _ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        let stub = Value::object([("path", Value::string(id))]);
        let found = match kind {
            "file" => fs::read_file(&stub)?,
            "directory" => fs::read_directory(&stub)?,
            other => {
                return Err(ProviderError::invalid(
                    "",
                    format!("`{other}` cannot be imported: it has nothing to read back"),
                ));
            }
        };
        found.ok_or_else(|| ProviderError::failed(format!("nothing exists at {id}")))
    }
}

/// Runs filesystem work off the async workers.
async fn blocking<T: Send + 'static>(
    value: &Value,
    f: fn(&Value) -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    let value = value.clone();
    tokio::task::spawn_blocking(move || f(&value))
        .await
        .map_err(|e| ProviderError::failed(format!("task failed: {e}")))?
}

pub(crate) fn str_attr<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}
