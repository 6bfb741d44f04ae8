//! Hover, go to definition and find references: the reference or word under
//! the cursor resolved in the configuration (`words::resolve`), then described
//! or located.

use infra_core::ProviderRegistry;
use infra_lang::{Config, ModuleId, Reference};
use infra_syntax::Span;
use infra_syntax::ast::{Body, BodyItem};
use lsp_types::{Location, Url};

use crate::context::{self, Spot};
use crate::position::LineIndex;
use crate::words::{self, Target, called_module};

/// Which references count as uses of the symbol being looked for.
type Matcher<'a> = Box<dyn Fn(&Reference) -> bool + 'a>;

/// Markdown describing what is under byte `offset` of `text`, the root module's file.
pub fn hover(text: &str, offset: usize, config: &Config, registry: &ProviderRegistry) -> Option<String> {
    if let Some(item) = word_at_name(text, offset, config, registry) {
        let detail = if item.detail.is_empty() { String::new() } else { format!(" ({})", item.detail) };
        return Some(format!("**{}**{detail}\n\n{}", item.name, item.doc));
    }
    let chain = context::chain_at(text, offset)?;
    let target = resolve_in_code(text, offset, &chain, config, registry)?;
    Some(describe(&target, config))
}

/// The declaration of what is under the cursor.
pub fn definition(text: &str, offset: usize, config: &Config, registry: &ProviderRegistry) -> Option<Location> {
    let chain = context::chain_at(text, offset)?;
    let span = match resolve_in_code(text, offset, &chain, config, registry)? {
        Target::Variable(_, v) => v.name.span,
        Target::Local(_, l) => l.name.span,
        Target::Call(_, c) => return module_entry(config, c).or_else(|| location(config, c.name.span)),
        Target::Output(_, _, o) => o.name.span,
        Target::Resource(_, r) => r.name.span,
        Target::Attribute(_, r, name, _) => r.body.attribute(name).map_or(r.name.span, |a| a.name.span),
        Target::Function(_) => return None,
    };
    location(config, span)
}

/// Every place the configuration refers to what is under the cursor, and its
/// declaration when `include_declaration`.
pub fn references(
    text: &str,
    offset: usize,
    config: &Config,
    registry: &ProviderRegistry,
    include_declaration: bool,
) -> Vec<Location> {
    let Some(chain) = context::chain_at(text, offset).or_else(|| declared_at(text, offset)) else {
        return Vec::new();
    };
    let Some(target) = words::resolve(&chain, config, 0, registry) else {
        return Vec::new();
    };
    let (module, wanted, declaration): (ModuleId, Matcher<'_>, Span) = match target {
        Target::Variable(m, v) => {
            (m, Box::new(move |r| matches!(r, Reference::Var(n) if *n == v.name.name)), v.name.span)
        }
        Target::Local(m, l) => {
            (m, Box::new(move |r| matches!(r, Reference::Local(n) if *n == l.name.name)), l.name.span)
        }
        Target::Call(m, c) => (m, Box::new(move |r| referenced_call(r) == Some(c.name.name.as_str())), c.name.span),
        Target::Output(m, c, o) => (
            m,
            Box::new(
                move |r| matches!(r, Reference::ModuleOutput { module, output, .. } if *module == c.name.name && *output == o.name.name),
            ),
            o.name.span,
        ),
        Target::Resource(m, res) | Target::Attribute(m, res, _, _) => (
            m,
            Box::new(
                move |r| matches!(r, Reference::Resource { kind, name } if *kind == res.kind.name && *name == res.name.name),
            ),
            res.name.span,
        ),
        Target::Function(_) => return Vec::new(),
    };
    let mut spans = spans_referring(config, module, wanted.as_ref());
    if include_declaration {
        spans.insert(0, declaration);
    }
    spans.into_iter().filter_map(|s| location(config, s)).collect()
}

fn referenced_call(reference: &Reference) -> Option<&str> {
    match reference {
        Reference::Module(name) | Reference::ModuleOutput { module: name, .. } => Some(name),
        _ => None,
    }
}

/// On a declaration's label (`variable "region"`, `file "motd"`): the
/// reference that names it.
fn declared_at(text: &str, offset: usize) -> Option<Vec<String>> {
    let line_start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let label = words.next()?.trim_matches('"').to_string();
    let root = match kind {
        "variable" => "var",
        "module" => "module",
        _ => kind,
    };
    Some(vec![root.to_string(), label])
}

