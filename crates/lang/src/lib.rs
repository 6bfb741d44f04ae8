//! The configuration language: from parsed files to evaluated values.
//!
//! - [`load`]: reads a directory of `.infra` files and the modules it calls into a
//!   [`Config`]: a tree of [`Module`]s whose blocks are decoded but not evaluated;
//! - [`references`]: what an expression refers to, for building the graph;
//! - [`eval`]: evaluates an expression against a [`Scope`] the caller provides;
//! - [`FUNCTION_DOCS`]: each function's signature, for editors;
//! - [`eval_body`]: evaluates a resource body against its [`Schema`](infra_core::Schema),
//!   reporting unknown, missing and mistyped attributes together.
//!
//! Architecture invariant: evaluation does no IO except reading files named by
//! `file()` / `templatefile()`, and reads the environment only through [`Host`].

mod body;
mod config;
mod eval;
mod functions;
pub mod keywords;
mod loader;
mod refs;
mod signatures;
mod suggest;
mod vars;

pub use body::eval_body;
pub use config::{
    BackendBlock, Check, Config, ImportBlock, Lifecycle, Local, Module, ModuleCall, ModuleId, MovedBlock, Output,
    ProviderBlock, ProviderChoice, ProviderPass, ProviderRef, Resource, StateSettings, Variable,
};
pub use eval::{Host, Scope, eval, eval_in};
pub use loader::{Overlay, load, load_with, normal_path};
pub use refs::{Reference, references};
pub use signatures::{FUNCTION_DOCS, FunctionDoc, function_doc};
pub use suggest::did_you_mean;
pub use vars::{eval_constant, eval_settings, load_var_file, parse_cli_var};

pub use config::{Validation, parse_type_expr};

#[cfg(test)]
mod eval_tests;
