//! The stable codes of diagnostics (`infra::unknown_reference`): what the
//! bad-input corpus and users' scripts match on, and what the CLI decides by
//! (a configuration that did not parse, a backend block in error). One enum,
//! so a code is never misspelt where it is matched.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    AmbiguousProvider,
    Backend,
    BadType,
    BadVariable,
    BlockLabel,
    BlockLabels,
    Check,
    Constant,
    Count,
    CountAndForEach,
    CountOutside,
    Cycle,
    DependsOn,
    Duplicate,
    EachOutside,
    Encryption,
    Eval,
    ForEach,
    IgnoreChanges,
    Import,
    InconsistentPlan,
    Inspect,
    Internal,
    Io,
    MissingAttribute,
    MissingVariable,
    ModuleDepth,
    ModuleProvider,
    ModuleSource,
    Moved,
    NotAttempted,
    NotInState,
    NotLiteral,
    NullRequired,
    PreventDestroy,
    Provider,
    ProviderMismatch,
    ProviderRef,
    ReadOnlyAttribute,
    ReservedName,
    Rollback,
    SensitiveOutput,
    State,
    Syntax,
    Target,
    TypeMismatch,
    UnexpectedAttribute,
    UnexpectedBlock,
    UnknownAttribute,
    UnknownBlock,
    UnknownExpansion,
    UnknownProvider,
    UnknownReference,
    UnknownResourceType,
    UnknownVariable,
    Validation,
    VarFile,
    VariableDefault,
}

impl Code {
    /// Every code, for documentation and tests.
    pub const ALL: [Code; 58] = [
        Code::AmbiguousProvider,
        Code::Backend,
        Code::BadType,
        Code::BadVariable,
        Code::BlockLabel,
        Code::BlockLabels,
        Code::Check,
        Code::Constant,
        Code::Count,
        Code::CountAndForEach,
        Code::CountOutside,
        Code::Cycle,
        Code::DependsOn,
        Code::Duplicate,
        Code::EachOutside,
        Code::Encryption,
        Code::Eval,
        Code::ForEach,
        Code::IgnoreChanges,
        Code::Import,
        Code::InconsistentPlan,
        Code::Inspect,
        Code::Internal,
        Code::Io,
        Code::MissingAttribute,
        Code::MissingVariable,
        Code::ModuleDepth,
        Code::ModuleProvider,
        Code::ModuleSource,
        Code::Moved,
        Code::NotAttempted,
        Code::NotInState,
        Code::NotLiteral,
        Code::NullRequired,
        Code::PreventDestroy,
        Code::Provider,
        Code::ProviderMismatch,
        Code::ProviderRef,
        Code::ReadOnlyAttribute,
        Code::ReservedName,
        Code::Rollback,
        Code::SensitiveOutput,
        Code::State,
        Code::Syntax,
        Code::Target,
        Code::TypeMismatch,
        Code::UnexpectedAttribute,
        Code::UnexpectedBlock,
        Code::UnknownAttribute,
        Code::UnknownBlock,
        Code::UnknownExpansion,
        Code::UnknownProvider,
        Code::UnknownReference,
        Code::UnknownResourceType,
        Code::UnknownVariable,
        Code::Validation,
        Code::VarFile,
        Code::VariableDefault,
    ];

    /// The code as shown: `infra::unknown_reference`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AmbiguousProvider => "infra::ambiguous_provider",
            Code::Backend => "infra::backend",
            Code::BadType => "infra::bad_type",
            Code::BadVariable => "infra::bad_variable",
            Code::BlockLabel => "infra::block_label",
            Code::BlockLabels => "infra::block_labels",
            Code::Check => "infra::check",
            Code::Constant => "infra::constant",
            Code::Count => "infra::count",
            Code::CountAndForEach => "infra::count_and_for_each",
            Code::CountOutside => "infra::count_outside",
            Code::Cycle => "infra::cycle",
            Code::DependsOn => "infra::depends_on",
            Code::Duplicate => "infra::duplicate",
            Code::EachOutside => "infra::each_outside",
            Code::Encryption => "infra::encryption",
            Code::Eval => "infra::eval",
            Code::ForEach => "infra::for_each",
            Code::IgnoreChanges => "infra::ignore_changes",
            Code::Import => "infra::import",
            Code::InconsistentPlan => "infra::inconsistent_plan",
            Code::Inspect => "infra::inspect",
            Code::Internal => "infra::internal",
            Code::Io => "infra::io",
            Code::MissingAttribute => "infra::missing_attribute",
            Code::MissingVariable => "infra::missing_variable",
            Code::ModuleDepth => "infra::module_depth",
            Code::ModuleProvider => "infra::module_provider",
            Code::ModuleSource => "infra::module_source",
            Code::Moved => "infra::moved",
            Code::NotAttempted => "infra::not_attempted",
            Code::NotInState => "infra::not_in_state",
            Code::NotLiteral => "infra::not_literal",
            Code::NullRequired => "infra::null_required",
            Code::PreventDestroy => "infra::prevent_destroy",
            Code::Provider => "infra::provider",
            Code::ProviderMismatch => "infra::provider_mismatch",
            Code::ProviderRef => "infra::provider_ref",
            Code::ReadOnlyAttribute => "infra::read_only_attribute",
            Code::ReservedName => "infra::reserved_name",
            Code::Rollback => "infra::rollback",
            Code::SensitiveOutput => "infra::sensitive_output",
            Code::State => "infra::state",
            Code::Syntax => "infra::syntax",
            Code::Target => "infra::target",
            Code::TypeMismatch => "infra::type_mismatch",
            Code::UnexpectedAttribute => "infra::unexpected_attribute",
            Code::UnexpectedBlock => "infra::unexpected_block",
            Code::UnknownAttribute => "infra::unknown_attribute",
            Code::UnknownBlock => "infra::unknown_block",
            Code::UnknownExpansion => "infra::unknown_expansion",
            Code::UnknownProvider => "infra::unknown_provider",
            Code::UnknownReference => "infra::unknown_reference",
            Code::UnknownResourceType => "infra::unknown_resource_type",
            Code::UnknownVariable => "infra::unknown_variable",
            Code::Validation => "infra::validation",
            Code::VarFile => "infra::var_file",
            Code::VariableDefault => "infra::variable_default",
        }
    }

    /// The text itself is in question (it did not parse or could not be read):
    /// nothing read from it can be trusted, a backend block included.
    pub fn is_unreadable(self) -> bool {
        matches!(self, Code::Syntax | Code::Io)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(code.as_str().starts_with("infra::"), "{code}");
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }
}
