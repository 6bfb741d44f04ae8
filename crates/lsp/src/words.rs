//! What may be written where: the words a block takes (from the language's own
//! keywords, a provider's schema, or a called module's variables) and what a
//! dotted reference names. Completion, hover and navigation all ask here, so
//! they agree with each other and with the checker.

use infra_core::{AttributeSchema, ProviderRegistry, Schema};
use infra_lang::keywords::{self, KEYWORDS, LIFECYCLE_WORDS, NESTED_KEYWORDS, Word};
use infra_lang::{Config, FunctionDoc, Local, Module, ModuleCall, ModuleId, Output, Resource, Variable};

use crate::context::Header;

/// A word that may be written in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub is_block: bool,
    /// The type and flags (`string, required`), or the labels a block takes.
    pub detail: String,
    pub doc: String,
}

impl Item {
    fn word(word: &Word) -> Item {
        Item { name: word.name.to_string(), is_block: word.is_block, detail: String::new(), doc: word.doc.to_string() }
    }

    fn attribute(name: &str, schema: &AttributeSchema) -> Item {
        let mut flags = vec![schema.ty.to_string()];
        flags.extend(schema.required.then(|| "required".to_string()));
        flags.extend(schema.sensitive.then(|| "sensitive".to_string()));
        flags.extend(schema.force_new.then(|| "changing it replaces the object".to_string()));
        flags.extend((schema.computed && !schema.required).then(|| "known after apply when not set".to_string()));
        Item { name: name.to_string(), is_block: false, detail: flags.join(", "), doc: schema.description.to_string() }
    }

    fn schema_words(schema: &Schema) -> Vec<Item> {
        let attributes = schema.attributes.iter().filter(|(_, a)| !a.read_only).map(|(n, a)| Item::attribute(n, a));
        let blocks = schema.blocks.iter().map(|(name, block)| Item {
            name: name.to_string(),
            is_block: true,
            detail: "block".to_string(),
            doc: block.schema.description.to_string(),
        });
        attributes.chain(blocks).collect()
    }
}

/// The schema of a resource type for a block writing `written`: the provider
/// the checker would choose, else the first that offers the type.
pub fn resource_schema<'r>(registry: &'r ProviderRegistry, kind: &str, written: &[&str]) -> Option<&'r Schema> {
    let provider = registry.best_fit(kind, written).or_else(|| registry.providers_of(kind).first().copied())?;
    registry.get(provider)?.schema().resources.get(kind)
}

/// The schema of a resource block declared in `module`, by its header; `None`
/// for a name not declared there.
pub fn declared_schema<'r>(
    registry: &'r ProviderRegistry,
    module: &Module,
    kind: &str,
    name: Option<&str>,
) -> Option<&'r Schema> {
    let resource = name.and_then(|n| module.resources.get(&(kind.to_string(), n.to_string())));
    let written: Vec<&str> = resource.map_or_else(Vec::new, written_names);
    resource_schema(registry, kind, &written)
}

fn written_names(resource: &Resource) -> Vec<&str> {
    resource.body.item_names().collect()
}

/// What may be written directly inside the blocks `path` (outermost first).
pub fn words_in(path: &[Header], config: &Config, module: &Module, registry: &ProviderRegistry) -> Vec<Item> {
    let Some((first, nested)) = path.split_first() else {
        return top_level(registry);
    };
    let label = first.labels.first().map(String::as_str);
    if let Some(keyword) = keywords::keyword(&first.kind) {
        return match (keyword.kind, nested) {
            ("module", []) => module_words(config, module, label),
            ("provider", _) => {
                let settings = label.and_then(|name| registry.get(name)).map(|f| &f.schema().config);
                let mut items = settings.map(|s| words_in_schema(s, nested)).unwrap_or_default();
                if nested.is_empty() {
                    items.extend(keywords::PROVIDER_META_WORDS.iter().map(Item::word));
                }
                items
            }
            (_, []) => keyword.words.iter().map(Item::word).collect(),
            (_, [inner]) => nested_keyword(&inner.kind),
            _ => Vec::new(),
        };
    }
    match nested {
        [inner] if inner.kind == "lifecycle" => LIFECYCLE_WORDS.iter().map(Item::word).collect(),
        _ => {
            let Some(schema) = declared_schema(registry, module, &first.kind, label) else {
                return Vec::new();
            };
            let mut items = words_in_schema(schema, nested);
            if nested.is_empty() {
                items.extend(keywords::RESOURCE_META_WORDS.iter().map(Item::word));
            }
            items
        }
    }
}

