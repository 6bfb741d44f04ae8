//! The engine: configuration + state → graph → plan → apply.
//!
//! - [`build_graph`]: the dependency graph, with every reference, type and
//!   provider checked and cycles reported;
//! - [`plan()`]: refresh (batched per provider), evaluate in dependency order,
//!   diff each instance against its refreshed state;
//! - [`apply()`]: run a plan concurrently in dependency order, saving state
//!   after every resource operation;
//! - [`import()`]: adopt an existing object into state;
//! - [`rollback`]: put one resource back as an earlier revision state kept.
//!
//! Architecture invariant: the engine names no provider. It talks to backends
//! only through [`infra_core::Provider`], and does no IO of its own except
//! through the [`StateStore`](infra_core::state::StateStore) it is given.

mod adopt;
mod apply;
mod evaluate;
mod graph;
mod imports;
mod instance;
mod moves;
mod plan;
mod propose;
mod providers;
pub mod rollback;
pub mod saved_plan;
mod scope;
mod validate;

use std::collections::BTreeMap;

use infra_core::state::{ResourceState, State, StateStore};
use infra_core::{OperationContext, ProviderRegistry, ResourceAddress, Value};
use infra_lang::{Config, Host};
use infra_syntax::{Code, Diagnostic};
use sha2::Digest as _;

pub use apply::{ApplyOptions, ApplyReport, Event, Interrupt, Observer, apply};
pub use graph::{Graph, Node, build as build_graph, describe as describe_node};
pub use plan::{PlanOptions, plan};
pub use validate::validate;

/// What every engine operation works on.
pub struct Workspace<'a> {
    pub config: &'a Config,
    pub registry: &'a ProviderRegistry,
    pub host: &'a Host,
}

