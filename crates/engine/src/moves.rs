//! `moved` blocks: renaming a resource, one instance, or a whole module call
//! plans as a move of what state recorded, not as a destroy and a create.
//!
//! The blocks are resolved into [`Endpoint`]s (addresses made absolute with the
//! declaring module's path), then applied in declaration order to a copy of
//! state before planning, so every change in the plan already uses the new
//! addresses. Apply renames the recorded instances first, before any step.

use std::borrow::Cow;

use infra_core::plan::{Move, PlanWarning};
use infra_core::state::State;
use infra_core::{InstanceKey, ModuleStep, ResourceAddress};
use infra_lang::Config;
use infra_syntax::{Code, Diagnostic};

/// One side of a `moved` block.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    /// A resource (every instance) or one instance of it.
    Resource(ResourceAddress),
    /// `module.NAME` or `module.NAME[KEY]`: everything recorded under that module call (instance).
    Module(Vec<ModuleStep>),
}

impl Endpoint {
    /// The address `address` has under `to`, if this endpoint covers it.
    fn rename(&self, to: &Endpoint, address: &ResourceAddress) -> Option<ResourceAddress> {
        match (self, to) {
            (Endpoint::Resource(from), Endpoint::Resource(to)) => {
                if from.key == InstanceKey::None && from.without_key() == address.without_key() {
                    Some(ResourceAddress { key: address.key.clone(), ..to.clone() })
                } else if from == address {
                    Some(to.clone())
                } else {
                    None
                }
            }
            (Endpoint::Module(from), Endpoint::Module(to)) => {
                let rest = address.module.strip_prefix(from.as_slice())?;
                let module = to.iter().chain(rest).cloned().collect();
                Some(ResourceAddress { module, ..address.clone() })
            }
            _ => None,
        }
    }
}

/// A `moved` block as declared in the module called by `within` (call names):
/// its endpoints are relative to that module, and it applies in every
/// instance of it.
struct Declared {
    within: Vec<String>,
    from: Endpoint,
    to: Endpoint,
}

impl Declared {
    /// The address `address` has after this move, if the move covers it.
    fn rename(&self, address: &ResourceAddress) -> Option<ResourceAddress> {
        let n = self.within.len();
        let instance = address.module.get(..n)?;
        if !instance.iter().zip(&self.within).all(|(step, name)| step.name == *name) {
            return None;
        }
        let relative = ResourceAddress { module: address.module[n..].to_vec(), ..address.clone() };
        let renamed = self.from.rename(&self.to, &relative)?;
        Some(ResourceAddress { module: instance.iter().chain(&renamed.module).cloned().collect(), ..renamed })
    }
}

/// Every `moved` block of the configuration, checked.
fn declared(config: &Config) -> Result<Vec<Declared>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for module in &config.modules {
        for block in &module.moved {
            let from = endpoint(config, &block.from);
            let to = endpoint(config, &block.to);
            match (from, to) {
                (Ok(from), Ok(to)) => {
                    let same_kind = matches!(
                        (&from, &to),
                        (Endpoint::Resource(a), Endpoint::Resource(b))
                            if a.kind == b.kind && (a.key == InstanceKey::None) == (b.key == InstanceKey::None)
                    ) || matches!((&from, &to), (Endpoint::Module(_), Endpoint::Module(_)));
                    if same_kind {
                        out.push(Declared { within: module.path.clone(), from, to });
                    } else {
                        errors.push(
                            Diagnostic::error(
                                Code::Moved,
                                "a moved block renames a resource to one of the same type, an instance to an \
                                 instance, or a module call to a module call",
                            )
                            .with_label(block.from.span.to(block.to.span), "these do not match"),
                        );
                    }
                }
                (from, to) => errors.extend(from.err().into_iter().chain(to.err())),
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// `file.old`, `file.old[0]`, `file.old["k"]` or `module.web`, read from the
/// source text, relative to the declaring module.
fn endpoint(config: &Config, expr: &infra_syntax::ast::Expr) -> Result<Endpoint, Diagnostic> {
    let text = config.sources.snippet(expr.span).trim();
    let bad = || {
        Diagnostic::error(Code::Moved, format!("`{text}` is not a resource or module address"))
            .with_label(expr.span, "expected file.NAME, file.NAME[KEY] or module.NAME")
    };
    let address: ResourceAddress = text.parse().map_err(|_| bad())?;
    match address.module.as_slice() {
        [call] if address.kind.is_empty() => Ok(Endpoint::Module(vec![call.clone()])),
        [] => Ok(Endpoint::Resource(address)),
        _ => Err(bad().with_help("declare the moved block in the module itself, or move the whole module.NAME")),
    }
}

/// The problems of the configuration's `moved` blocks (for `infra validate`).
pub(crate) fn check(config: &Config) -> Vec<Diagnostic> {
    declared(config).err().unwrap_or_default()
}

/// State as the moves leave it, and what they did.
pub(crate) struct Moved<'s> {
    pub(crate) state: Cow<'s, State>,
    pub(crate) moves: Vec<Move>,
    pub(crate) warnings: Vec<PlanWarning>,
}

/// State with the moves applied (in declaration order, so a → b then b → c
/// lands on c), the instance moves made, and warnings for moves that could not
/// be made because something is already recorded at the new address.
pub(crate) fn apply<'s>(config: &Config, state: &'s State) -> Result<Moved<'s>, Vec<Diagnostic>> {
    let blocks = declared(config)?;
    if blocks.is_empty() {
        return Ok(Moved { state: Cow::Borrowed(state), moves: Vec::new(), warnings: Vec::new() });
    }
    let mut state = state.clone();
    let mut moves: Vec<Move> = Vec::new();
    let mut warnings = Vec::new();
    for block in &blocks {
        let renames: Vec<(ResourceAddress, ResourceAddress)> =
            state.resources.keys().filter_map(|a| Some((a.clone(), block.rename(a)?))).collect();
        for (old, new) in renames {
            if state.resources.contains_key(&new) {
                warnings.push(PlanWarning {
                    address: old.clone(),
                    message: format!("is not moved to {new}: something is already recorded there"),
                });
                continue;
            }
            if let Some(resource) = state.resources.remove(&old) {
                state.resources.insert(new.clone(), resource);
            }
            // A chain of moves shows as one, from the first address to the last.
            match moves.iter_mut().find(|m| m.to == old) {
                Some(chained) => chained.to = new,
                None => moves.push(Move { from: old, to: new }),
            }
        }
    }
    let renamed = |a: &ResourceAddress| moves.iter().find(|m| &m.from == a).map(|m| m.to.clone());
    for resource in state.resources.values_mut() {
        for dependency in &mut resource.dependencies {
            if let Some(new) = renamed(dependency) {
                *dependency = new;
            }
        }
    }
    Ok(Moved { state: Cow::Owned(state), moves, warnings })
}

