//! Completion: block types and attribute names where a line starts, references
//! and functions in expressions.

use infra_core::ProviderRegistry;
use infra_lang::{Config, FUNCTION_DOCS, Module, keywords};
use lsp_types::{CompletionItem, CompletionItemKind, Documentation, InsertTextFormat, MarkupContent, MarkupKind};

use crate::context::{Place, Spot};
use crate::words::{self, Item, called_module};

/// What may be written at `place` in the root module of `config`.
pub fn complete(place: &Place, config: &Config, registry: &ProviderRegistry) -> Vec<CompletionItem> {
    let module = config.root();
    let mut items = match &place.spot {
        Spot::Name { .. } => {
            let top = place.blocks.is_empty();
            words::words_in(&place.blocks, config, module, registry).iter().map(|i| name_item(i, top)).collect()
        }
        Spot::Expression { chain, .. } => expression_items(chain, config, module, registry),
        Spot::Elsewhere => Vec::new(),
    };
    let partial = match &place.spot {
        Spot::Name { partial } | Spot::Expression { partial, .. } => partial.as_str(),
        Spot::Elsewhere => "",
    };
    items.retain(|i| i.label.starts_with(partial));
    items.sort_by(|a, b| a.label.cmp(&b.label));
    items.dedup_by(|a, b| a.label == b.label);
    items
}

fn name_item(item: &Item, top_level: bool) -> CompletionItem {
    let (kind, insert) = if !item.is_block {
        (CompletionItemKind::PROPERTY, format!("{} = $0", item.name))
    } else if top_level {
        let labels = keywords::keyword(&item.name).map_or(&["NAME"][..], |k| k.labels);
        let labels: String =
            labels.iter().enumerate().map(|(i, l)| format!(" \"${{{}:{}}}\"", i + 1, l.to_lowercase())).collect();
        let kind = if keywords::keyword(&item.name).is_some() {
            CompletionItemKind::KEYWORD
        } else {
            CompletionItemKind::CLASS
        };
        (kind, format!("{}{labels} {{\n\t$0\n}}", item.name))
    } else {
        (CompletionItemKind::STRUCT, format!("{} {{\n\t$0\n}}", item.name))
    };
    CompletionItem {
        label: item.name.clone(),
        kind: Some(kind),
        detail: (!item.detail.is_empty()).then(|| item.detail.clone()),
        documentation: markdown(&item.doc),
        insert_text: Some(insert),
        insert_text_format: Some(InsertTextFormat::SNIPPET),
        ..CompletionItem::default()
    }
}

fn markdown(text: &str) -> Option<Documentation> {
    (!text.is_empty())
        .then(|| Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value: text.to_string() }))
}

fn simple(label: &str, kind: CompletionItemKind, detail: String, doc: &str) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: (!detail.is_empty()).then_some(detail),
        documentation: markdown(doc),
        ..CompletionItem::default()
    }
}

fn expression_items(
    chain: &[String],
    config: &Config,
    module: &Module,
    registry: &ProviderRegistry,
) -> Vec<CompletionItem> {
    use CompletionItemKind as K;
    let steps: Vec<&str> = chain.iter().map(String::as_str).collect();
    match steps.as_slice() {
        [] => roots(module),
        ["var"] => module
            .variables
            .values()
            .map(|v| simple(&v.name.name, K::VARIABLE, v.ty.to_string(), v.description.as_deref().unwrap_or("")))
            .collect(),
        ["local"] => module.locals.keys().map(|n| simple(n, K::VARIABLE, String::new(), "")).collect(),
        ["module"] => module.calls.values().map(|c| simple(&c.name.name, K::MODULE, c.source.clone(), "")).collect(),
        ["module", name] => module
            .calls
            .get(*name)
            .and_then(|call| called_module(config, call))
            .map(|called| {
                called
                    .outputs
                    .values()
                    .map(|o| simple(&o.name.name, K::FIELD, String::new(), o.description.as_deref().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default(),
        ["each"] => vec![
            simple("key", K::FIELD, String::new(), "This instance's key."),
            simple("value", K::FIELD, String::new(), "This instance's value in the for_each map."),
        ],
        ["count"] => vec![simple("index", K::FIELD, "number".into(), "This instance's index, from 0.")],
        ["path"] => ["module", "root", "cwd"].iter().map(|p| simple(p, K::FIELD, "string".into(), "")).collect(),
        [kind] => module
            .resources
            .keys()
            .filter(|(k, _)| k == kind)
            .map(|(_, n)| simple(n, K::VALUE, String::new(), ""))
            .collect(),
        [kind, name] => words::declared_schema(registry, module, kind, Some(name))
            .map(|s| s.attributes.iter().map(|(n, a)| simple(n, K::FIELD, a.ty.to_string(), a.description)).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// What an expression can start with: functions and the roots of references.
fn roots(module: &Module) -> Vec<CompletionItem> {
    use CompletionItemKind as K;
    let functions = FUNCTION_DOCS.iter().map(|f| CompletionItem {
        insert_text: Some(format!("{}($0)", f.name)),
        insert_text_format: Some(InsertTextFormat::SNIPPET),
        ..simple(f.name, K::FUNCTION, f.signature.to_string(), f.summary)
    });
    let fixed = [
        ("var", "The module's variables."),
        ("local", "The module's locals."),
        ("module", "The module's calls."),
        ("each", "The instance of a for_each."),
        ("count", "The instance of a count."),
        ("path", "Paths of the module and the root."),
        ("env", "The environment being planned."),
    ];
    let fixed = fixed.into_iter().map(|(n, doc)| simple(n, K::KEYWORD, String::new(), doc));
    let mut kinds: Vec<&str> = module.resources.keys().map(|(k, _)| k.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let kinds = kinds.into_iter().map(|k| simple(k, K::CLASS, "resource type".into(), ""));
    functions.chain(fixed).chain(kinds).collect()
}