/// The word being hovered when it is where an attribute or block starts.
fn word_at_name(text: &str, offset: usize, config: &Config, registry: &ProviderRegistry) -> Option<words::Item> {
    let chain = context::chain_at(text, offset)?;
    let [word] = chain.as_slice() else { return None };
    let start = text[..offset.min(text.len())]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    let place = context::place(text, start);
    if !matches!(place.spot, Spot::Name { .. }) {
        return None;
    }
    words::words_in(&place.blocks, config, config.root(), registry).into_iter().find(|i| i.name == *word)
}

/// `chain` resolved in the root module; a lone name only as a function call.
fn resolve_in_code<'c>(
    text: &str,
    offset: usize,
    chain: &'c [String],
    config: &'c Config,
    registry: &'c ProviderRegistry,
) -> Option<Target<'c>> {
    let place = context::place(text, offset);
    if matches!(place.spot, Spot::Elsewhere) {
        return None;
    }
    if let [name] = chain {
        let after = text[offset..].trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        return after.starts_with('(').then(|| infra_lang::function_doc(name)).flatten().map(Target::Function);
    }
    words::resolve(chain, config, 0, registry)
}

fn describe(target: &Target<'_>, config: &Config) -> String {
    match target {
        Target::Variable(_, v) => {
            let default = v
                .default
                .as_ref()
                .map(|d| format!("\n\ndefault: `{}`", config.sources.snippet(d.span)))
                .unwrap_or_default();
            let sensitive = if v.sensitive { ", sensitive" } else { "" };
            format!(
                "**variable** `{}`: {}{sensitive}\n\n{}{default}",
                v.name.name,
                v.ty,
                v.description.as_deref().unwrap_or("")
            )
        }
        Target::Local(_, l) => format!("**local** `{}` = `{}`", l.name.name, config.sources.snippet(l.value.span)),
        Target::Call(_, c) => format!("**module** `{}` from `{}`", c.name.name, c.source),
        Target::Output(_, c, o) => {
            format!(
                "**output** `{}` of module `{}`\n\n{}",
                o.name.name,
                c.name.name,
                o.description.as_deref().unwrap_or("")
            )
        }
        Target::Resource(_, r) => format!("**{}** `{}`", r.kind.name, r.name.name),
        Target::Attribute(_, r, name, schema) => match schema {
            Some(a) => format!("`{}.{}.{name}`: {}\n\n{}", r.kind.name, r.name.name, a.ty, a.description),
            None => format!("`{}.{}.{name}`", r.kind.name, r.name.name),
        },
        Target::Function(f) => format!("```\n{}\n```\n{}", f.signature, f.summary),
    }
}

/// Every reference `wanted` accepts in the files of module `m`.
fn spans_referring(config: &Config, m: ModuleId, wanted: &dyn Fn(&Reference) -> bool) -> Vec<Span> {
    let dir = infra_lang::normal_path(&config.modules[m].dir);
    let mut spans = Vec::new();
    for (id, file) in config.sources.files() {
        if infra_lang::normal_path(&file.path).parent() != Some(dir.as_path()) {
            continue;
        }
        if let Ok(ast) = infra_syntax::parse(id, &file.text) {
            collect(&ast.body, wanted, &mut spans);
        }
    }
    spans
}

fn collect(body: &Body, wanted: &dyn Fn(&Reference) -> bool, out: &mut Vec<Span>) {
    for item in &body.items {
        match item {
            BodyItem::Attribute(a) => {
                out.extend(infra_lang::references(&a.value).into_iter().filter(|(r, _)| wanted(r)).map(|(_, s)| s));
            }
            BodyItem::Block(b) => collect(&b.body, wanted, out),
        }
    }
}

fn location(config: &Config, span: Span) -> Option<Location> {
    let file = config.sources.get(span.file);
    let uri = Url::from_file_path(infra_lang::normal_path(&file.path)).ok()?;
    Some(Location::new(uri, LineIndex::new(&file.text).range(span.start, span.end)))
}

/// The first file of the module a call loads: where "go to definition" on
/// `module.NAME` leads, into the module's directory.
fn module_entry(config: &Config, call: &infra_lang::ModuleCall) -> Option<Location> {
    let dir = infra_lang::normal_path(&called_module(config, call)?.dir);
    let (_, file) =
        config.sources.files().find(|(_, f)| infra_lang::normal_path(&f.path).parent() == Some(dir.as_path()))?;
    let uri = Url::from_file_path(infra_lang::normal_path(&file.path)).ok()?;
    Some(Location::new(uri, lsp_types::Range::default()))
}
