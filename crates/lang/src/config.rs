//! The decoded configuration: modules with their variables, locals, outputs,
//! resources, module calls and provider blocks. Nothing here is evaluated yet.

use std::path::PathBuf;

use indexmap::IndexMap;
use infra_core::Type;
use infra_syntax::ast::{Attribute, Block, Body, BodyItem, Expr, ExprKind, Ident};
use infra_syntax::{Code, Diagnostic, SourceMap, Span};

use crate::keywords::{CONDITION_WORDS, LIFECYCLE_WORDS, OUTPUT_WORDS, VARIABLE_WORDS, attribute_names, block_names};
use crate::refs::RESERVED_ROOTS;

/// Index of a module in [`Config::modules`]; the root is 0.
pub type ModuleId = usize;

#[derive(Debug)]
pub struct Config {
    pub sources: SourceMap,
    /// Every loaded module; a module called twice is loaded twice (once per call).
    pub modules: Vec<Module>,
}

impl Config {
    pub fn root(&self) -> &Module {
        &self.modules[0]
    }

    /// The module that calls module `m`, and the call; `None` for the root.
    /// (A module called twice is loaded twice, so there is one caller.)
    pub fn caller(&self, m: ModuleId) -> Option<(ModuleId, &ModuleCall)> {
        self.modules
            .iter()
            .enumerate()
            .find_map(|(parent, module)| module.calls.values().find(|c| c.module == Some(m)).map(|c| (parent, c)))
    }
}

#[derive(Debug, Default)]
pub struct Module {
    pub dir: PathBuf,
    /// `module.a.module.b` names: empty for the root.
    pub path: Vec<String>,
    pub variables: IndexMap<String, Variable>,
    pub locals: IndexMap<String, Local>,
    pub outputs: IndexMap<String, Output>,
    pub resources: IndexMap<(String, String), Resource>,
    pub calls: IndexMap<String, ModuleCall>,
    pub providers: Vec<ProviderBlock>,
    /// `backend "KIND" { ... }`: where state is kept. Only the root may have one.
    pub backends: Vec<BackendBlock>,
    /// `state { encryption { ... } }`: how state is kept. Only the root may have one.
    pub state_settings: Vec<StateSettings>,
    /// `moved { from = ..., to = ... }`: renames, in declaration order.
    pub moved: Vec<MovedBlock>,
    /// `check "NAME" { assert { ... } }`: conditions over planned values.
    pub checks: IndexMap<String, Check>,
    /// `import { to = ..., id = ... }`: existing objects to bring under management.
    pub imports: Vec<ImportBlock>,
}

impl Module {
    /// The resource block `kind "name"`, looked up without building an owned key.
    pub fn resource(&self, kind: &str, name: &str) -> Option<&Resource> {
        self.resources.get(&ResourceKey(kind, name))
    }
}

/// `(kind, name)` borrowed: hashes as the owned `(String, String)` key does
/// (a tuple hashes its fields in turn), so the map finds it.
#[derive(Hash)]
struct ResourceKey<'a>(&'a str, &'a str);

impl indexmap::Equivalent<(String, String)> for ResourceKey<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// `import { to = file.motd, id = "/etc/motd" }`: the plan reads the existing
/// object `id` and manages it as `to` (an address, not evaluated) from then on.
/// `id` may use functions but no references.
#[derive(Debug)]
pub struct ImportBlock {
    pub to: Expr,
    pub id: Expr,
    pub span: Span,
}

/// Assertions over the planned values that fail the plan when false: `check
/// "no_world_ssh" { assert { condition = ..., error_message = "..." } }`.
#[derive(Debug)]
pub struct Check {
    pub name: Ident,
    pub asserts: Vec<Validation>,
    pub span: Span,
}

/// `moved { from = file.old, to = file.new }`: what state recorded under `from`
/// is now `to`. Both are addresses relative to the declaring module (a
/// resource, one instance of it, or `module.NAME`), not evaluated.
#[derive(Debug)]
pub struct MovedBlock {
    pub from: Expr,
    pub to: Expr,
    pub span: Span,
}

