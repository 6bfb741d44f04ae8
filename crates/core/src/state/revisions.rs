//! Earlier revisions of a resource, kept in its state record for `infra
//! rollback`: the records it had before its last few changes, newest first.
//!
//! Only types whose schema [keeps revisions](crate::Schema::keeps_revisions)
//! have them. A change that makes the object as an earlier revision recorded
//! it (a rollback, or the configuration put back by hand) takes that revision
//! out of the list, so rolling back twice returns to where it started.

use crate::{Schema, Value};

/// How many earlier revisions state keeps of each object.
pub const KEPT_REVISIONS: usize = 3;

/// The earlier revisions once an object recorded as `prior` (with `earlier`
/// kept before it) is changed to `planned`: `prior` first, then the older
/// ones, leaving out any with the settings `planned` has and the one a
/// rollback `restored` (its settings may have been restated, an image named
/// by id), at most [`KEPT_REVISIONS`].
pub fn after_change(
    schema: &Schema,
    prior: &Value,
    earlier: &[Value],
    planned: &Value,
    restored: Option<&Value>,
) -> Vec<Value> {
    if !schema.keeps_revisions {
        return Vec::new();
    }
    let wanted = schema.settings_of(planned);
    let mut kept: Vec<Value> = Vec::new();
    for revision in std::iter::once(prior).chain(earlier) {
        let settings = schema.settings_of(revision);
        let current = !Value::differs(Some(&settings), Some(&wanted)) || restored == Some(revision);
        let twice = kept.iter().any(|k| !Value::differs(Some(&schema.settings_of(k)), Some(&settings)));
        if !current && !twice && !revision.is_null() {
            kept.push(revision.clone());
        }
    }
    kept.truncate(KEPT_REVISIONS);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttributeSchema, Type};

    fn schema() -> Schema {
        Schema::new("t")
            .attribute("image", AttributeSchema::required(Type::String))
            .attribute("id", AttributeSchema::computed(Type::String))
            .keeps_revisions()
    }

    fn record(image: &str, id: &str) -> Value {
        Value::object([("image", Value::string(image)), ("id", Value::string(id))])
    }

    #[test]
    fn the_prior_record_goes_first_and_the_list_stays_short() {
        let earlier = vec![record("v3", "c"), record("v2", "b"), record("v1", "a")];
        let kept = after_change(&schema(), &record("v4", "d"), &earlier, &record("v5", "?"), None);
        let images: Vec<&str> = kept.iter().map(|k| k.text("image")).collect();
        assert_eq!(images, ["v4", "v3", "v2"]);
    }

    #[test]
    fn putting_back_a_revision_takes_it_out_so_a_second_rollback_returns() {
        let kept = after_change(&schema(), &record("v2", "b"), &[record("v1", "a")], &record("v1", "?"), None);
        assert_eq!(kept, vec![record("v2", "b")]);
        let again = after_change(&schema(), &record("v1", "c"), &kept, &record("v2", "?"), None);
        assert_eq!(again, vec![record("v1", "c")]);
    }

    #[test]
    fn the_revision_a_rollback_put_back_leaves_the_list_though_restated() {
        let v1 = record("web:1", "a");
        let restated = record("sha256:1", "?");
        let kept = after_change(&schema(), &record("web:2", "b"), std::slice::from_ref(&v1), &restated, Some(&v1));
        assert_eq!(kept, vec![record("web:2", "b")]);
    }

    #[test]
    fn only_settings_tell_revisions_apart_and_types_without_them_keep_none() {
        // The same settings made twice (a replacement asked for) are one revision.
        let kept = after_change(&schema(), &record("v2", "b"), &[record("v2", "a")], &record("v3", "?"), None);
        assert_eq!(kept, vec![record("v2", "b")]);
        let plain = Schema::new("t").attribute("image", AttributeSchema::required(Type::String));
        assert!(after_change(&plain, &record("v1", "a"), &[], &record("v2", "?"), None).is_empty());
    }
}
