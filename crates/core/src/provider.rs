//! The [`Provider`] contract every backend implements, and the registry of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use indexmap::IndexMap;

use crate::{ResourceAddress, Schema, Value};

/// Everything a provider declares before it is configured.
#[derive(Clone, Debug, Default)]
pub struct ProviderSchema {
    /// The attributes of its `provider "NAME" { ... }` block.
    pub config: Schema,
    /// Resource type name → schema.
    pub resources: IndexMap<&'static str, Schema>,
}

/// Identifies the owner of an object being created, so the provider can mark it
/// (label, tag, comment) and find it again after a crash.
#[derive(Clone, Debug)]
pub struct OperationContext {
    pub lineage: String,
    pub address: ResourceAddress,
    /// When creating the replacement of an object that still exists
    /// (create_before_destroy): the recorded state of that object, which
    /// carries the same marker and must not be adopted.
    pub replacing: Option<Value>,
    /// For a type that keeps revisions: the earlier records state keeps for
    /// the address once this operation is done (`state::revisions`), so a
    /// provider can hold on to what putting one back needs (a container's
    /// images) and let go of the rest. Empty when the object is destroyed.
    pub kept: Vec<Value>,
}

impl OperationContext {
    /// The context of an operation that replaces nothing and keeps no revisions.
    pub fn new(lineage: impl Into<String>, address: ResourceAddress) -> Self {
        OperationContext { lineage: lineage.into(), address, replacing: None, kept: Vec::new() }
    }

    /// The marker a provider attaches to what it creates: `LINEAGE/ADDRESS`.
    pub fn marker(&self) -> String {
        format!("{}/{}", self.lineage, self.address)
    }

    /// The backend id of the object a create_before_destroy replacement
    /// replaces: it carries the same marker, and adoption must pass it by.
    pub fn replaced_id(&self) -> Option<&str> {
        self.replacing.as_ref()?.get("id")?.as_str()
    }
}

/// What a command run by [`Provider::exec`] did.
#[derive(Clone, Debug, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A provider's answer to [`Provider::plan`].
#[derive(Clone, Debug)]
pub struct Refined {
    pub planned: Value,
    /// Attributes whose change forces replacement beyond the schema's `force_new` ones.
    pub replace_on: Vec<String>,
    /// How the change will be carried out, when the attributes alone do not
    /// say ("rolling update: 3 replicas, one at a time"). Shown in the plan.
    pub note: Option<String>,
    /// What a reviewer should know that is not an error; shown with the plan.
    pub warnings: Vec<String>,
}

impl Refined {
    pub fn new(planned: Value) -> Self {
        Refined { planned, replace_on: Vec::new(), note: None, warnings: Vec::new() }
    }

    pub fn warn(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    pub fn replace_on(mut self, attributes: Vec<String>) -> Self {
        self.replace_on = attributes;
        self
    }

    pub fn note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }
}

/// One resource to refresh in a batched read.
#[derive(Clone, Debug)]
pub struct ReadRequest {
    /// The state's lineage: with `address`, the marker of what was created for it.
    pub lineage: String,
    pub address: ResourceAddress,
    pub kind: String,
    pub state: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The configuration was rejected (bad value, missing permission to do that).
    Invalid,
    /// The backend could not be reached or refused to answer.
    Unavailable,
    /// The backend reported a failure performing the operation.
    Failed,
    /// Creating was refused because an object of that name already exists,
    /// and it may be this state's own, made by a request of a run that was
    /// killed before that request finished: the engine looks for it again for
    /// a while. A name known to be taken by something else is `Failed`.
    Conflict,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub message: String,
    /// The attribute the error is about, when there is one.
    pub attribute: Option<String>,
}

impl ProviderError {
    pub fn failed(message: impl Into<String>) -> Self {
        ProviderError { kind: ProviderErrorKind::Failed, message: message.into(), attribute: None }
    }

    pub fn invalid(attribute: &str, message: impl Into<String>) -> Self {
        ProviderError { kind: ProviderErrorKind::Invalid, message: message.into(), attribute: Some(attribute.into()) }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ProviderError { kind: ProviderErrorKind::Unavailable, message: message.into(), attribute: None }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ProviderError { kind: ProviderErrorKind::Conflict, message: message.into(), attribute: None }
    }
}