/// Where the configuration's state is kept: `backend "postgres" { conn = ... }`.
/// Read before anything else, so its body may use functions (`env("INFRA_PG")`)
/// but no references.
#[derive(Debug)]
pub struct BackendBlock {
    pub kind: Ident,
    pub body: Body,
    pub span: Span,
}

/// `state { encryption { key = env("INFRA_STATE_KEY") } }`. Read before
/// anything else, like a backend block: functions but no references.
#[derive(Debug)]
pub struct StateSettings {
    pub encryption: Option<Block>,
    pub span: Span,
}

#[derive(Debug)]
pub struct Variable {
    pub name: Ident,
    pub ty: Type,
    pub default: Option<Expr>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub validations: Vec<Validation>,
    pub span: Span,
}

#[derive(Debug)]
pub struct Validation {
    pub condition: Expr,
    pub error_message: Expr,
    pub span: Span,
}

#[derive(Debug)]
pub struct Local {
    pub name: Ident,
    pub value: Expr,
}

#[derive(Debug)]
pub struct Output {
    pub name: Ident,
    pub value: Expr,
    pub sensitive: bool,
    pub description: Option<String>,
    pub depends_on: Vec<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRef {
    pub name: String,
    pub alias: Option<String>,
}

impl ProviderRef {
    /// `local` or `local.alias`: how state and plans name a provider configuration.
    pub fn key(&self) -> infra_core::ProviderKey {
        match &self.alias {
            Some(alias) => infra_core::ProviderKey::aliased(&self.name, alias),
            None => infra_core::ProviderKey::new(&self.name),
        }
    }
}

#[derive(Debug)]
pub struct ProviderBlock {
    pub reference: ProviderRef,
    /// `for_each = MAP or SET`: one configuration per key, `docker.hosts["a"]`,
    /// its body reading `each.key` and `each.value`. Needs an alias.
    pub for_each: Option<Expr>,
    pub body: Body,
    pub span: Span,
}

/// `provider = docker.hosts[each.key]`: which configuration, and for one
/// with `for_each`, an expression for which instance.
#[derive(Debug, Clone)]
pub struct ProviderChoice {
    pub reference: ProviderRef,
    pub instance: Option<Expr>,
    pub span: Span,
}

/// One entry of a module call's `providers = { docker = docker.hosts[each.key] }`:
/// inside the called module, `inner` means the configuration `outer` chooses.
#[derive(Debug, Clone)]
pub struct ProviderPass {
    pub inner: ProviderRef,
    pub outer: ProviderChoice,
}

#[derive(Debug, Default, Clone)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    pub create_before_destroy: bool,
    /// Destroying it forgets it: removed from state, the object left as it is
    /// (the admin account and sudo rule a server is managed through, say).
    pub abandon_on_destroy: bool,
    pub ignore_changes: Vec<Ident>,
}

#[derive(Debug)]
pub struct Resource {
    pub kind: Ident,
    pub name: Ident,
    /// The body with meta-arguments (`count`, `for_each`, `depends_on`,
    /// `provider`, `lifecycle`) taken out.
    pub body: Body,
    // Boxed, like `provider`: most resources have neither, and a configuration
    // of 100,000 resources holds each of these fields 100,000 times.
    pub count: Option<Box<Expr>>,
    pub for_each: Option<Box<Expr>>,
    pub depends_on: Vec<Expr>,
    pub provider: Option<Box<ProviderChoice>>,
    pub lifecycle: Lifecycle,
    pub span: Span,
}

#[derive(Debug)]
pub struct ModuleCall {
    pub name: Ident,
    pub source: String,
    pub inputs: Vec<Attribute>,
    /// `count = N`: instances `module.NAME[0]` ... ; inputs may read `count.index`.
    pub count: Option<Expr>,
    /// `for_each = MAP or SET`: one instance per key, `module.NAME["KEY"]`;
    /// inputs may read `each.key` and `each.value`.
    pub for_each: Option<Expr>,
    /// `providers = { docker = docker.hosts[each.key] }`: configurations the
    /// called module uses under other names (otherwise it uses the root's by name).
    pub providers: Vec<ProviderPass>,
    pub depends_on: Vec<Expr>,
    /// The loaded module, when its source could be read.
    pub module: Option<ModuleId>,
    pub span: Span,
}

