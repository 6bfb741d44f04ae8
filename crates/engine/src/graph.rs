//! The dependency graph of a configuration: variables, locals, outputs,
//! providers and resources as nodes; references and `depends_on` as edges.
//!
//! Building it checks every reference (with "did you mean"), every resource type
//! and provider, and reports a cycle as its full path `a → b → c → a`.

use std::collections::HashMap;

use infra_core::{ProviderKey, ProviderRegistry};
use infra_lang::{Config, ModuleId, ProviderRef, Reference, did_you_mean, references};
use infra_syntax::ast::Expr;
use infra_syntax::{Code, Diagnostic, Span};
use petgraph::graph::{DiGraph, NodeIndex};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Variable(ModuleId, String),
    Local(ModuleId, String),
    Output(ModuleId, String),
    /// A `check` block: evaluated once what it reads is planned.
    Check(ModuleId, String),
    /// A resource as written (before `count` / `for_each` expansion).
    Resource(ModuleId, String, String),
    /// A provider configuration, by key (`local`, `local.alias`).
    Provider(ProviderKey),
    /// The call `module "NAME"` in a module: decides the instances of the
    /// module it calls (`count`, `for_each`), so every node of that module
    /// comes after it.
    Call(ModuleId, String),
}

impl Node {
    /// The module whose instances the node is evaluated in (a call: the
    /// calling module; a provider: the root).
    pub fn module(&self) -> ModuleId {
        match self {
            Node::Variable(m, _)
            | Node::Local(m, _)
            | Node::Output(m, _)
            | Node::Check(m, _)
            | Node::Resource(m, _, _)
            | Node::Call(m, _) => *m,
            Node::Provider(_) => 0,
        }
    }
}

pub struct Graph {
    pub graph: DiGraph<Node, ()>,
    pub index: HashMap<Node, NodeIndex>,
    /// The provider key chosen for each resource.
    pub resource_provider: HashMap<(ModuleId, String, String), ProviderKey>,
}

impl Graph {
    pub fn node(&self, node: &Node) -> Option<NodeIndex> {
        self.index.get(node).copied()
    }

    /// Nodes in an order where dependencies come first.
    pub fn topological(&self) -> Vec<NodeIndex> {
        petgraph::algo::toposort(&self.graph, None).unwrap_or_default()
    }

    /// The node of the resource block an instance address belongs to.
    pub fn resource_node(&self, config: &Config, address: &infra_core::ResourceAddress) -> Option<NodeIndex> {
        let m = config.modules.iter().position(|module| address.in_module(&module.path))?;
        self.node(&Node::Resource(m, address.kind.clone(), address.name.clone()))
    }
}

/// A reference to something not declared, with "did you mean" among `candidates`.
fn unknown_reference(span: Span, what: &str, candidates: &[String], help_fallback: String) -> Diagnostic {
    let d = Diagnostic::error(Code::UnknownReference, format!("unknown reference `{what}`"))
        .with_label(span, "not declared");
    let leaf = what.rsplit('.').next().unwrap_or(what);
    let suggestion = did_you_mean(what, candidates.iter().map(String::as_str))
        .or_else(|| did_you_mean(leaf, candidates.iter().map(String::as_str)));
    match suggestion {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d.with_help(help_fallback),
    }
}

