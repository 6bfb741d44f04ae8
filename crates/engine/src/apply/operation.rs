//! One operation of an apply, as the orchestrator hands it to a concurrent
//! task: configure a provider, write (create or update) an instance, or remove
//! one. Each kind carries exactly what it needs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use infra_core::plan::Action;
use infra_core::{OperationContext, Provider, ProviderError, ProviderKey, ResourceAddress, Schema, Value};

use crate::adopt::create_or_adopt;
use crate::providers::Settings;

pub(super) struct Op {
    /// The schedule step it belongs to.
    pub step: usize,
    pub provider: ProviderKey,
    pub work: Work,
}

pub(super) enum Work {
    /// Connect a provider whose settings are evaluated.
    Configure(Settings),
    Write(Box<Write>),
    Remove(Removal),
}

/// A create (action `Create` or `Replace`) or an update (`Update`).
pub(super) struct Write {
    pub address: ResourceAddress,
    pub action: Action,
    /// The object it updates, or the one a replacement replaces.
    pub prior: Option<Value>,
    pub planned: Value,
    pub dependencies: Vec<ResourceAddress>,
    pub create_before_destroy: bool,
    pub schema: Schema,
    /// The earlier revisions state keeps once it is done (`OperationContext::kept`).
    pub kept: Vec<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RemovalKind {
    Delete,
    /// The old object of a create-before-destroy replacement: state already
    /// records the new one at the address.
    DeleteReplaced,
    /// `abandon_on_destroy`: out of state, the object left alone.
    Forget,
}

pub(super) struct Removal {
    pub address: ResourceAddress,
    pub prior: Value,
    pub kind: RemovalKind,
    /// The earlier revisions state keeps once it is done: those of the
    /// replacement, or none when the object is destroyed.
    pub kept: Vec<Value>,
}

pub(super) enum Done {
    Configured(Arc<dyn Provider>),
    Written(Value),
    Removed,
}

/// A finished operation: what it was, how it went, how long it took.
pub(super) type Finished = (Op, Result<Done, ProviderError>, Duration);

impl Op {
    /// The instance it works on; `None` for configuring a provider.
    pub(super) fn address(&self) -> Option<&ResourceAddress> {
        match &self.work {
            Work::Configure(_) => None,
            Work::Write(w) => Some(&w.address),
            Work::Remove(r) => Some(&r.address),
        }
    }

    /// The change it carries out, as the plan shows it.
    pub(super) fn action(&self) -> Action {
        match &self.work {
            Work::Configure(_) => Action::NoOp,
            Work::Write(w) => w.action,
            Work::Remove(_) => Action::Delete,
        }
    }

    /// The value that says where the object lives: planned, else recorded.
    pub(super) fn value(&self) -> Option<&Value> {
        match &self.work {
            Work::Configure(_) => None,
            Work::Write(w) => Some(&w.planned),
            Work::Remove(r) => Some(&r.prior),
        }
    }

    /// Every value it was handed, for scrubbing secrets out of an answer.
    pub(super) fn values(&self) -> Vec<&Value> {
        match &self.work {
            Work::Configure(_) => Vec::new(),
            Work::Write(w) => std::iter::once(&w.planned).chain(&w.prior).collect(),
            Work::Remove(r) => vec![&r.prior],
        }
    }

    /// What it was doing, for "… failed" messages.
    pub(super) fn verb(&self) -> &'static str {
        match &self.work {
            Work::Configure(_) => "configuring",
            Work::Write(w) if w.action == Action::Update => "updating",
            Work::Write(_) => "creating",
            Work::Remove(r) if r.kind == RemovalKind::Forget => "forgetting",
            Work::Remove(_) => "deleting",
        }
    }
}

/// Runs `op`: `provider` is the configured provider (any for `Configure`).
pub(super) async fn run(op: Op, provider: Option<Arc<dyn Provider>>, lineage: String) -> Finished {
    let started = Instant::now();
    let outcome = execute(&op, provider, lineage).await;
    (op, outcome, started.elapsed())
}

async fn execute(op: &Op, provider: Option<Arc<dyn Provider>>, lineage: String) -> Result<Done, ProviderError> {
    let configured = || {
        provider.clone().ok_or_else(|| ProviderError::failed(format!("provider `{}` is not configured", op.provider)))
    };
    match &op.work {
        Work::Configure(settings) => settings.connect().await.map(Done::Configured),
        Work::Write(w) => {
            let provider = configured()?;
            let replacing = if w.action == Action::Replace { w.prior.clone() } else { None };
            let ctx = OperationContext { lineage, address: w.address.clone(), replacing, kept: w.kept.clone() };
            if w.action == Action::Update {
                let prior = w.prior.as_ref().unwrap_or(&Value::Null);
                provider.update(&ctx, &w.address.kind, prior, &w.planned).await.map(Done::Written)
            } else {
                create_or_adopt(&*provider, &ctx, Some(&w.schema), &w.planned).await.map(Done::Written)
            }
        }
        Work::Remove(r) if r.kind == RemovalKind::Forget => Ok(Done::Removed),
        Work::Remove(r) => {
            let provider = configured()?;
            let ctx = OperationContext { kept: r.kept.clone(), ..OperationContext::new(lineage, r.address.clone()) };
            provider.delete(&ctx, &r.address.kind, &r.prior).await.map(|()| Done::Removed)
        }
    }
}
