//! The core model of `infra`: the types every other crate speaks.
//!
//! - [`Value`] and [`Type`]: configuration and resource data, with unknown
//!   ("known after apply") and sensitive marks;
//! - [`ResourceAddress`]: names such as `module.web.file.motd` with an instance key;
//! - [`Schema`]: what a resource type accepts and computes;
//! - [`Provider`] and [`ProviderFactory`]: the one trait every backend implements,
//!   and [`ProviderKey`], which configuration of a provider manages a resource;
//! - [`state`]: recorded state, its versioned file format and the local store;
//! - [`plan`]: the changes a plan proposes, and the saved-plan file format.
//!
//! Architecture invariant: this crate names no backend and does no network IO.
//! It knows nothing of the configuration language either: values arrive evaluated.

mod address;
mod object;
pub mod plan;
mod provider;
mod provider_key;
mod schema;
pub mod state;
mod types;
mod value;

pub use address::{AddressParseError, InstanceKey, ModuleStep, ResourceAddress};
pub use object::Object;
pub use provider::{
    ExecOutput, OperationContext, Provider, ProviderError, ProviderErrorKind, ProviderFactory, ProviderRegistry,
    ProviderSchema, ReadRequest, Refined, ResourceKind,
};
pub use provider_key::ProviderKey;
pub use schema::{AttributeSchema, BlockNesting, BlockSchema, Schema};
pub use types::Type;
pub use value::{PathStep, Value, ValuePath};

/// The label/tag key under which every object `infra` creates records its owner.
pub const MARKER_LINEAGE: &str = "infra.lineage";
/// The label/tag key under which every object records its resource address.
pub const MARKER_ADDRESS: &str = "infra.address";
