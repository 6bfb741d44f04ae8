//! The document's outline (`textDocument/documentSymbol`): its blocks named
//! as references name them (`file.motd`, `var.region`, `module.web`), each
//! local on its own.

use infra_syntax::ast::{Block, Body};
use lsp_types::{DocumentSymbol, SymbolKind};

use crate::position::LineIndex;

/// The outline of `text`; empty when it does not parse (the client keeps
/// showing the last one it had).
pub fn outline(text: &str) -> Vec<DocumentSymbol> {
    let Ok(file) = infra_syntax::parse(infra_syntax::FileId(0), text) else {
        return Vec::new();
    };
    let index = LineIndex::new(text);
    file.body.blocks().map(|block| symbol(&index, block)).collect()
}

fn symbol(index: &LineIndex, block: &Block) -> DocumentSymbol {
    let label = block.labels.first().map(|l| l.name.as_str()).unwrap_or_default();
    let (name, kind) = match block.kind.name.as_str() {
        "variable" => (format!("var.{label}"), SymbolKind::VARIABLE),
        "output" => (format!("output.{label}"), SymbolKind::PROPERTY),
        "module" => (format!("module.{label}"), SymbolKind::MODULE),
        "provider" => (format!("provider {label}"), SymbolKind::INTERFACE),
        "locals" => ("locals".to_string(), SymbolKind::NAMESPACE),
        keyword if infra_lang::keywords::keyword(keyword).is_some() => (keyword.to_string(), SymbolKind::KEY),
        kind => (format!("{kind}.{label}"), SymbolKind::STRUCT),
    };
    let named = block.labels.first().map_or(block.kind.span, |l| l.span);
    let children = (block.kind.name == "locals").then(|| locals(index, &block.body));
    #[allow(deprecated)] // the field is required, and deprecated in favour of `tags`
    DocumentSymbol {
        name,
        detail: None,
        kind,
        tags: None,
        deprecated: None,
        range: index.range(block.span.start, block.span.end),
        selection_range: index.range(named.start, named.end),
        children,
    }
}

fn locals(index: &LineIndex, body: &Body) -> Vec<DocumentSymbol> {
    body.attributes()
        .map(|a| {
            #[allow(deprecated)]
            DocumentSymbol {
                name: format!("local.{}", a.name.name),
                detail: None,
                kind: SymbolKind::CONSTANT,
                tags: None,
                deprecated: None,
                range: index.range(a.span.start, a.span.end),
                selection_range: index.range(a.name.span.start, a.name.span.end),
                children: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_named_as_references_name_them() {
        let text = "variable \"region\" {}\nlocals {\n  a = 1\n  b = 2\n}\nfile \"motd\" {\n  path = \"m\"\n}\nmodule \"web\" {\n  source = \"./w\"\n}\n";
        let symbols = outline(text);
        let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["var.region", "locals", "file.motd", "module.web"]);
        let locals: Vec<&str> = symbols[1].children.iter().flatten().map(|s| s.name.as_str()).collect();
        assert_eq!(locals, ["local.a", "local.b"]);
        assert_eq!(symbols[2].selection_range.start, lsp_types::Position::new(5, 5));
        assert!(outline("file \"x\" {").is_empty());
    }
}
