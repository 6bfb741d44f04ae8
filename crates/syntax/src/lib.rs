//! Parsing of `.infra` files: source text in, a spanned syntax tree and diagnostics out.
//!
//! This crate knows nothing about evaluation, resources or providers. It owns:
//! - [`SourceMap`]: the files of a configuration, so any [`Span`] can be shown later;
//! - [`ast`]: the syntax tree, every node carrying the span it came from;
//! - [`parse`]: the pest grammar in `grammar/infra.pest` turned into that tree,
//!   after a scan that refuses text nesting deeper than [`MAX_NESTING`];
//! - [`format`]: the canonical formatter behind `infra fmt` (comment-preserving);
//! - [`Diagnostic`]: the plain-data error type every later stage reports with.

pub mod ast;
mod code;
mod diagnostic;
pub mod format;
mod nesting;
mod parser;
mod source;

pub use code::Code;
pub use diagnostic::{Diagnostic, Label, Severity};
pub use nesting::{MAX_NESTING, Surroundings, surroundings};
pub use parser::{parse, parse_template};
pub use source::{FileId, SourceFile, SourceMap, Span};

#[cfg(test)]
mod parser_tests;