/// `count.index`, `each.*`, `path.*` and `env.*`: checked where they are used;
/// they name no node.
fn meta_reference(reference: &Reference, span: Span, ctx: Context) -> Result<Vec<NodeIndex>, Diagnostic> {
    match reference {
        Reference::CountIndex if !ctx.has_count => Err(Diagnostic::error(
            Code::CountOutside,
            "`count.index` is only available in a resource or module block with `count`",
        )
        .with_label(span, "no `count` here")),
        Reference::EachKey | Reference::EachValue if !ctx.has_each => Err(Diagnostic::error(
            Code::EachOutside,
            "`each.key` and `each.value` are only available in a resource or module block with `for_each`",
        )
        .with_label(span, "no `for_each` here")),
        Reference::Path(p) if !matches!(p.as_str(), "module" | "root" | "cwd") => {
            Err(Diagnostic::error(Code::UnknownReference, format!("unknown reference `path.{p}`"))
                .with_label(span, "not declared")
                .with_help("available: path.module, path.root, path.cwd"))
        }
        Reference::Env(attr) if attr != "name" => {
            Err(Diagnostic::error(Code::UnknownReference, format!("unknown reference `env.{attr}`"))
                .with_label(span, "not declared")
                .with_help("available: env.name, the environment being planned (`infra env`)"))
        }
        _ => Ok(Vec::new()),
    }
}

/// `module.web.url` where `module.web` has an instance per key or index.
fn output_of_every_instance(call: &str, output: &str, counted: bool, span: Span) -> Diagnostic {
    let (one, all) = if counted {
        (format!("module.{call}[0].{output}"), format!("module.{call}[*].{output}"))
    } else {
        (format!("module.{call}[\"KEY\"].{output}"), format!("[for key, m in module.{call} : m.{output}]"))
    };
    Diagnostic::error(
        Code::UnknownReference,
        format!(
            "`module.{call}` has an instance per {}: which one's `{output}`?",
            if counted { "index" } else { "key" }
        ),
    )
    .with_label(span, "no instance chosen")
    .with_help(format!("write `{one}` for one instance, or `{all}` for all of them"))
}

/// A module input the child module does not declare.
fn undeclared_input(
    call: &infra_lang::ModuleCall,
    input: &infra_syntax::ast::Attribute,
    child: &infra_lang::Module,
) -> Diagnostic {
    let d = Diagnostic::error(
        Code::UnknownVariable,
        format!("module `{}` has no variable `{}`", call.name.name, input.name.name),
    )
    .with_label(input.name.span, "not declared in the module");
    let help = did_you_mean(&input.name.name, child.variables.keys().map(String::as_str))
        .map(|s| format!("did you mean `{s}`?"))
        .unwrap_or_else(|| format!("declare `variable \"{}\" {{}}` in {}", input.name.name, child.dir.display()));
    d.with_help(help)
}

/// How a node reads in messages: `var.region`, `file.motd`, `module.web.local.x`.
pub fn describe(config: &Config, node: &Node) -> String {
    let prefix = |m: ModuleId| config.modules[m].path.iter().map(|p| format!("module.{p}.")).collect::<String>();
    match node {
        Node::Variable(m, n) => format!("{}var.{n}", prefix(*m)),
        Node::Local(m, n) => format!("{}local.{n}", prefix(*m)),
        Node::Output(m, n) => format!("{}output.{n}", prefix(*m)),
        Node::Check(m, n) => format!("{}check.{n}", prefix(*m)),
        Node::Resource(m, k, n) => format!("{}{k}.{n}", prefix(*m)),
        Node::Provider(key) => format!("provider.{key}"),
        Node::Call(m, n) => format!("{}module.{n}", prefix(*m)),
    }
}

struct Builder<'a> {
    config: &'a Config,
    registry: &'a ProviderRegistry,
    graph: DiGraph<Node, ()>,
    index: HashMap<Node, NodeIndex>,
    spans: HashMap<NodeIndex, Span>,
    resource_provider: HashMap<(ModuleId, String, String), ProviderKey>,
    edges: std::collections::HashSet<(NodeIndex, NodeIndex)>,
    errors: Vec<Diagnostic>,
}

pub fn build(config: &Config, registry: &ProviderRegistry) -> Result<Graph, Vec<Diagnostic>> {
    let mut b = Builder {
        config,
        registry,
        graph: DiGraph::new(),
        index: HashMap::new(),
        spans: HashMap::new(),
        resource_provider: HashMap::new(),
        edges: std::collections::HashSet::new(),
        errors: Vec::new(),
    };
    b.add_nodes();
    b.add_edges();
    b.check_cycles();
    if b.errors.is_empty() {
        Ok(Graph { graph: b.graph, index: b.index, resource_provider: b.resource_provider })
    } else {
        Err(b.errors)
    }
}

