//! `infra lsp`: a language server for `.infra` files, on the same parser,
//! evaluator and provider schemas as the CLI, so an editor shows exactly what
//! `infra validate` would say.
//!
//! - `server.rs`: the protocol loop over a [`Connection`]: open buffers, requests, notifications;
//! - `analysis.rs`: a directory loaded with the open buffers in place of their files, checked as `validate` does;
//! - `context.rs`: where a cursor stands in text that may not parse;
//! - `words.rs`: what may be written in a block, and what a reference names;
//! - `complete.rs`, `navigate.rs`, `outline.rs`: completion; hover, definition and references; the outline;
//! - `position.rs`: byte offsets to the protocol's UTF-16 positions.
//!
//! Invariant: no second implementation of the language. Everything is asked of
//! `infra_syntax`, `infra_lang` and `infra_engine`; the provider registry comes
//! from the binary, so this crate names no backend.

mod analysis;
mod complete;
mod context;
mod navigate;
mod outline;
mod position;
mod server;
mod words;

pub use lsp_server::Connection;
pub use server::{Error, serve};

/// Serves the protocol on standard input and output until the client exits.
pub fn run_stdio(registry: infra_core::ProviderRegistry) -> Result<(), Error> {
    let (connection, io_threads) = Connection::stdio();
    serve(&connection, registry)?;
    drop(connection);
    io_threads.join().map_err(|e| Error::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::{complete, context, navigate};

    /// Every feature at every place of a real configuration, whole and cut off
    /// mid-way (as while typing), answers without panicking.
    #[test]
    fn every_offset_of_a_real_file_is_answered() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart"));
        let (config, _) = infra_lang::load(dir);
        let registry = infra_core::ProviderRegistry::new();
        let text = std::fs::read_to_string(dir.join("main.infra")).unwrap_or_default();
        assert!(text.len() > 1000, "the example is there");
        let typed = format!("{}\n\"é😀 ${{var.", &text[..text.len() / 2]);
        for text in [text.as_str(), typed.as_str()] {
            for offset in (0..=text.len()).filter(|o| text.is_char_boundary(*o)).step_by(5) {
                let place = context::place(text, offset);
                complete::complete(&place, &config, &registry);
                navigate::hover(text, offset, &config, &registry);
                navigate::definition(text, offset, &config, &registry);
            }
            for offset in (0..=text.len()).filter(|o| text.is_char_boundary(*o)).step_by(97) {
                navigate::references(text, offset, &config, &registry, true);
            }
        }
    }

    /// The highlighting grammar for editors (TextMate) names every keyword and
    /// operator of `grammar/infra.pest`.
    #[test]
    fn the_textmate_grammar_knows_the_pest_grammars_keywords_and_operators() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_default();
        let pest = read("grammar/infra.pest");
        let textmate = read("editors/vscode/syntaxes/infra.tmLanguage.json");
        let rule = |name: &str| {
            let line = pest.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default().to_string();
            line.split('"').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>()
        };
        let mut keywords = rule("keyword");
        keywords.retain(|k| k.chars().all(|c| c.is_ascii_alphabetic()));
        assert_eq!(keywords, ["true", "false", "null", "for", "in", "if"]);
        for keyword in keywords {
            assert!(
                textmate.contains(&format!("{keyword}|")) || textmate.contains(&format!("|{keyword})")),
                "{keyword}"
            );
        }
        let operators = rule("bin_op");
        assert_eq!(operators.len(), 13, "{operators:?}");
        let escaped = |op: &str| {
            op.chars().map(|c| if "|*+?".contains(c) { format!("\\\\{c}") } else { c.to_string() }).collect::<String>()
        };
        for op in operators {
            let single = op.len() == 1 && textmate.contains("[<>+\\\\-*/%!?:]") && "<>+-*/%".contains(op.as_str());
            assert!(single || textmate.contains(&escaped(&op)), "operator {op} not highlighted");
        }
    }
}
