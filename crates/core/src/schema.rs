//! [`Schema`]: what a resource type (or provider configuration) accepts and computes.

use indexmap::IndexMap;

use crate::{Type, Value};

#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub description: &'static str,
    pub attributes: IndexMap<&'static str, AttributeSchema>,
    pub blocks: IndexMap<&'static str, BlockSchema>,
    /// State keeps the last few earlier records of each object of this type,
    /// so `infra rollback` can put one back (see `state::revisions`).
    pub keeps_revisions: bool,
}

#[derive(Clone, Debug)]
pub struct AttributeSchema {
    pub ty: Type,
    pub description: &'static str,
    pub required: bool,
    /// Set by the provider (possibly only after apply) when the user leaves it out.
    pub computed: bool,
    /// Only the provider sets it; users may not write it.
    pub read_only: bool,
    /// Changing it replaces the resource instead of updating it in place.
    pub force_new: bool,
    pub sensitive: bool,
    pub default: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockNesting {
    /// At most one block; its value is an object or null.
    Single,
    /// Any number of blocks; their value is a list of objects.
    List,
    /// Any number of blocks with one label each (`rule "ssh" { ... }`), the
    /// labels unique; their value is a list of objects in source order, each
    /// with its label as `name`.
    Named,
}

#[derive(Clone, Debug)]
pub struct BlockSchema {
    pub nesting: BlockNesting,
    pub schema: Schema,
    pub force_new: bool,
}

impl AttributeSchema {
    fn new(ty: Type) -> Self {
        AttributeSchema {
            ty,
            description: "",
            required: false,
            computed: false,
            read_only: false,
            force_new: false,
            sensitive: false,
            default: None,
        }
    }

    pub fn required(ty: Type) -> Self {
        AttributeSchema { required: true, ..Self::new(ty) }
    }

    pub fn optional(ty: Type) -> Self {
        Self::new(ty)
    }

    /// Written by the provider only, shown as "(known after apply)" until then.
    pub fn computed(ty: Type) -> Self {
        AttributeSchema { computed: true, read_only: true, ..Self::new(ty) }
    }

    /// Optional; when left out, the provider decides the value.
    pub fn optional_computed(ty: Type) -> Self {
        AttributeSchema { computed: true, ..Self::new(ty) }
    }

    pub fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }

    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    pub fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    pub fn describe(mut self, text: &'static str) -> Self {
        self.description = text;
        self
    }
}

impl Schema {
    pub fn new(description: &'static str) -> Self {
        Schema { description, ..Schema::default() }
    }

    pub fn attribute(mut self, name: &'static str, attribute: AttributeSchema) -> Self {
        self.attributes.insert(name, attribute);
        self
    }

    pub fn block(mut self, name: &'static str, nesting: BlockNesting, schema: Schema) -> Self {
        self.blocks.insert(name, BlockSchema { nesting, schema, force_new: false });
        self
    }

    /// Objects of this type keep their earlier revisions in state, for `infra rollback`.
    pub fn keeps_revisions(mut self) -> Self {
        self.keeps_revisions = true;
        self
    }

    /// What a configuration could say of `value`: its writable attributes and
    /// blocks (null where it has none), without what only the provider sets.
    pub fn settings_of(&self, value: &Value) -> Value {
        Value::object(self.writable_names().map(|name| (name, value.get(name).cloned().unwrap_or(Value::Null))))
    }

    /// Names a user may write, for "did you mean" suggestions.
    pub fn writable_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.attributes.iter().filter(|(_, a)| !a.read_only).map(|(n, _)| *n).chain(self.blocks.keys().copied())
    }
}
