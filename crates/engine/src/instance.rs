//! Planning one resource instance, the one sequence plan and apply share:
//! evaluate its block, let the provider validate it, merge it over the prior
//! state (`propose`), let the provider refine it, and decide replacement on the
//! refined value (`settle`). Apply runs it again with values now known and
//! compares the result with what the plan promised.

use infra_core::plan::{ChangeReason, ResourceChange};
use infra_core::{Provider, ResourceAddress, Schema, Value};
use infra_lang::Resource;
use infra_syntax::{Code, Diagnostic};

use crate::evaluate::Evaluator;
use crate::propose::{propose, settle};
use crate::scope::{Place, Repetition, Values};

/// One instance of a resource block.
pub(crate) struct Instance<'r> {
    pub place: Place<'r>,
    pub resource: &'r Resource,
    pub repetition: &'r Repetition,
    pub address: &'r ResourceAddress,
}

/// What planning an instance gave.
pub(crate) struct Planned {
    pub value: Value,
    /// Attributes whose change forces a new object.
    pub replace: Vec<String>,
    /// The provider's word on how an update is carried out.
    pub note: Option<String>,
    /// The provider's warnings, secrets taken out.
    pub warnings: Vec<String>,
}

/// Plans `instance` against `prior`: the refreshed object, or `None` for a new
/// one (a replacement asked for with `-replace` is planned as new). Its
/// settings are its block's, or `restored` ones (`infra rollback`).
pub(crate) fn plan(
    eval: &Evaluator<'_>,
    values: &Values,
    instance: &Instance<'_>,
    schema: &Schema,
    provider: &dyn Provider,
    prior: Option<&Value>,
    restored: Option<&Value>,
) -> Result<Planned, Vec<Diagnostic>> {
    let Instance { place, resource, repetition, address } = instance;
    let what = address.to_string();
    let config = match restored {
        Some(settings) => settings.clone(),
        None => eval.instance_config(values, *place, resource, repetition, schema, &what)?,
    };
    let refusals = provider.validate(&resource.kind.name, &config);
    if !refusals.is_empty() {
        return Err(refusals.iter().map(|e| provider_diagnostic(&what, resource, e, &config)).collect());
    }
    let proposed = propose(schema, prior, &config, &resource.lifecycle.ignore_changes);
    let refined = provider
        .plan(&resource.kind.name, prior, proposed.clone())
        .map_err(|e| vec![provider_diagnostic(&what, resource, &e, &proposed)])?;
    let warnings = refined.warnings.iter().map(|message| refined.planned.redact(message)).collect();
    let note = refined.note;
    let (value, replace) = settle(schema, prior, &proposed, refined.planned, refined.replace_on);
    Ok(Planned { value, replace, note, warnings })
}

/// The prior value a planned change was planned from: what apply must plan
/// from again to reproduce it.
pub(crate) fn planned_from(change: &ResourceChange) -> Option<&Value> {
    match change.reason {
        Some(ChangeReason::ReplaceRequested) => None,
        _ => change.before.as_ref(),
    }
}

/// A provider's refusal of `given` (the value it was handed), located in the
/// source; any secret of `given` the provider wrote into it is taken out.
fn provider_diagnostic(
    what: &str,
    resource: &infra_lang::Resource,
    e: &infra_core::ProviderError,
    given: &Value,
) -> Diagnostic {
    let span = e
        .attribute
        .as_ref()
        .and_then(|path| locate(&resource.body, path))
        .unwrap_or(resource.kind.span.to(resource.name.span));
    Diagnostic::error(Code::Provider, format!("{what}: {}", given.redact(&e.message)))
        .with_label(span, "rejected by the provider")
}

/// The source of an attribute path a provider names: `port`, `rule[1].from[0]`
/// (the second `rule` block's `from`, its first element). As deep as the
/// source goes: an element of a computed list is reported at the list.
fn locate(body: &infra_syntax::ast::Body, path: &str) -> Option<infra_syntax::Span> {
    use infra_syntax::ast::ExprKind;
    let mut body = body;
    let mut found = None;
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        if let Some(attribute) = body.attribute(name) {
            let element = match (&attribute.value.kind, index) {
                (ExprKind::Tuple(items), Some(i)) => items.get(i).map(|e| e.span),
                _ => None,
            };
            return element.or(Some(attribute.value.span));
        }
        let block = body.blocks().filter(|b| b.kind.name == name).nth(index.unwrap_or(0))?;
        found = Some(block.labels.first().map_or(block.kind.span, |l| l.span));
        body = &block.body;
    }
    found
}