/// A digest of every configuration file and the variables: a saved plan is
/// applied only against the same digest.
pub fn config_digest(config: &Config, variables: &BTreeMap<String, Value>) -> String {
    let mut hasher = sha2::Sha256::new();
    for (_, file) in config.sources.files() {
        hasher.update(file.path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(file.text.as_bytes());
        hasher.update([0]);
    }
    for (name, value) in variables {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.to_json().to_string().as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// The configured provider that manages `address`, for commands that talk to
/// one object outside plan and apply (`import`, `logs`, `exec`): `recorded`
/// is the configuration state says made it (an instance, for a provider with
/// `for_each`), with its settings as state recorded them.
async fn provider_for(
    ws: &Workspace<'_>,
    graph: &Graph,
    address: &ResourceAddress,
    recorded: Option<(&infra_core::ProviderKey, &BTreeMap<infra_core::ProviderKey, Value>)>,
    variables: &BTreeMap<String, Value>,
    code: Code,
) -> Result<(infra_core::ProviderKey, std::sync::Arc<dyn infra_core::Provider>), Vec<Diagnostic>> {
    let m = ws.config.modules.iter().position(|module| address.in_module(&module.path));
    let key = m.and_then(|m| graph.resource_provider.get(&(m, address.kind.clone(), address.name.clone())));
    let Some(provider_key) = key.cloned() else {
        return Err(vec![
            Diagnostic::error(code, format!("{address} is not declared in the configuration"))
                .with_help(format!("add a `{} \"{}\" {{ ... }}` block first", address.kind, address.name)),
        ]);
    };
    let eval = evaluate::Evaluator { config: ws.config, host: ws.host, root_variables: variables };
    // Provider configurations may read variables and locals; evaluate those first.
    // Locals that read resources cannot be known here; a provider configuration
    // that needs one reports it when it is evaluated.
    let mut values = scope::Values::default();
    for node in graph.topological() {
        match &graph.graph[node] {
            variable @ Node::Variable(..) => eval.value_node(&mut values, variable, false).unwrap_or(Ok(()))?,
            other @ (Node::Local(..) | Node::Call(..)) => {
                let _ = eval.value_node(&mut values, other, false);
            }
            _ => {}
        }
    }
    let none = BTreeMap::new();
    let (wanted, settings) = recorded.map_or((None, &none), |(key, settings)| (Some(key), settings));
    let mut configured = providers::configure(ws, &eval, &values, &provider_key, settings).await?;
    let chosen = match wanted {
        Some(key) => configured.iter().position(|(k, _)| k == key),
        None if configured.len() == 1 => Some(0),
        None => None,
    };
    match chosen {
        Some(i) => Ok(configured.swap_remove(i)),
        None => Err(vec![
            Diagnostic::error(code, format!("{address}: which instance of provider `{provider_key}` manages it?"))
                .with_help("importing into a resource whose provider has `for_each` is not supported yet"),
        ]),
    }
}

/// `infra import ADDR ID`: reads an existing object, marks it as this state's,
/// and records it in `state` as the next version in `store` (the caller holds
/// the lock).
pub async fn import(
    ws: &Workspace<'_>,
    graph: &Graph,
    store: &dyn StateStore,
    state: &mut State,
    address: &ResourceAddress,
    id: &str,
    variables: &BTreeMap<String, Value>,
) -> Result<(), Vec<Diagnostic>> {
    if state.resources.contains_key(address) {
        return Err(vec![
            Diagnostic::error(Code::Import, format!("{address} is already managed"))
                .with_help("remove it from state first with `infra state rm` if you mean to re-import it"),
        ]);
    }
    let (provider_key, provider) = provider_for(ws, graph, address, None, variables, Code::Import).await?;
    let ctx = OperationContext::new(state.lineage.clone(), address.clone());
    let failed =
        |e: infra_core::ProviderError| vec![Diagnostic::error(Code::Import, format!("{address}: {}", e.message))];
    let attributes = provider.import(&ctx, &address.kind, id).await.map_err(failed)?;
    provider.claim(&ctx, &address.kind, &attributes).await.map_err(failed)?;
    let resource = ResourceState::imported(provider_key, attributes);
    state.resources.insert(address.clone(), resource);
    let serial = state.serial;
    infra_core::state::manage::save_next(store, state, serial)
        .map_err(|e| vec![Diagnostic::error(Code::State, format!("{address}: imported but not recorded: {e}"))])
}

/// What `infra logs`, `infra exec`, `infra backup ...` and `infra restore` ask
/// of one managed object.
pub enum Inspection<'a> {
    Logs {
        lines: usize,
    },
    Exec {
        argv: &'a [String],
    },
    /// One of the object's own operations (`infra backup run`: "run").
    Act {
        action: &'a str,
        args: &'a [(String, String)],
    },
}

/// What an [`Inspection`] found.
pub enum Inspected {
    Logs(String),
    Exec(infra_core::ExecOutput),
    Act(infra_core::ExecOutput),
}

/// `infra logs ADDR` / `infra exec ADDR -- CMD`: asks the provider about one
/// object recorded in state.
pub async fn inspect(
    ws: &Workspace<'_>,
    graph: &Graph,
    state: &State,
    address: &ResourceAddress,
    inspection: Inspection<'_>,
    variables: &BTreeMap<String, Value>,
) -> Result<Inspected, Vec<Diagnostic>> {
    let Some(recorded) = state.resources.get(address) else {
        return Err(vec![
            Diagnostic::error(Code::NotInState, format!("{address} is not in state"))
                .with_help("`infra state list` shows what is; apply first if it was never created"),
        ]);
    };
    let recorded_by = Some((&recorded.provider, &state.providers));
    let (_, provider) = provider_for(ws, graph, address, recorded_by, variables, Code::Inspect).await?;
    let failed =
        |e: infra_core::ProviderError| vec![Diagnostic::error(Code::Provider, format!("{address}: {}", e.message))];
    match inspection {
        Inspection::Logs { lines } => {
            provider.logs(&address.kind, &recorded.attributes, lines).await.map(Inspected::Logs).map_err(failed)
        }
        Inspection::Exec { argv } => {
            provider.exec(&address.kind, &recorded.attributes, argv).await.map(Inspected::Exec).map_err(failed)
        }
        Inspection::Act { action, args } => {
            provider.act(&address.kind, &recorded.attributes, action, args).await.map(Inspected::Act).map_err(failed)
        }
    }
}
