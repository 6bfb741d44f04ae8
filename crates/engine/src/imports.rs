//! `import { to = ..., id = ... }` blocks: existing objects brought under
//! management by a reviewed plan instead of a command run by hand.
//!
//! Planning reads each object not yet in state (`Provider::import`, which
//! changes nothing) and plans against it as if it were recorded, so the plan
//! shows the import and any difference from the configuration together.
//! Applying claims each object (`Provider::claim`: the lineage tag where the
//! backend has tags) and records it before any other step.

use std::borrow::Cow;
use std::collections::BTreeMap;

use infra_core::plan::{Import, Plan};
use infra_core::state::{ResourceState, State};
use infra_core::{OperationContext, ResourceAddress, Value};
use infra_syntax::{Code, Diagnostic};

use crate::{Graph, Workspace};

/// The import blocks' targets and ids, checked: root module only, one block per address.
fn declared(ws: &Workspace<'_>) -> Result<Vec<Import>, Vec<Diagnostic>> {
    let config = ws.config;
    let mut out: Vec<Import> = Vec::new();
    let mut errors = Vec::new();
    for (m, module) in config.modules.iter().enumerate() {
        for block in &module.imports {
            if m != 0 {
                errors.push(
                    Diagnostic::error(Code::Import, "import blocks belong in the root configuration")
                        .with_label(block.span, "inside a module")
                        .with_help("import into a module's resource from the root: `to = module.NAME.TYPE.NAME`"),
                );
                continue;
            }
            let text = config.sources.snippet(block.to.span).trim();
            let address: ResourceAddress = match text.parse() {
                Ok(address) => address,
                Err(_) => {
                    errors.push(
                        Diagnostic::error(Code::Import, format!("`{text}` is not a resource address"))
                            .with_label(block.to.span, "expected TYPE.NAME, TYPE.NAME[KEY] or module.NAME.TYPE.NAME"),
                    );
                    continue;
                }
            };
            let id = match infra_lang::eval_constant(&block.id, ws.host, &module.dir) {
                Ok(v) => match v.unmark().0 {
                    Value::String(id) if !id.is_empty() => id,
                    other => {
                        errors.push(
                            Diagnostic::error(
                                Code::Import,
                                format!("`id` must be a non-empty string, found a {}", other.type_name()),
                            )
                            .with_label(block.id.span, "the object's id in its backend"),
                        );
                        continue;
                    }
                },
                Err(d) => {
                    errors.push(d);
                    continue;
                }
            };
            if out.iter().any(|i| i.address == address) {
                errors.push(
                    Diagnostic::error(Code::Import, format!("{address} is imported twice"))
                        .with_label(block.to.span, "second import"),
                );
                continue;
            }
            out.push(Import { address, id });
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// The problems of the configuration's `import` blocks (for `infra validate`).
pub(crate) fn check(ws: &Workspace<'_>) -> Vec<Diagnostic> {
    declared(ws).err().unwrap_or_default()
}

/// Reads every object an import block names that state does not hold yet into
/// `state` (as if recorded), and returns those imports for the plan.
pub(crate) async fn read(
    ws: &Workspace<'_>,
    graph: &Graph,
    state: &mut Cow<'_, State>,
    variables: &BTreeMap<String, Value>,
) -> Result<Vec<Import>, Vec<Diagnostic>> {
    let mut imports = declared(ws)?;
    imports.retain(|i| !state.resources.contains_key(&i.address));
    let mut errors = Vec::new();
    for import in &imports {
        let address = &import.address;
        let (provider_key, provider) = crate::provider_for(ws, graph, address, None, variables, Code::Import).await?;
        let ctx = OperationContext::new(state.lineage.clone(), address.clone());
        match provider.import(&ctx, &address.kind, &import.id).await {
            Ok(attributes) => {
                let resource = ResourceState::imported(provider_key, attributes);
                state.to_mut().resources.insert(address.clone(), resource);
            }
            Err(e) => errors.push(Diagnostic::error(
                Code::Import,
                format!("{address}: cannot import {:?}: {}", import.id, e.message),
            )),
        }
    }
    if errors.is_empty() { Ok(imports) } else { Err(errors) }
}

/// Apply's side: claims each object the plan imports and records it as the plan
/// read it. Returns the addresses recorded.
pub(crate) async fn record(
    ws: &Workspace<'_>,
    graph: &Graph,
    plan: &Plan,
    state: &mut State,
) -> Result<Vec<ResourceAddress>, Vec<Diagnostic>> {
    let mut recorded = Vec::new();
    for import in &plan.imports {
        let address = &import.address;
        let Some(read) = plan.change(address).and_then(|c| c.before.clone()) else { continue };
        if state.resources.contains_key(address) {
            continue;
        }
        let (provider_key, provider) =
            crate::provider_for(ws, graph, address, None, &plan.variables, Code::Import).await?;
        let ctx = OperationContext::new(state.lineage.clone(), address.clone());
        provider
            .claim(&ctx, &address.kind, &read)
            .await
            .map_err(|e| vec![Diagnostic::error(Code::Import, format!("{address}: {}", e.message))])?;
        let resource = ResourceState::imported(provider_key, read);
        state.resources.insert(address.clone(), resource);
        recorded.push(address.clone());
    }
    Ok(recorded)
}
