//! [`Object`]: the map inside [`Value::Object`](crate::Value::Object), shared
//! between its copies until one of them changes.
//!
//! A planned resource's value is held by the plan's change and by the
//! evaluator (for the references to it), and is copied on its way through
//! propose, the provider and settle: at 100,000 resources those deep copies
//! were a third of a plan's memory. Cloning an `Object` copies a pointer; the
//! first change to a shared one copies its map (`Arc::make_mut`).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::Value;

/// Attributes by name, sorted. Read it as the `BTreeMap` it derefs to; writing
/// through `DerefMut` first gives this copy a map of its own if it shares one.
#[derive(Clone, PartialEq, Default)]
pub struct Object(Arc<BTreeMap<String, Value>>);

impl Object {
    /// The map, copied only if another value still shares it.
    pub fn into_map(self) -> BTreeMap<String, Value> {
        Arc::unwrap_or_clone(self.0)
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Deref for Object {
    type Target = BTreeMap<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Object {
    fn deref_mut(&mut self) -> &mut Self::Target {
        Arc::make_mut(&mut self.0)
    }
}

impl From<BTreeMap<String, Value>> for Object {
    fn from(map: BTreeMap<String, Value>) -> Object {
        Object(Arc::new(map))
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Object {
        Object(Arc::new(entries.into_iter().collect()))
    }
}

impl Extend<(String, Value)> for Object {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, entries: I) {
        Arc::make_mut(&mut self.0).extend(entries);
    }
}

impl IntoIterator for Object {
    type Item = (String, Value);
    type IntoIter = std::collections::btree_map::IntoIter<String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_iter()
    }
}

impl<'a> IntoIterator for &'a Object {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_shares_its_map_until_one_side_changes() {
        let original: Object = [("a".to_string(), Value::Number(1.0))].into_iter().collect();
        let mut copy = original.clone();
        assert!(Arc::ptr_eq(&original.0, &copy.0), "a clone copies the pointer");
        copy.insert("b".into(), Value::Bool(true));
        assert!(!Arc::ptr_eq(&original.0, &copy.0), "a change gives the copy its own map");
        assert_eq!(original.len(), 1, "the original is untouched");
        assert_eq!(copy.len(), 2);
        assert_eq!(format!("{original:?}"), r#"{"a": Number(1.0)}"#, "Debug reads as the map");
    }
}