fn nested_keyword(kind: &str) -> Vec<Item> {
    NESTED_KEYWORDS.iter().filter(|(k, _)| *k == kind).flat_map(|(_, words)| words.iter().map(Item::word)).collect()
}

fn words_in_schema(schema: &Schema, nested: &[Header]) -> Vec<Item> {
    let mut schema = schema;
    for header in nested {
        match schema.blocks.get(header.kind.as_str()) {
            Some(block) => schema = &block.schema,
            None => return Vec::new(),
        }
    }
    Item::schema_words(schema)
}

fn top_level(registry: &ProviderRegistry) -> Vec<Item> {
    let keywords = KEYWORDS.iter().map(|k| Item {
        name: k.kind.to_string(),
        is_block: true,
        detail: k.labels.iter().map(|l| format!("\"{l}\"")).collect::<Vec<_>>().join(" "),
        doc: k.doc.to_string(),
    });
    let types = registry.resource_types().into_iter().map(|kind| Item {
        name: kind.to_string(),
        is_block: true,
        detail: format!("resource ({})", registry.providers_of(kind).join(", ")),
        doc: resource_schema(registry, kind, &[]).map(|s| s.description.to_string()).unwrap_or_default(),
    });
    keywords.chain(types).collect()
}

/// A module call's words: its meta-arguments and the called module's variables.
fn module_words(config: &Config, module: &Module, name: Option<&str>) -> Vec<Item> {
    let mut items: Vec<Item> = keywords::MODULE_META_WORDS.iter().map(Item::word).collect();
    if let Some(called) = name.and_then(|n| called_module(config, module.calls.get(n)?)) {
        items.extend(called.variables.values().map(|v| Item {
            name: v.name.name.clone(),
            is_block: false,
            detail: format!("{}{}", v.ty, if v.default.is_none() { ", required" } else { "" }),
            doc: v.description.clone().unwrap_or_default(),
        }));
    }
    items
}

pub fn called_module<'c>(config: &'c Config, call: &ModuleCall) -> Option<&'c Module> {
    call.module.map(|id| &config.modules[id])
}

/// What a dotted reference names, as far as it is written.
#[derive(Clone, Copy, Debug)]
pub enum Target<'c> {
    Variable(ModuleId, &'c Variable),
    Local(ModuleId, &'c Local),
    Call(ModuleId, &'c ModuleCall),
    /// An output of the module a call in `ModuleId` loads.
    Output(ModuleId, &'c ModuleCall, &'c Output),
    Resource(ModuleId, &'c Resource),
    /// An attribute of a declared resource, and its schema when the type is known.
    Attribute(ModuleId, &'c Resource, &'c str, Option<&'c AttributeSchema>),
    Function(&'static FunctionDoc),
}

/// Resolves `chain` (`["var", "name"]`, `["file", "motd", "path"]`) in module `m`.
pub fn resolve<'c>(
    chain: &'c [String],
    config: &'c Config,
    m: ModuleId,
    registry: &'c ProviderRegistry,
) -> Option<Target<'c>> {
    let module = &config.modules[m];
    let steps: Vec<&str> = chain.iter().map(String::as_str).collect();
    match steps.as_slice() {
        ["var", name, ..] => module.variables.get(*name).map(|v| Target::Variable(m, v)),
        ["local", name, ..] => module.locals.get(*name).map(|l| Target::Local(m, l)),
        ["module", name] => module.calls.get(*name).map(|c| Target::Call(m, c)),
        ["module", name, output, ..] => {
            let call = module.calls.get(*name)?;
            called_module(config, call)?.outputs.get(*output).map(|o| Target::Output(m, call, o))
        }
        [kind, name] => module.resources.get(&(kind.to_string(), name.to_string())).map(|r| Target::Resource(m, r)),
        [kind, name, attribute, ..] => {
            let resource = module.resources.get(&(kind.to_string(), name.to_string()))?;
            let schema = resource_schema(registry, kind, &written_names(resource));
            Some(Target::Attribute(m, resource, &chain[2], schema.and_then(|s| s.attributes.get(*attribute))))
        }
        [name] => infra_lang::function_doc(name).map(Target::Function),
        _ => None,
    }
}