/// Decodes the top-level blocks of one file into `module`. The tree is taken:
/// a resource keeps its block's body as it was parsed, moved, not copied.
pub(crate) fn decode_file(module: &mut Module, body: Body, errors: &mut Vec<Diagnostic>) {
    // Most blocks of a large file are resources: reserved at once, the map
    // does not double past them (at 100,000 resources, 9 MB of slack).
    module.resources.reserve(body.items.len());
    for attribute in body.attributes() {
        errors.push(
            Diagnostic::error(
                Code::UnexpectedAttribute,
                format!("`{}` cannot stand alone at the top level", attribute.name.name),
            )
            .with_label(attribute.name.span, "attribute outside any block")
            .with_help("put it inside a block, or in `locals { ... }` to name a value"),
        );
    }
    for item in body.items {
        let BodyItem::Block(block) = item else { continue };
        let block = &mut { block };
        let mut d = Decoder { errors };
        match block.kind.name.as_str() {
            "variable" => {
                if let Some(v) = d.variable(block) {
                    insert_unique(&mut module.variables, v.name.name.clone(), v, |v| v.name.span, "variable", d.errors);
                }
            }
            "locals" => {
                for attribute in block.body.attributes() {
                    let local = Local { name: attribute.name.clone(), value: attribute.value.clone() };
                    insert_unique(
                        &mut module.locals,
                        attribute.name.name.clone(),
                        local,
                        |l| l.name.span,
                        "local value",
                        d.errors,
                    );
                }
            }
            "output" => {
                if let Some(o) = d.output(block) {
                    insert_unique(&mut module.outputs, o.name.name.clone(), o, |o| o.name.span, "output", d.errors);
                }
            }
            "module" => {
                if let Some(c) = d.module_call(block) {
                    insert_unique(&mut module.calls, c.name.name.clone(), c, |c| c.name.span, "module", d.errors);
                }
            }
            "backend" => {
                if let Some(label) = d.labels(block, &["KIND"]) {
                    let kind = label[0].clone();
                    module.backends.push(BackendBlock { kind, body: block.body.clone(), span: block.span });
                }
            }
            "state" => {
                if d.labels(block, &[]).is_some() {
                    d.reject_unknown(&block.body, &[], &["encryption"], "a state block");
                    let encryption = block.body.blocks().find(|b| b.kind.name == "encryption").cloned();
                    module.state_settings.push(StateSettings { encryption, span: block.span });
                }
            }
            "check" => {
                if let Some(c) = d.check(block) {
                    insert_unique(&mut module.checks, c.name.name.clone(), c, |c| c.name.span, "check", d.errors);
                }
            }
            "moved" => {
                if let Some((from, to)) = d.pair(block, ["from", "to"], "moved { from = file.old, to = file.new }") {
                    module.moved.push(MovedBlock { from, to, span: block.span });
                }
            }
            "import" => {
                if let Some((to, id)) = d.pair(block, ["to", "id"], "import { to = file.motd, id = \"/etc/motd\" }") {
                    module.imports.push(ImportBlock { to, id, span: block.span });
                }
            }
            "provider" => {
                if let Some(p) = d.provider(block) {
                    if module.providers.iter().any(|q| q.reference == p.reference) {
                        d.errors.push(
                            Diagnostic::error(
                                Code::Duplicate,
                                format!("provider `{}` is configured twice", p.reference.key()),
                            )
                            .with_label(p.span, "second configuration")
                            .with_help("give one of them `alias = \"...\"` and select it with `provider = NAME.ALIAS`"),
                        );
                    } else {
                        module.providers.push(p);
                    }
                }
            }
            _ => {
                if let Some(r) = d.resource(block) {
                    let key = (r.kind.name.clone(), r.name.name.clone());
                    insert_unique(&mut module.resources, key, r, |r| r.name.span, "resource", d.errors);
                }
            }
        }
    }
}

