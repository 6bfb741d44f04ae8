//! Configuring a provider, the same way for plan, apply, import and the
//! commands that talk to one object: find its factory by the key's name,
//! evaluate its block against the factory's schema, then connect.
//!
//! Evaluating is separate from connecting so that apply can evaluate on its
//! one orchestrating task and connect concurrently with other work.

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

/// Evaluates the configuration block of `key` (an empty one when there is none).
pub(crate) fn settings(
    ws: &Workspace<'_>,
    eval: &Evaluator<'_>,
    values: &Values,
    key: &ProviderKey,
) -> Result<Settings, Vec<Diagnostic>> {
    let Some(factory) = ws.registry.get(key.name()) else {
        return Err(vec![Diagnostic::error(
            Code::UnknownProvider,
            format!("state uses provider `{}`, which this infra does not have", key.name()),
        )]);
    };
    let config = eval.provider_config(values, key, &factory.schema().config)?;
    Ok(Settings { key: key.clone(), factory: factory.clone(), config })
}

impl Settings {
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

/// Evaluates and connects in one go (plan, import, inspect).
pub(crate) async fn configure(
    ws: &Workspace<'_>,
    eval: &Evaluator<'_>,
    values: &Values,
    key: &ProviderKey,
) -> Result<Arc<dyn Provider>, Vec<Diagnostic>> {
    let settings = settings(ws, eval, values, key)?;
    settings.connect().await.map_err(|e| vec![settings.refused(&e)])
}

/// The schema of resource type `kind` as the provider of `key` defines it.
pub(crate) fn resource_schema<'a>(ws: &Workspace<'a>, key: &ProviderKey, kind: &str) -> Option<&'a Schema> {
    ws.registry.get(key.name()).and_then(|f| f.schema().resources.get(kind))
}
