//! Configuring a provider, the same way for plan, apply, import and the
//! commands that talk to one object: find its factory by the key's name,
//! evaluate its block against the factory's schema, then connect.
//!
//! Evaluating is separate from connecting so that apply can evaluate on its
//! one orchestrating task and connect concurrently with other work.

use std::collections::BTreeMap;
use std::sync::Arc;

use infra_core::{Provider, ProviderError, ProviderFactory, ProviderKey, Schema, Value};
use infra_syntax::{Code, Diagnostic};

use crate::Workspace;
use crate::evaluate::Evaluator;
use crate::scope::Values;

/// A provider configuration evaluated and ready to connect.
pub(crate) struct Settings {
    key: ProviderKey,
    factory: Arc<dyn ProviderFactory>,
    config: Value,
}

/// Evaluates the configuration block `block` (an empty one when there is
/// none): one `Settings` per instance of a block with `for_each`, and for
/// instances it no longer makes but `recorded` (state) has, the settings they
/// were last configured with, so they can still destroy what they made.
pub(crate) fn settings(
    ws: &Workspace<'_>,
    eval: &Evaluator<'_>,
    values: &Values,
    block: &ProviderKey,
    recorded: &BTreeMap<ProviderKey, Value>,
) -> Result<Vec<Settings>, Vec<Diagnostic>> {
    let Some(factory) = ws.registry.get(block.name()) else {
        return Err(vec![Diagnostic::error(
            Code::UnknownProvider,
            format!("state uses provider `{}`, which this infra does not have", block.name()),
        )]);
    };
    let mut all = Vec::new();
    let in_config = ws.config.root().providers.iter().any(|p| p.reference.key() == *block);
    if in_config || !recorded.keys().any(|k| k.block() == *block) {
        for repetition in eval.provider_repetitions(values, block)? {
            let key = block.instance(repetition.key());
            let config = eval.provider_config(values, &key, repetition, &factory.schema().config)?;
            all.push(Settings { key, factory: factory.clone(), config });
        }
    }
    let gone: Vec<(&ProviderKey, &Value)> =
        recorded.iter().filter(|(k, _)| k.block() == *block && !all.iter().any(|s| s.key == **k)).collect();
    for (key, config) in gone {
        all.push(Settings { key: key.clone(), factory: factory.clone(), config: config.clone() });
    }
    Ok(all)
}

impl Settings {
    /// The configuration, or its instance, these settings are for.
    pub(crate) fn key(&self) -> &ProviderKey {
        &self.key
    }

    /// The evaluated block, as state records it for an instance of a block with `for_each`.
    pub(crate) fn config(&self) -> &Value {
        &self.config
    }

    /// Connects; the error is the provider's own, for [`refused`] to report.
    pub(crate) async fn connect(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        self.factory.configure(&self.config).await
    }

    /// The diagnostic for a failed [`Settings::connect`], any secret of the
    /// configuration that the provider quoted taken out.
    pub(crate) fn refused(&self, e: &ProviderError) -> Diagnostic {
        Diagnostic::error(Code::Provider, format!("provider `{}`: {}", self.key, self.config.redact(&e.message)))
    }
}

/// Evaluates and connects every instance of `block` in one go (plan, import, inspect).
pub(crate) async fn configure(
    ws: &Workspace<'_>,
    eval: &Evaluator<'_>,
    values: &Values,
    block: &ProviderKey,
    recorded: &BTreeMap<ProviderKey, Value>,
) -> Result<Vec<(ProviderKey, Arc<dyn Provider>)>, Vec<Diagnostic>> {
    let mut configured = Vec::new();
    for settings in settings(ws, eval, values, block, recorded)? {
        let provider = settings.connect().await.map_err(|e| vec![settings.refused(&e)])?;
        configured.push((settings.key, provider));
    }
    Ok(configured)
}

/// The schema of resource type `kind` as the provider of `key` defines it.
pub(crate) fn resource_schema<'a>(ws: &Workspace<'a>, key: &ProviderKey, kind: &str) -> Option<&'a Schema> {
    ws.registry.get(key.name()).and_then(|f| f.schema().resources.get(kind))
}

/// Stands in at plan time for a provider whose settings read values known
/// only after apply (a server's address): changes through it are planned from
/// the configuration alone, and apply configures the real one once the values
/// are known.
pub(crate) struct ConfiguredAtApply {
    key: ProviderKey,
}

impl ConfiguredAtApply {
    pub(crate) fn standing_in_for(key: ProviderKey) -> Arc<dyn Provider> {
        Arc::new(ConfiguredAtApply { key })
    }

    fn not_yet(&self) -> ProviderError {
        ProviderError::failed(format!("provider `{}` is configured at apply, once its settings are known", self.key))
    }
}

#[async_trait::async_trait]
impl Provider for ConfiguredAtApply {
    async fn read(&self, requests: &[infra_core::ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        requests.iter().map(|_| Err(self.not_yet())).collect()
    }

    async fn create(&self, _: &infra_core::OperationContext, _: &str, _: &Value) -> Result<Value, ProviderError> {
        Err(self.not_yet())
    }

    async fn update(
        &self,
        _: &infra_core::OperationContext,
        _: &str,
        _: &Value,
        _: &Value,
    ) -> Result<Value, ProviderError> {
        Err(self.not_yet())
    }

    async fn delete(&self, _: &infra_core::OperationContext, _: &str, _: &Value) -> Result<(), ProviderError> {
        Err(self.not_yet())
    }

    async fn import(&self, _: &infra_core::OperationContext, _: &str, _: &str) -> Result<Value, ProviderError> {
        Err(self.not_yet())
    }
}
