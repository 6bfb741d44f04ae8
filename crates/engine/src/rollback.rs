//! `infra rollback ADDR`: one resource put back as an earlier revision state
//! kept of it recorded it. The revision's settings stand in for the block's
//! (`PlanOptions::restore`), so the plan, its review and the apply are the
//! ones any change goes through; only that instance is planned.

use std::collections::BTreeMap;

use infra_core::plan::{Plan, PlanMode, Restore};
use infra_core::state::{ResourceState, State};
use infra_core::{ResourceAddress, Schema, Value};
use infra_syntax::{Code, Diagnostic};

use crate::{Graph, PlanOptions, Workspace};

/// One kept revision, as `infra rollback -list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// 1 for the newest (what `infra rollback` puts back by default).
    pub number: usize,
    /// The settings in which it differs from the object now.
    pub differs: Vec<String>,
}

/// The revisions state keeps of `address`, newest first.
pub fn revisions(ws: &Workspace<'_>, state: &State, address: &ResourceAddress) -> Result<Vec<Revision>, Diagnostic> {
    let (record, schema) = recorded(ws, state, address)?;
    let now = schema.settings_of(&record.attributes);
    let differs = |earlier: &Value| -> Vec<String> {
        let then = schema.settings_of(earlier);
        schema.writable_names().filter(|k| Value::differs(now.get(k), then.get(k))).map(str::to_string).collect()
    };
    Ok(record.revisions.iter().enumerate().map(|(i, r)| Revision { number: i + 1, differs: differs(r) }).collect())
}

/// The plan that puts `address` back as revision `number` (1 = the newest
/// kept) recorded it. The caller holds the lock and applies the plan.
pub async fn plan(
    ws: &Workspace<'_>,
    graph: &Graph,
    state: &State,
    address: &ResourceAddress,
    number: usize,
    variables: &BTreeMap<String, Value>,
) -> Result<Plan, Vec<Diagnostic>> {
    let (record, schema) = recorded(ws, state, address).map_err(|d| vec![d])?;
    let Some(earlier) = number.checked_sub(1).and_then(|i| record.revisions.get(i)) else {
        return Err(vec![no_such_revision(address, number, record.revisions.len())]);
    };
    let recorded_by = Some((&record.provider, &state.providers));
    let (_, provider) = crate::provider_for(ws, graph, address, recorded_by, variables, Code::Rollback).await?;
    let restored = provider.restore(&address.kind, earlier.clone()).await.map_err(|e| {
        vec![Diagnostic::error(Code::Rollback, format!("{address}: revision {number}: {}", earlier.redact(&e.message)))]
    })?;
    let options = PlanOptions {
        mode: PlanMode::Normal,
        refresh: true,
        targets: vec![address.clone()],
        replace: Vec::new(),
        variables: variables.clone(),
        restore: BTreeMap::from([(
            address.clone(),
            Restore { settings: schema.settings_of(&restored), revision: earlier.clone() },
        )]),
    };
    crate::plan(ws, graph, state, &options).await
}

/// The record of `address` and its type's schema, when the type keeps revisions.
fn recorded<'s>(
    ws: &Workspace<'_>,
    state: &'s State,
    address: &ResourceAddress,
) -> Result<(&'s ResourceState, Schema), Diagnostic> {
    let Some(record) = state.resources.get(address) else {
        return Err(Diagnostic::error(Code::Rollback, format!("{address} is not in state"))
            .with_help("`infra state list` shows what state records"));
    };
    let schema = crate::providers::resource_schema(ws, &record.provider, &address.kind).cloned().unwrap_or_default();
    if !schema.keeps_revisions {
        return Err(Diagnostic::error(
            Code::Rollback,
            format!("`{}` resources keep no earlier revisions", address.kind),
        )
        .with_help("a container keeps its last 3; for other types, change the configuration and apply"));
    }
    Ok((record, schema))
}

fn no_such_revision(address: &ResourceAddress, number: usize, kept: usize) -> Diagnostic {
    let message = match kept {
        0 => format!("{address} has no earlier revision to roll back to"),
        _ => format!("{address} has no revision {number}: state keeps {kept} (1 is the newest)"),
    };
    Diagnostic::error(Code::Rollback, message).with_help(
        "a revision is kept each time an apply changes the object; `infra rollback -list ADDR` shows those kept",
    )
}