fn insert_unique<K: std::hash::Hash + Eq + Shown, V>(
    map: &mut IndexMap<K, V>,
    key: K,
    value: V,
    span_of: impl Fn(&V) -> Span,
    what: &str,
    errors: &mut Vec<Diagnostic>,
) {
    if let Some(first) = map.get(&key) {
        errors.push(
            Diagnostic::error(Code::Duplicate, format!("duplicate {what} `{}`", key.shown()))
                .with_label(span_of(&value), "declared again here")
                .with_label(span_of(first), "first declared here")
                .with_help(format!("each {what} name must be unique in its module")),
        );
    } else {
        map.insert(key, value);
    }
}

/// How a declaration's key reads in messages.
trait Shown {
    fn shown(&self) -> String;
}

impl Shown for String {
    fn shown(&self) -> String {
        self.clone()
    }
}

impl Shown for (String, String) {
    fn shown(&self) -> String {
        format!("{}.{}", self.0, self.1)
    }
}

struct Decoder<'a> {
    errors: &'a mut Vec<Diagnostic>,
}

impl Decoder<'_> {
    fn labels<'b>(&mut self, block: &'b Block, names: &[&str]) -> Option<&'b [Ident]> {
        if block.labels.len() == names.len() {
            return Some(&block.labels);
        }
        let kind = &block.kind.name;
        let help = match block.labels.as_slice() {
            // Terraform's `resource "TYPE" "NAME"`, written out of habit.
            [ty, name] if kind == "resource" => {
                format!("infra starts a resource with its type: write it as `{} \"{}\" {{ ... }}`", ty.name, name.name)
            }
            _ => format!(
                "write it as `{kind} {} {{ ... }}`",
                names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" ")
            ),
        };
        self.errors.push(
            Diagnostic::error(
                Code::BlockLabels,
                format!("a `{kind}` block takes {} label(s), found {}", names.len(), block.labels.len()),
            )
            .with_label(block.kind.span, "here")
            .with_help(help),
        );
        None
    }

    fn literal_string(&mut self, attribute: &Attribute) -> Option<String> {
        let text = attribute.value.as_literal_str();
        if text.is_none() {
            self.errors.push(
                Diagnostic::error(Code::NotLiteral, format!("`{}` must be a literal string", attribute.name.name))
                    .with_label(attribute.value.span, "not a plain string")
                    .with_help("this is read before anything is evaluated, so it cannot use references or `${}`"),
            );
        }
        text
    }

    fn literal_bool(&mut self, attribute: &Attribute) -> bool {
        match attribute.value.kind {
            ExprKind::Bool(b) => b,
            _ => {
                self.errors.push(
                    Diagnostic::error(Code::NotLiteral, format!("`{}` must be `true` or `false`", attribute.name.name))
                        .with_label(attribute.value.span, "not a literal bool"),
                );
                false
            }
        }
    }

    fn reject_unknown(&mut self, body: &Body, allowed_attributes: &[&str], allowed_blocks: &[&str], context: &str) {
        for attribute in body.attributes() {
            if !allowed_attributes.contains(&attribute.name.name.as_str()) {
                let mut d = Diagnostic::error(
                    Code::UnknownAttribute,
                    format!("unknown attribute `{}` in {context}", attribute.name.name),
                )
                .with_label(attribute.name.span, "not expected here");
                if let Some(s) = crate::did_you_mean(&attribute.name.name, allowed_attributes.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_help(format!("{context} accepts: {}", allowed_attributes.join(", ")));
                }
                self.errors.push(d);
            }
        }
        for block in body.blocks() {
            if !allowed_blocks.contains(&block.kind.name.as_str()) {
                let d = Diagnostic::error(
                    Code::UnknownBlock,
                    format!("unexpected block `{}` in {context}", block.kind.name),
                )
                .with_label(block.kind.span, "not expected here");
                let help = match crate::did_you_mean(&block.kind.name, allowed_blocks.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if allowed_blocks.is_empty() => format!("{context} takes no blocks"),
                    None => format!("{context} accepts the blocks: {}", allowed_blocks.join(", ")),
                };
                self.errors.push(d.with_help(help));
            }
        }
    }

    fn variable(&mut self, block: &Block) -> Option<Variable> {
        let name = self.labels(block, &["NAME"])?[0].clone();
        self.reject_unknown(&block.body, &attribute_names(VARIABLE_WORDS), &block_names(VARIABLE_WORDS), "a variable");
        let ty = match block.body.attribute("type") {
            Some(a) => match parse_type_expr(&a.value) {
                Ok(t) => t,
                Err(d) => {
                    self.errors.push(d);
                    Type::Any
                }
            },
            None => Type::Any,
        };
        let description = block.body.attribute("description").and_then(|a| self.literal_string(a));
        let sensitive = block.body.attribute("sensitive").is_some_and(|a| self.literal_bool(a));
        let validations = self.conditions(block, "validation");
        let default = block.body.attribute("default").map(|a| a.value.clone());
        Some(Variable { name, ty, default, description, sensitive, validations, span: block.span })
    }

    /// The `condition` + `error_message` blocks of one kind inside `block`
    /// (a variable's `validation`s, a check's `assert`s).
    fn conditions(&mut self, block: &Block, kind: &str) -> Vec<Validation> {
        let mut found = Vec::new();
        for v in block.body.blocks().filter(|b| b.kind.name == kind) {
            self.reject_unknown(&v.body, &attribute_names(CONDITION_WORDS), &[], &format!("a {kind} block"));
            match (v.body.attribute("condition"), v.body.attribute("error_message")) {
                (Some(c), Some(m)) => {
                    found.push(Validation { condition: c.value.clone(), error_message: m.value.clone(), span: v.span })
                }
                _ => self.errors.push(
                    Diagnostic::error(Code::MissingAttribute, format!("{kind} needs `condition` and `error_message`"))
                        .with_label(v.kind.span, format!("incomplete {kind}")),
                ),
            }
        }
        found
    }

    fn check(&mut self, block: &Block) -> Option<Check> {
        let name = self.labels(block, &["NAME"])?[0].clone();
        self.reject_unknown(&block.body, &[], &["assert"], "a check block");
        let asserts = self.conditions(block, "assert");
        if asserts.is_empty() {
            self.errors.push(
                Diagnostic::error(Code::MissingAttribute, format!("check `{}` has no `assert` block", name.name))
                    .with_label(name.span, "nothing to check")
                    .with_help("add `assert { condition = ..., error_message = \"...\" }`"),
            );
            return None;
        }
        Some(Check { name, asserts, span: block.span })
    }

    fn output(&mut self, block: &Block) -> Option<Output> {
        let name = self.labels(block, &["NAME"])?[0].clone();
        self.reject_unknown(&block.body, &attribute_names(OUTPUT_WORDS), &[], "an output");
        let Some(value) = block.body.attribute("value") else {
            self.errors.push(
                Diagnostic::error(Code::MissingAttribute, format!("output `{}` has no `value`", name.name))
                    .with_label(name.span, "missing `value = ...`"),
            );
            return None;
        };
        Some(Output {
            value: value.value.clone(),
            sensitive: block.body.attribute("sensitive").is_some_and(|a| self.literal_bool(a)),
            description: block.body.attribute("description").and_then(|a| self.literal_string(a)),
            depends_on: self.depends_on(&block.body),
            name,
            span: block.span,
        })
    }

    /// A label-less block of exactly two required attributes (`moved`, `import`).
    fn pair(&mut self, block: &Block, names: [&str; 2], usage: &str) -> Option<(Expr, Expr)> {
        self.labels(block, &[])?;
        let kind = &block.kind.name;
        self.reject_unknown(&block.body, &names, &[], &format!("a {kind} block"));
        let mut attribute = |name: &str| match block.body.attribute(name) {
            Some(a) => Some(a.value.clone()),
            None => {
                self.errors.push(
                    Diagnostic::error(Code::MissingAttribute, format!("a {kind} block needs `{name}`"))
                        .with_label(block.kind.span, format!("missing `{name} = ...`"))
                        .with_help(format!("write `{usage}`")),
                );
                None
            }
        };
        let (first, second) = (attribute(names[0]), attribute(names[1]));
        Some((first?, second?))
    }

    fn depends_on(&mut self, body: &Body) -> Vec<Expr> {
        match body.attribute("depends_on").map(|a| &a.value.kind) {
            None => Vec::new(),
            Some(ExprKind::Tuple(items)) => {
                // A quoted address would be a dependency silently not taken.
                for item in items.iter().filter(|i| !matches!(i.kind, ExprKind::GetAttr(..) | ExprKind::Index(..))) {
                    self.errors.push(
                        Diagnostic::error(Code::DependsOn, "`depends_on` lists resources or modules, unquoted")
                            .with_label(item.span, "not a resource or module")
                            .with_help("write `depends_on = [file.a, module.b]`"),
                    );
                }
                items.clone()
            }
            Some(_) => {
                let span = body.attribute("depends_on").map(|a| a.value.span).unwrap_or_default();
                self.errors.push(
                    Diagnostic::error(Code::DependsOn, "`depends_on` must be a list of resources or modules")
                        .with_label(span, "not a list")
                        .with_help("write `depends_on = [file.a, module.b]`"),
                );
                Vec::new()
            }
        }
    }

    fn module_call(&mut self, block: &Block) -> Option<ModuleCall> {
        let name = self.labels(block, &["NAME"])?[0].clone();
        let Some(source) = block.body.attribute("source") else {
            self.errors.push(
                Diagnostic::error(Code::MissingAttribute, format!("module `{}` has no `source`", name.name))
                    .with_label(name.span, "missing `source = \"./path\"`"),
            );
            return None;
        };
        let source = self.literal_string(source)?;
        let inputs = block
            .body
            .attributes()
            .filter(|a| !matches!(a.name.name.as_str(), "source" | "depends_on" | "count" | "for_each" | "providers"))
            .cloned()
            .collect();
        let meta = |name: &str| block.body.attribute(name).map(|a| a.value.clone());
        let (count, for_each) = (meta("count"), meta("for_each"));
        if let (Some(count), Some(_)) = (&count, &for_each) {
            self.errors.push(count_and_for_each(count.span, "a module call"));
        }
        Some(ModuleCall {
            name,
            source,
            inputs,
            count,
            for_each,
            providers: block.body.attribute("providers").map(|a| self.provider_passes(a)).unwrap_or_default(),
            depends_on: self.depends_on(&block.body),
            module: None,
            span: block.span,
        })
    }

    fn provider(&mut self, block: &Block) -> Option<ProviderBlock> {
        let name = self.labels(block, &["NAME"])?[0].name.clone();
        let alias = block.body.attribute("alias").and_then(|a| self.literal_string(a));
        let for_each = block.body.attribute("for_each").map(|a| a.value.clone());
        if let (Some(for_each), None) = (&for_each, &alias) {
            self.errors.push(
                Diagnostic::error(Code::ProviderRef, format!("provider `{name}` with `for_each` needs an `alias`"))
                    .with_label(for_each.span, "instances of which configuration?")
                    .with_help(format!(
                        "add `alias = \"hosts\"` (any name), and choose an instance where it is used: \
                         `provider = {name}.hosts[each.key]`"
                    )),
            );
        }
        let mut body = block.body.clone();
        body.items.retain(
            |item| !matches!(item, infra_syntax::ast::BodyItem::Attribute(a) if matches!(a.name.name.as_str(), "alias" | "for_each")),
        );
        Some(ProviderBlock { reference: ProviderRef { name, alias }, for_each, body, span: block.span })
    }

    /// `providers = { docker = docker.hosts[each.key], docker.db = docker.db }`.
    fn provider_passes(&mut self, attribute: &Attribute) -> Vec<ProviderPass> {
        let ExprKind::Object(items) = &attribute.value.kind else {
            self.errors.push(bad_providers_map(attribute.value.span));
            return Vec::new();
        };
        let mut passes = Vec::new();
        for item in items {
            let inner = match &item.key {
                infra_syntax::ast::ObjectKey::Ident(name) => Some(ProviderRef { name: name.name.clone(), alias: None }),
                infra_syntax::ast::ObjectKey::Expr(e) => provider_path(e),
            };
            match (inner, provider_choice(&item.value)) {
                (Some(inner), Some(outer)) => passes.push(ProviderPass { inner, outer }),
                _ => self.errors.push(bad_providers_map(item.value.span)),
            }
        }
        passes
    }

    /// The resource block, its body's items moved out of `block`.
    fn resource(&mut self, block: &mut Block) -> Option<Resource> {
        let name = self.labels(block, &["NAME"])?[0].clone();
        if RESERVED_ROOTS.contains(&block.kind.name.as_str()) {
            self.errors.push(
                Diagnostic::error(
                    Code::ReservedName,
                    format!("`{}` is reserved and cannot be a resource type", block.kind.name),
                )
                .with_label(block.kind.span, "reserved name"),
            );
            return None;
        }
        let mut resource = Resource {
            kind: block.kind.clone(),
            name,
            body: Body { items: Vec::with_capacity(block.body.items.len()), span: block.body.span },
            count: None,
            for_each: None,
            depends_on: self.depends_on(&block.body),
            provider: None,
            lifecycle: Lifecycle::default(),
            span: block.span,
        };
        for item in std::mem::take(&mut block.body.items) {
            match item {
                BodyItem::Attribute(a) => match a.name.name.as_str() {
                    "count" => resource.count = Some(Box::new(a.value)),
                    "for_each" => resource.for_each = Some(Box::new(a.value)),
                    "depends_on" => {}
                    "provider" => resource.provider = self.provider_ref(&a).map(Box::new),
                    _ => resource.body.items.push(BodyItem::Attribute(a)),
                },
                BodyItem::Block(b) if b.kind.name == "lifecycle" => {
                    resource.lifecycle = self.lifecycle(&b);
                }
                other => resource.body.items.push(other),
            }
        }
        if let (Some(count), Some(_)) = (&resource.count, &resource.for_each) {
            self.errors.push(count_and_for_each(count.span, "a resource"));
        }
        Some(resource)
    }

    fn provider_ref(&mut self, attribute: &Attribute) -> Option<ProviderChoice> {
        let choice = provider_choice(&attribute.value);
        if choice.is_none() {
            self.errors.push(
                Diagnostic::error(Code::ProviderRef, "`provider` must name a provider configuration")
                    .with_label(attribute.value.span, "not a provider name")
                    .with_help(
                        "write `provider = NAME`, `provider = NAME.ALIAS` or, for one with `for_each`, \
                         `provider = NAME.ALIAS[KEY]`, without quotes",
                    ),
            );
        }
        choice
    }

    fn lifecycle(&mut self, block: &Block) -> Lifecycle {
        self.reject_unknown(&block.body, &attribute_names(LIFECYCLE_WORDS), &[], "a lifecycle block");
        let mut lifecycle = Lifecycle::default();
        for a in block.body.attributes() {
            match a.name.name.as_str() {
                "prevent_destroy" => lifecycle.prevent_destroy = self.literal_bool(a),
                "create_before_destroy" => lifecycle.create_before_destroy = self.literal_bool(a),
                "abandon_on_destroy" => lifecycle.abandon_on_destroy = self.literal_bool(a),
                "ignore_changes" => match &a.value.kind {
                    ExprKind::Tuple(items) => {
                        for item in items {
                            match item.as_traversal_path().as_deref() {
                                Some([name]) => lifecycle.ignore_changes.push((*name).clone()),
                                _ => self.errors.push(
                                    Diagnostic::error(Code::IgnoreChanges, "`ignore_changes` lists attribute names")
                                        .with_label(item.span, "not an attribute name"),
                                ),
                            }
                        }
                    }
                    _ => self.errors.push(
                        Diagnostic::error(Code::IgnoreChanges, "`ignore_changes` must be a list of attribute names")
                            .with_label(a.value.span, "not a list")
                            .with_help("write `ignore_changes = [content, mode]`"),
                    ),
                },
                _ => {}
            }
        }
        lifecycle
    }
}