/// A provider's resource types as an enum, so each is named in one place and
/// a type not handled somewhere is a compile error. The engine speaks type
/// names; a provider turns one into its kind once, with [`ResourceKind::of`].
pub trait ResourceKind: Copy + PartialEq + Sized + 'static {
    /// The provider's name, for the error about a type it does not have.
    const PROVIDER: &'static str;
    const ALL: &'static [Self];

    fn name(self) -> &'static str;

    fn of(name: &str) -> Result<Self, ProviderError> {
        Self::ALL.iter().copied().find(|k| k.name() == name).ok_or_else(|| {
            ProviderError::invalid("", format!("the {} provider has no resource type `{name}`", Self::PROVIDER))
        })
    }
}

/// A configured backend. Values passed in are already converted to the resource
/// schema; sensitive marks are kept so a provider can tell secrets apart.
///
/// The engine computes the generic plan (config over prior state, defaults,
/// unknown computed attributes, force-new replacement) and hands it to
/// [`Provider::plan`] for the provider to refine.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Checks a configuration beyond its types. Errors name the attribute.
    fn validate(&self, _kind: &str, _config: &Value) -> Vec<ProviderError> {
        Vec::new()
    }

    /// Refines the engine's proposed new state: fills what can be known at plan
    /// time, lists attributes whose change forces replacement beyond the
    /// schema's `force_new` ones, and says how an update will be carried out
    /// when that matters to a reviewer.
    fn plan(&self, _kind: &str, _prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        Ok(Refined::new(proposed))
    }

    /// The machine an object lives on, as messages name it (`admin@web1:22`),
    /// so an apply over a fleet can be summed up per machine. `None` when the
    /// provider has only one place (a local engine, this computer).
    fn location(&self, _kind: &str, _value: &Value) -> Option<String> {
        None
    }

    /// Refreshes many resources at once. `None` means the object is gone.
    /// Backends that can list objects should do one call per type, not per resource.
    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>>;

    async fn create(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError>;

    async fn update(
        &self,
        ctx: &OperationContext,
        kind: &str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError>;

    async fn delete(&self, ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError>;

    /// Reads an existing object given its backend id, for `infra import` and
    /// `import` blocks. Must not change the object: plans call it.
    async fn import(&self, ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError>;

    /// Marks an imported object as this state's (`ctx.lineage`, `ctx.address`)
    /// where the backend can, so a crash never orphans it; called when the
    /// import is recorded. Backends whose objects cannot be relabelled do nothing.
    async fn claim(&self, ctx: &OperationContext, kind: &str, imported: &Value) -> Result<(), ProviderError> {
        let _ = (ctx, kind, imported);
        Ok(())
    }

    /// The object's recent output, for `infra logs`.
    async fn logs(&self, kind: &str, _state: &Value, _lines: usize) -> Result<String, ProviderError> {
        Err(ProviderError::invalid("", format!("`{kind}` resources have no logs")))
    }

    /// Runs an argv inside the object, for `infra exec`.
    async fn exec(&self, kind: &str, _state: &Value, _argv: &[String]) -> Result<ExecOutput, ProviderError> {
        Err(ProviderError::invalid("", format!("commands cannot run inside `{kind}` resources")))
    }

    /// Runs one of the object's own operations outside plan and apply
    /// (`infra backup run ADDR`: `action` "run"), with named arguments.
    async fn act(
        &self,
        kind: &str,
        _state: &Value,
        action: &str,
        _args: &[(String, String)],
    ) -> Result<ExecOutput, ProviderError> {
        Err(ProviderError::invalid("", format!("`{kind}` resources have no `{action}` operation")))
    }

    /// The configuration that puts an object back as `earlier` (a revision
    /// state kept of it) recorded it, for `infra rollback`: the engine plans
    /// and applies it like any change. A provider checks that what it needs is
    /// still there (an image) and may name it differently (by id).
    async fn restore(&self, kind: &str, earlier: Value) -> Result<Value, ProviderError> {
        let _ = kind;
        Ok(earlier)
    }

    /// Finds an object this state created for `ctx.address` but never recorded
    /// (a crash between create and save), by the marker of `ctx`, read as
    /// refresh reads it: at least every attribute that cannot change in place
    /// that the backend can observe. When several carry the marker, the one
    /// most like `planned`. The engine takes it over only if it is the object
    /// `planned` describes, and otherwise deletes it and creates anew.
    /// Backends without markers return `None`.
    async fn adopt(
        &self,
        _ctx: &OperationContext,
        _kind: &str,
        _planned: &Value,
    ) -> Result<Option<Value>, ProviderError> {
        Ok(None)
    }
}

/// Builds configured providers from `provider "NAME" { ... }` blocks.
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    fn schema(&self) -> &ProviderSchema;
    async fn configure(&self, config: &Value) -> Result<Arc<dyn Provider>, ProviderError>;
}

/// The providers the binary was built with, by name. Core never names one itself.
#[derive(Default, Clone)]
pub struct ProviderRegistry {
    factories: BTreeMap<String, Arc<dyn ProviderFactory>>,
}

impl ProviderRegistry {
    pub fn new() -> Self {
        ProviderRegistry::default()
    }

    pub fn register(&mut self, name: &str, factory: Arc<dyn ProviderFactory>) {
        self.factories.insert(name.to_string(), factory);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn ProviderFactory>> {
        self.factories.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// The providers that offer a resource type.
    pub fn providers_of(&self, kind: &str) -> Vec<&str> {
        self.factories
            .iter()
            .filter(|(_, f)| f.schema().resources.contains_key(kind))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The provider whose `kind` fits a block writing `written` (attribute and
    /// block names) best: the fewest written names it does not know, then the
    /// fewest required ones missing. Tells apart two providers offering the
    /// same type name (a local `file` and one on a server) without naming
    /// either, and still picks one for a block with a typo, so the error is
    /// about the typo; `None` when no single one is best.
    pub fn best_fit(&self, kind: &str, written: &[&str]) -> Option<&str> {
        let misfit = |schema: &Schema| {
            let known = |n: &str| schema.attributes.contains_key(n) || schema.blocks.contains_key(n);
            let unknown = written.iter().filter(|n| !known(n)).count();
            let missing = schema.attributes.iter().filter(|(n, a)| a.required && !written.contains(n)).count();
            (unknown, missing)
        };
        let mut ranked: Vec<((usize, usize), &str)> = self
            .factories
            .iter()
            .filter_map(|(name, f)| Some((misfit(f.schema().resources.get(kind)?), name.as_str())))
            .collect();
        ranked.sort();
        match ranked.as_slice() {
            [(_, only)] => Some(only),
            [(best, name), (next, _), ..] if best < next => Some(name),
            _ => None,
        }
    }

    /// Every resource type name, for suggestions.
    pub fn resource_types(&self) -> Vec<&'static str> {
        let mut types: Vec<&'static str> =
            self.factories.values().flat_map(|f| f.schema().resources.keys().copied()).collect();
        // Several providers offer `file` or `firewall`: name each once.
        types.sort_unstable();
        types.dedup();
        types
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fruit {
        Apple,
        Pear,
    }

    impl ResourceKind for Fruit {
        const PROVIDER: &'static str = "orchard";
        const ALL: &'static [Fruit] = &[Fruit::Apple, Fruit::Pear];

        fn name(self) -> &'static str {
            match self {
                Fruit::Apple => "apple",
                Fruit::Pear => "pear",
            }
        }
    }

    #[test]
    fn a_kind_reads_back_from_its_name_and_an_unknown_name_is_refused() {
        for kind in Fruit::ALL {
            assert_eq!(Fruit::of(kind.name()).ok(), Some(*kind));
        }
        let error = Fruit::of("plum").expect_err("not a fruit here");
        assert_eq!(error.message, "the orchard provider has no resource type `plum`");
    }
    use crate::{AttributeSchema, Type};

    struct Offers(ProviderSchema);

    #[async_trait]
    impl ProviderFactory for Offers {
        fn schema(&self) -> &ProviderSchema {
            &self.0
        }

        async fn configure(&self, _: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
            Err(ProviderError::unavailable("not in this test"))
        }
    }

    fn offering_file(extra_required: Option<&'static str>) -> Arc<dyn ProviderFactory> {
        let mut file = Schema::new("").attribute("path", AttributeSchema::required(Type::String));
        if let Some(name) = extra_required {
            file = file.attribute(name, AttributeSchema::required(Type::Any));
        }
        Arc::new(Offers(ProviderSchema {
            config: Schema::default(),
            resources: [("file", file)].into_iter().collect(),
        }))
    }

    #[test]
    fn the_written_attributes_pick_between_providers_of_one_type() {
        let mut registry = ProviderRegistry::new();
        registry.register("local", offering_file(None));
        registry.register("ssh", offering_file(Some("server")));
        assert_eq!(registry.providers_of("file"), ["local", "ssh"]);
        assert_eq!(registry.best_fit("file", &["path"]), Some("local"));
        assert_eq!(registry.best_fit("file", &["path", "server"]), Some("ssh"));
        assert_eq!(registry.best_fit("file", &[]), Some("local"), "the one missing fewer required attributes");
        assert_eq!(registry.best_fit("file", &["path", "colour"]), Some("local"), "a typo still picks one");
        assert_eq!(registry.best_fit("file", &["server", "colour"]), Some("ssh"));
    }
}