/// Apply's side: renames what the plan says moved. Returns the addresses touched.
pub(crate) fn rename(state: &mut State, moves: &[Move]) -> Vec<ResourceAddress> {
    let mut touched = Vec::new();
    for m in moves {
        if state.resources.contains_key(&m.to) {
            continue;
        }
        if let Some(resource) = state.resources.remove(&m.from) {
            state.resources.insert(m.to.clone(), resource);
            touched.extend([m.from.clone(), m.to.clone()]);
        }
    }
    touched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> ResourceAddress {
        text.parse().expect("address")
    }

    #[test]
    fn a_resource_move_carries_every_instance_and_its_key() {
        let from = Endpoint::Resource(address("file.old"));
        let to = Endpoint::Resource(address("file.new"));
        assert_eq!(from.rename(&to, &address("file.old[2]")), Some(address("file.new[2]")));
        assert_eq!(from.rename(&to, &address("file.old")), Some(address("file.new")));
        assert_eq!(from.rename(&to, &address("file.other")), None);
        let one = Endpoint::Resource(address("file.old[\"a\"]"));
        assert_eq!(
            one.rename(&Endpoint::Resource(address("file.new[\"b\"]")), &address("file.old[\"a\"]")),
            Some(address("file.new[\"b\"]"))
        );
        assert_eq!(one.rename(&to, &address("file.old[\"c\"]")), None);
    }

    #[test]
    fn a_module_move_carries_everything_under_it() {
        let from = Endpoint::Module(vec![ModuleStep::plain("web")]);
        let to = Endpoint::Module(vec![ModuleStep::plain("frontend")]);
        assert_eq!(
            from.rename(&to, &address("module.web.module.db.file.x")),
            Some(address("module.frontend.module.db.file.x"))
        );
        assert_eq!(from.rename(&to, &address("module.webby.file.x")), None);
        assert_eq!(from.rename(&to, &address("file.x")), None);
        // From copies to a loop: `module.web1` becomes `module.web["web1"]`.
        let copy = Endpoint::Module(vec![ModuleStep::plain("web1")]);
        let instance = Endpoint::Module(address("module.web[\"web1\"]").module);
        assert_eq!(
            copy.rename(&instance, &address("module.web1.file.x[0]")),
            Some(address("module.web[\"web1\"].file.x[0]"))
        );
        assert_eq!(copy.rename(&instance, &address("module.web2.file.x[0]")), None);
    }

    #[test]
    fn a_move_declared_in_a_module_applies_in_every_instance_of_it() {
        let within = vec!["web".to_string()];
        let block = Declared {
            within,
            from: Endpoint::Resource(address("file.old")),
            to: Endpoint::Resource(address("file.new")),
        };
        assert_eq!(block.rename(&address("module.web[\"a\"].file.old")), Some(address("module.web[\"a\"].file.new")));
        assert_eq!(block.rename(&address("module.web[3].file.old[1]")), Some(address("module.web[3].file.new[1]")));
        assert_eq!(block.rename(&address("file.old")), None, "not in that module");
        assert_eq!(block.rename(&address("module.db.file.old")), None);
    }
}