/// Where an expression is evaluated: which module, and whether `count` / `each` exist.
#[derive(Clone, Copy)]
struct Context {
    module: ModuleId,
    has_count: bool,
    has_each: bool,
}

impl Builder<'_> {
    fn add(&mut self, node: Node, span: Span) -> NodeIndex {
        let i = self.graph.add_node(node.clone());
        self.index.insert(node, i);
        self.spans.insert(i, span);
        i
    }

    fn add_nodes(&mut self) {
        for (m, module) in self.config.modules.iter().enumerate() {
            for (name, v) in &module.variables {
                self.add(Node::Variable(m, name.clone()), v.name.span);
            }
            for (name, l) in &module.locals {
                self.add(Node::Local(m, name.clone()), l.name.span);
            }
            for (name, o) in &module.outputs {
                self.add(Node::Output(m, name.clone()), o.name.span);
            }
            for (name, c) in &module.checks {
                self.add(Node::Check(m, name.clone()), c.name.span);
            }
            for ((kind, name), r) in &module.resources {
                self.add(Node::Resource(m, kind.clone(), name.clone()), r.name.span);
            }
            for (name, call) in &module.calls {
                if call.module.is_some() {
                    self.add(Node::Call(m, name.clone()), call.name.span);
                }
            }
        }
        for p in &self.config.root().providers {
            if self.registry.get(&p.reference.name).is_none() {
                let d = Diagnostic::error(Code::UnknownProvider, format!("unknown provider `{}`", p.reference.name))
                    .with_label(p.span, "no such provider");
                let help = match did_you_mean(&p.reference.name, self.registry.names()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("available providers: {}", self.registry.names().collect::<Vec<_>>().join(", ")),
                };
                self.errors.push(d.with_help(help));
                continue;
            }
            self.add(Node::Provider(p.reference.key()), p.span);
        }
        for (m, module) in self.config.modules.iter().enumerate() {
            if m != 0 {
                for p in &module.providers {
                    self.errors.push(
                        Diagnostic::error(Code::ModuleProvider, "provider blocks belong in the root configuration")
                            .with_label(p.span, "inside a module")
                            .with_help("configure providers once at the root; modules use them by name"),
                    );
                }
            }
        }
    }

    fn edge(&mut self, from: NodeIndex, to: NodeIndex) {
        // A set, not `update_edge`: a provider node has an edge to every resource,
        // and scanning them on each insert would make building quadratic.
        if self.edges.insert((from, to)) {
            self.graph.add_edge(from, to, ());
        }
    }

    fn add_edges(&mut self) {
        let config = self.config;
        for (m, module) in config.modules.iter().enumerate() {
            self.add_value_edges(m, module);
            self.check_variable_defaults(module);
            for call in module.calls.values() {
                self.add_call_edges(m, call);
            }
            for ((kind, name), resource) in &module.resources {
                self.add_resource_edges(m, kind, name, resource);
            }
        }
        for p in &config.root().providers {
            if let Some(&to) = self.index.get(&Node::Provider(p.reference.key())) {
                let plain = Context { module: 0, has_count: false, has_each: false };
                if let Some(for_each) = &p.for_each {
                    self.depend_on_expr(to, for_each, plain);
                }
                self.depend_on_body(to, &p.body, Context { has_each: p.for_each.is_some(), ..plain });
            }
        }
    }

    /// Locals, outputs and checks depend on what their expressions read.
    fn add_value_edges(&mut self, m: ModuleId, module: &infra_lang::Module) {
        let plain = Context { module: m, has_count: false, has_each: false };
        for (name, local) in &module.locals {
            let to = self.index[&Node::Local(m, name.clone())];
            self.depend_on_expr(to, &local.value, plain);
        }
        for (name, output) in &module.outputs {
            let to = self.index[&Node::Output(m, name.clone())];
            self.depend_on_expr(to, &output.value, plain);
            for d in &output.depends_on {
                self.depend_on_expr(to, d, plain);
            }
        }
        for (name, check) in &module.checks {
            let to = self.index[&Node::Check(m, name.clone())];
            for assert in &check.asserts {
                self.depend_on_expr(to, &assert.condition, plain);
                self.depend_on_expr(to, &assert.error_message, plain);
            }
        }
    }

    /// A variable's default is a constant: it may refer to nothing.
    fn check_variable_defaults(&mut self, module: &infra_lang::Module) {
        for (name, variable) in &module.variables {
            let Some(default) = &variable.default else { continue };
            for (_, span) in references(default) {
                self.errors.push(
                    Diagnostic::error(
                        Code::VariableDefault,
                        format!("the default of `var.{name}` cannot refer to anything"),
                    )
                    .with_label(span, "a reference")
                    .with_help("defaults are constants; use a local value to combine variables"),
                );
            }
        }
    }

    /// A module call: each input feeds the child's variable, every variable
    /// without a default must be given, and `depends_on` holds back every
    /// resource of the child.
    fn add_call_edges(&mut self, m: ModuleId, call: &infra_lang::ModuleCall) {
        let Some(child) = call.module else { return };
        let plain = Context { module: m, has_count: false, has_each: false };
        let repeated = Context { module: m, has_count: call.count.is_some(), has_each: call.for_each.is_some() };
        let call_node = self.index[&Node::Call(m, call.name.name.clone())];
        for meta in call.count.iter().chain(&call.for_each) {
            self.depend_on_expr(call_node, meta, plain);
        }
        let child_nodes: Vec<NodeIndex> = self
            .index
            .iter()
            .filter(|(node, _)| node.module() == child && !matches!(node, Node::Provider(_)))
            .map(|(_, i)| *i)
            .collect();
        for to in child_nodes {
            self.edge(call_node, to);
        }
        let child_module = &self.config.modules[child];
        for input in &call.inputs {
            match self.index.get(&Node::Variable(child, input.name.name.clone())) {
                Some(&to) => self.depend_on_expr(to, &input.value, repeated),
                None => self.errors.push(undeclared_input(call, input, child_module)),
            }
        }
        for (name, variable) in &child_module.variables {
            if variable.default.is_none() && !call.inputs.iter().any(|i| &i.name.name == name) {
                self.errors.push(
                    Diagnostic::error(
                        Code::MissingVariable,
                        format!("module `{}` needs a value for `{name}`", call.name.name),
                    )
                    .with_label(call.name.span, format!("add `{name} = ...` here"))
                    .with_label(variable.name.span, "declared here without a default"),
                );
            }
        }
        for pass in &call.providers {
            if let Some(instance) = &pass.outer.instance {
                self.depend_on_expr(call_node, instance, repeated);
            }
        }
        for d in &call.depends_on {
            let resources: Vec<NodeIndex> = child_module
                .resources
                .keys()
                .map(|(k, n)| self.index[&Node::Resource(child, k.clone(), n.clone())])
                .collect();
            for to in resources {
                self.depend_on_expr(to, d, plain);
            }
        }
    }

    /// A resource depends on what its meta-arguments and body read, and on its provider.
    fn add_resource_edges(&mut self, m: ModuleId, kind: &str, name: &str, resource: &infra_lang::Resource) {
        let to = self.index[&Node::Resource(m, kind.to_string(), name.to_string())];
        let plain = Context { module: m, has_count: false, has_each: false };
        let ctx = Context { module: m, has_count: resource.count.is_some(), has_each: resource.for_each.is_some() };
        for meta in resource.count.iter().chain(&resource.for_each) {
            self.depend_on_expr(to, meta, plain);
        }
        self.depend_on_body(to, &resource.body, ctx);
        for d in &resource.depends_on {
            self.depend_on_expr(to, d, plain);
        }
        self.choose_provider(m, resource, to);
    }

    fn depend_on_body(&mut self, to: NodeIndex, body: &infra_syntax::ast::Body, ctx: Context) {
        for attribute in body.attributes() {
            self.depend_on_expr(to, &attribute.value, ctx);
        }
        for block in body.blocks() {
            self.depend_on_body(to, &block.body, ctx);
        }
    }

    fn choose_provider(&mut self, m: ModuleId, resource: &infra_lang::Resource, to: NodeIndex) {
        let kind = &resource.kind.name;
        let offered_by = self.registry.providers_of(kind);
        let chosen = match (&resource.provider, offered_by.as_slice()) {
            (_, []) => {
                let d = Diagnostic::error(Code::UnknownResourceType, format!("unknown resource type `{kind}`"))
                    .with_label(resource.kind.span, "no provider offers this type");
                let types = self.registry.resource_types();
                let help = match did_you_mean(kind, types.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("known types: {}", types.join(", ")),
                };
                self.errors.push(d.with_help(help));
                return;
            }
            (Some(choice), offered) => {
                if !offered.contains(&choice.reference.name.as_str()) {
                    self.errors.push(
                        Diagnostic::error(
                            Code::ProviderMismatch,
                            format!("provider `{}` does not offer `{kind}`", choice.reference.name),
                        )
                        .with_label(choice.span, "wrong provider")
                        .with_help(format!("`{kind}` comes from: {}", offered.join(", "))),
                    );
                    return;
                }
                (choice.reference.clone(), Some(choice.span))
            }
            (None, [only]) => (ProviderRef { name: (*only).to_string(), alias: None }, None),
            (None, several) => {
                let written: Vec<&str> = resource.body.item_names().collect();
                if let Some(best) = self.registry.best_fit(kind, &written) {
                    let reference = ProviderRef { name: best.to_string(), alias: None };
                    return self.attach_provider(m, resource, to, reference, None);
                }
                self.errors.push(
                    Diagnostic::error(Code::AmbiguousProvider, format!("several providers offer `{kind}`"))
                        .with_label(resource.kind.span, "which one?")
                        .with_help(format!("add `provider = NAME` with one of: {}", several.join(", "))),
                );
                return;
            }
        };
        let (reference, span) = chosen;
        self.attach_provider(m, resource, to, reference, span);
    }

    fn attach_provider(
        &mut self,
        m: ModuleId,
        resource: &infra_lang::Resource,
        to: NodeIndex,
        reference: ProviderRef,
        span: Option<infra_syntax::Span>,
    ) {
        let kind = &resource.kind.name;
        let (key, passed_instance) = self.passed(m, reference.key());
        let span = span.unwrap_or(resource.kind.span);
        let provider_node = match self.index.get(&Node::Provider(key.clone())) {
            Some(&i) => i,
            None if key.alias().is_none() => self.add(Node::Provider(key.clone()), resource.kind.span),
            None => {
                self.errors.push(
                    Diagnostic::error(Code::UnknownProvider, format!("no provider configuration `{key}`"))
                        .with_label(span, "not configured")
                        .with_help(format!(
                            "add `provider \"{}\" {{ alias = \"{}\" }}` at the root",
                            key.name(),
                            key.alias().unwrap_or_default()
                        )),
                );
                return;
            }
        };
        let own_instance = resource.provider.as_ref().and_then(|c| c.instance.as_ref());
        if let Err(d) = self.check_instance_choice(&key, own_instance.is_some() || passed_instance, span) {
            self.errors.push(d);
        }
        if let Some(instance) = own_instance {
            let ctx = Context { module: m, has_count: resource.count.is_some(), has_each: resource.for_each.is_some() };
            self.depend_on_expr(to, instance, ctx);
        }
        self.edge(provider_node, to);
        self.resource_provider.insert((m, kind.clone(), resource.name.name.clone()), key);
    }

    /// The root configuration that `local` names in module `m` (through the
    /// `providers` maps of the calls above it), and whether one of them
    /// chose an instance of it.
    fn passed(&self, m: ModuleId, local: ProviderKey) -> (ProviderKey, bool) {
        let Some((parent, call)) = self.config.caller(m) else { return (local, false) };
        match call.providers.iter().find(|pass| pass.inner.key() == local) {
            Some(pass) => {
                let (key, keyed) = self.passed(parent, pass.outer.reference.key());
                (key, keyed || pass.outer.instance.is_some())
            }
            None => self.passed(parent, local),
        }
    }

    /// A configuration with `for_each` is used through one of its instances,
    /// and only such a configuration has instances to choose from.
    fn check_instance_choice(&self, key: &ProviderKey, chosen: bool, span: Span) -> Result<(), Diagnostic> {
        // Without an alias the block itself is refused (lang says so once).
        let repeated = (self.config.root().providers.iter())
            .any(|p| p.reference.key() == *key && p.for_each.is_some() && p.reference.alias.is_some());
        match (repeated, chosen) {
            (true, false) => Err(Diagnostic::error(
                Code::ProviderRef,
                format!("provider `{key}` has `for_each`: which instance manages this?"),
            )
            .with_label(span, "no instance chosen")
            .with_help(format!(
                "write `provider = {key}[each.key]`, or pass one to the module: `providers = {{ {} = {key}[each.key] }}`",
                key.name()
            ))),
            (false, true) => Err(Diagnostic::error(
                Code::ProviderRef,
                format!("provider `{key}` has no `for_each`, so it has no instances to choose from"),
            )
            .with_label(span, "an instance chosen")
            .with_help(format!("write `provider = {key}`, or give its block a `for_each`"))),
            _ => Ok(()),
        }
    }

    fn depend_on_expr(&mut self, to: NodeIndex, expr: &Expr, ctx: Context) {
        for (reference, span) in references(expr) {
            if let Some(targets) = self.resolve(&reference, span, ctx) {
                for from in targets {
                    self.edge(from, to);
                }
            }
        }
    }

    /// The nodes a reference reads, or a diagnostic when it names nothing.
    fn resolve(&mut self, reference: &Reference, span: Span, ctx: Context) -> Option<Vec<NodeIndex>> {
        let found = match reference {
            Reference::Var(_) | Reference::Local(_) | Reference::Resource { .. } => {
                self.resolve_named(reference, span, ctx.module)
            }
            Reference::Module(name) | Reference::ModuleOutput { module: name, .. } => {
                self.resolve_module(reference, name, span, ctx.module)?
            }
            _ => meta_reference(reference, span, ctx),
        };
        match found {
            Ok(nodes) => Some(nodes),
            Err(d) => {
                self.errors.push(d);
                None
            }
        }
    }

    /// `var.x`, `local.x` and `TYPE.NAME` in module `m`.
    fn resolve_named(&self, reference: &Reference, span: Span, m: ModuleId) -> Result<Vec<NodeIndex>, Diagnostic> {
        let module = &self.config.modules[m];
        let (node, what, candidates, help) = match reference {
            Reference::Var(name) => (
                Node::Variable(m, name.clone()),
                format!("var.{name}"),
                module.variables.keys().map(|k| format!("var.{k}")).collect(),
                format!("declare it with `variable \"{name}\" {{}}`"),
            ),
            Reference::Local(name) => (
                Node::Local(m, name.clone()),
                format!("local.{name}"),
                module.locals.keys().map(|k| format!("local.{k}")).collect(),
                format!("define it in a `locals {{ {name} = ... }}` block"),
            ),
            Reference::Resource { kind, name } => (
                Node::Resource(m, kind.clone(), name.clone()),
                format!("{kind}.{name}"),
                module.resources.keys().map(|(k, n)| format!("{k}.{n}")).collect::<Vec<_>>(),
                if self.registry.providers_of(kind).is_empty() {
                    format!("`{kind}` is neither a resource type nor a known name (var, local, module, ...)")
                } else {
                    format!("declare it with `{kind} \"{name}\" {{ ... }}`")
                },
            ),
            _ => return Ok(Vec::new()),
        };
        self.index.get(&node).map(|i| vec![*i]).ok_or_else(|| unknown_reference(span, &what, &candidates, help))
    }

    /// `module.NAME` (all its outputs) or `module.NAME.OUTPUT`; `None` when the
    /// module itself could not be loaded (that is reported where it is called).
    fn resolve_module(
        &self,
        reference: &Reference,
        name: &str,
        span: Span,
        m: ModuleId,
    ) -> Option<Result<Vec<NodeIndex>, Diagnostic>> {
        let module = &self.config.modules[m];
        let Some(call) = module.calls.get(name) else {
            let candidates: Vec<String> = module.calls.keys().map(|k| format!("module.{k}")).collect();
            let help = format!("add a `module \"{name}\" {{ source = \"...\" }}` block");
            return Some(Err(unknown_reference(span, &format!("module.{name}"), &candidates, help)));
        };
        let child = call.module?;
        let outputs = &self.config.modules[child].outputs;
        Some(match reference {
            Reference::ModuleOutput { output, indexed: false, .. }
                if call.count.is_some() || call.for_each.is_some() =>
            {
                Err(output_of_every_instance(name, output, call.count.is_some(), span))
            }
            Reference::ModuleOutput { output, .. } => match outputs.get(output) {
                Some(_) => Ok(vec![self.index[&Node::Output(child, output.clone())]]),
                None => {
                    let candidates: Vec<String> = outputs.keys().map(|k| format!("module.{name}.{k}")).collect();
                    let help = format!("the module declares no `output \"{output}\"`");
                    Err(unknown_reference(span, &format!("module.{name}.{output}"), &candidates, help))
                }
            },
            _ => Ok(outputs.keys().map(|o| self.index[&Node::Output(child, o.clone())]).collect()),
        })
    }

    fn check_cycles(&mut self) {
        for scc in petgraph::algo::tarjan_scc(&self.graph) {
            let is_cycle = scc.len() > 1 || self.graph.contains_edge(scc[0], scc[0]);
            if !is_cycle {
                continue;
            }
            let path = self.cycle_path(&scc);
            let names: Vec<String> = path.iter().map(|i| describe(self.config, &self.graph[*i])).collect();
            let mut d = Diagnostic::error(Code::Cycle, format!("dependency cycle: {}", names.join(" → ")));
            for (i, node) in path.iter().take(path.len() - 1).enumerate() {
                let label = format!("{} refers to {}", names[i], names[i + 1]);
                d = d.with_label(self.spans[node], label);
            }
            self.errors.push(d.with_help("break the cycle: one of these must not depend on the other"));
        }
    }

    /// A closed walk through one strongly connected component, first node repeated at the end.
    fn cycle_path(&self, scc: &[NodeIndex]) -> Vec<NodeIndex> {
        let start = *scc.iter().min().expect("non-empty component");
        let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
        // Breadth-first search for the shortest way back to `start`.
        let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for next in self.graph.neighbors(n) {
                if !members.contains(&next) {
                    continue;
                }
                if next == start {
                    let mut path = vec![start];
                    let mut cur = n;
                    while cur != start {
                        path.push(cur);
                        cur = previous[&cur];
                    }
                    path.push(start);
                    // Edges point from dependency to dependent; a user reads "a refers to b".
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = previous.entry(next) {
                    e.insert(n);
                    queue.push_back(next);
                }
            }
        }
        vec![start, start]
    }
}
