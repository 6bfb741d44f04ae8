//! A plan saved with `plan -out FILE` and applied later: it is applied only
//! against the state and configuration it was made from, and the secrets the
//! file withholds are put back from the inputs given now (variables first,
//! then a fresh plan of the same inputs), only where their digests match.

use std::collections::BTreeMap;

use infra_core::Value;
use infra_core::plan::{Plan, UnsealError};
use infra_core::state::State;
use infra_lang::Config;
use infra_syntax::Diagnostic;

use crate::graph::Graph;
use crate::{PlanOptions, Workspace, config_digest};

/// Why a saved plan cannot be applied as it is.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("the state was created since the plan was made")]
    StateCreatedSince,
    #[error("the saved plan was made for a different state (lineage mismatch)")]
    OtherLineage,
    #[error("the state changed since the plan was made (serial {then} then, {now} now)")]
    StateChanged { then: u64, now: u64 },
    #[error("the configuration changed since the plan was made")]
    ConfigChanged,
    #[error(transparent)]
    Withheld(#[from] UnsealError),
    /// Planning again to recover withheld secrets failed; the diagnostics say why.
    #[error("planning again to recover the withheld secrets failed")]
    Replan(Vec<Diagnostic>),
}

impl SavedPlanError {
    pub fn help(&self) -> &'static str {
        match self {
            SavedPlanError::StateCreatedSince | SavedPlanError::OtherLineage => {
                "make a new plan against this state with `infra plan -out FILE`"
            }
            SavedPlanError::StateChanged { .. } | SavedPlanError::ConfigChanged | SavedPlanError::Replan(_) => {
                "make a new plan with `infra plan -out FILE` and review it again"
            }
            SavedPlanError::Withheld(_) => {
                "a saved plan holds no secret: give apply the same variables, environment and state as the plan \
                 had (-var, -var-file, INFRA_VAR_*, env()), or make a new plan and review it again"
            }
        }
    }
}

/// Puts back the sensitive root variables the file withheld, from `given`.
/// Done before anything else: the configuration digest covers them.
pub fn unseal_variables(plan: &mut Plan, given: &BTreeMap<String, Value>) -> Result<(), SavedPlanError> {
    if plan.withholds() {
        plan.unseal_variables(given)?;
    }
    Ok(())
}

/// Refuses a plan made against another state, an older serial of this one, or
/// another configuration.
pub fn check(config: &Config, plan: &Plan, state: &State) -> Result<(), SavedPlanError> {
    if plan.lineage != state.lineage {
        return Err(if plan.prior_serial == 0 {
            SavedPlanError::StateCreatedSince
        } else {
            SavedPlanError::OtherLineage
        });
    }
    if plan.prior_serial != state.serial {
        return Err(SavedPlanError::StateChanged { then: plan.prior_serial, now: state.serial });
    }
    if config_digest(config, &plan.variables) != plan.config_digest {
        return Err(SavedPlanError::ConfigChanged);
    }
    Ok(())
}

/// Readies a saved plan (its variables already unsealed) for apply against the
/// stored state: checks it, and puts back the secrets it withheld from a fresh
/// plan of the same inputs. Returns the state to apply it to (a plan made
/// before any state existed applies to a new one of the plan's lineage).
pub async fn ready(
    ws: &Workspace<'_>,
    graph: &Graph,
    plan: &mut Plan,
    stored: Option<State>,
) -> Result<State, SavedPlanError> {
    let state = stored.unwrap_or_else(|| State { lineage: plan.lineage.clone(), ..State::new() });
    check(ws.config, plan, &state)?;
    if plan.withholds() {
        let options = PlanOptions {
            mode: plan.mode,
            refresh: true,
            targets: plan.targets.clone(),
            replace: Vec::new(),
            variables: plan.variables.clone(),
            restore: Default::default(),
        };
        let fresh = crate::plan(ws, graph, &state, &options).await.map_err(SavedPlanError::Replan)?;
        plan.unseal(fresh)?;
    }
    Ok(state)
}