/// `NAME` or `NAME.ALIAS` as written in an expression.
fn provider_path(expr: &Expr) -> Option<ProviderRef> {
    match expr.as_traversal_path().as_deref() {
        Some([name]) => Some(ProviderRef { name: name.name.clone(), alias: None }),
        Some([name, alias]) => Some(ProviderRef { name: name.name.clone(), alias: Some(alias.name.clone()) }),
        _ => None,
    }
}

/// `NAME`, `NAME.ALIAS` or `NAME.ALIAS[KEY]`.
fn provider_choice(expr: &Expr) -> Option<ProviderChoice> {
    let (path, instance) = match &expr.kind {
        ExprKind::Index(inner, key) => (inner.as_ref(), Some((**key).clone())),
        _ => (expr, None),
    };
    Some(ProviderChoice { reference: provider_path(path)?, instance, span: expr.span })
}

fn bad_providers_map(span: Span) -> Diagnostic {
    Diagnostic::error(Code::ProviderRef, "`providers` maps names in the module to provider configurations")
        .with_label(span, "not NAME = NAME.ALIAS")
        .with_help("write `providers = { docker = docker.hosts[each.key] }`, without quotes")
}

fn count_and_for_each(count: Span, what: &str) -> Diagnostic {
    Diagnostic::error(Code::CountAndForEach, format!("{what} cannot have both `count` and `for_each`"))
        .with_label(count, "`count` here")
        .with_help("keep one: `count` for N identical copies, `for_each` for one per map key")
}

/// Reads a type expression: `string`, `list(number)`, `map(string)`,
/// `object({ name = string })`, `any`.
pub fn parse_type_expr(expr: &Expr) -> Result<Type, Diagnostic> {
    let bad = || {
        Diagnostic::error(Code::BadType, "not a type")
            .with_label(expr.span, "unknown type")
            .with_help("types are string, number, bool, any, list(T), set(T), map(T) and object({ NAME = T, ... })")
    };
    match &expr.kind {
        ExprKind::Variable(name) => match name.name.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Any),
            _ => Err(bad()),
        },
        ExprKind::Call { name, args, .. } if args.len() == 1 => match name.name.as_str() {
            "list" | "set" => Ok(Type::list(parse_type_expr(&args[0])?)),
            "map" => Ok(Type::map(parse_type_expr(&args[0])?)),
            "object" => match &args[0].kind {
                ExprKind::Object(items) => {
                    let mut fields = std::collections::BTreeMap::new();
                    for item in items {
                        let key = match &item.key {
                            infra_syntax::ast::ObjectKey::Ident(i) => i.name.clone(),
                            infra_syntax::ast::ObjectKey::Expr(e) => e.as_literal_str().ok_or_else(bad)?,
                        };
                        fields.insert(key, parse_type_expr(&item.value)?);
                    }
                    Ok(Type::Object(fields))
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_found_by_borrowed_kind_and_name() {
        let mut module = Module::default();
        for i in 0..100 {
            let (kind, name) = (format!("k{}", i % 7), format!("n{i}"));
            let resource = Resource {
                kind: Ident { name: kind.clone(), span: Span::default() },
                name: Ident { name: name.clone(), span: Span::default() },
                body: Body::default(),
                count: None,
                for_each: None,
                depends_on: Vec::new(),
                provider: None,
                lifecycle: Lifecycle::default(),
                span: Span::default(),
            };
            module.resources.insert((kind, name), resource);
        }
        assert_eq!(module.resource("k3", "n10").map(|r| r.name.name.as_str()), Some("n10"));
        assert!(module.resource("k4", "n10").is_none(), "the kind is part of the key");
        assert!(module.resource("k3", "n1").is_none());
    }
}
