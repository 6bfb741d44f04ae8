//! Tags: the user's own, and the two infra adds to everything it creates
//! (`infra:lineage`, `infra:address`), by which refresh lists a state's objects
//! in one call per type and a crashed create is adopted instead of leaked.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use infra_core::{AttributeSchema, OperationContext, Type, Value};

pub const LINEAGE: &str = "infra:lineage";
pub const ADDRESS: &str = "infra:address";

/// The `tags` attribute every taggable type has.
pub fn attribute() -> AttributeSchema {
    AttributeSchema::optional(Type::map(Type::String))
        .describe("tags of your own; infra adds infra:lineage and infra:address")
}

/// The user's tags of a planned value.
pub fn wanted(planned: &Value) -> BTreeMap<String, String> {
    string_map(planned, "tags")
}

/// A map-of-strings attribute (`tags`, a schedule's `target_tags`) as plain strings.
pub fn string_map(value: &Value, key: &str) -> BTreeMap<String, String> {
    value
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.peel().as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// The tags to create an object with: the user's and the markers.
pub fn with_markers(ctx: &OperationContext, planned: &Value) -> BTreeMap<String, String> {
    let mut tags = wanted(planned);
    tags.insert(LINEAGE.into(), ctx.lineage.clone());
    tags.insert(ADDRESS.into(), ctx.address.to_string());
    tags
}

/// [`with_markers`] as EC2 tags.
pub fn all(ctx: &OperationContext, planned: &Value) -> Vec<Tag> {
    ec2_tags(with_markers(ctx, planned))
}

pub fn ec2_tags(tags: BTreeMap<String, String>) -> Vec<Tag> {
    tags.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub fn spec(kind: ResourceType, ctx: &OperationContext, planned: &Value) -> TagSpecification {
    TagSpecification::builder().resource_type(kind).set_tags(Some(all(ctx, planned))).build()
}

/// Only objects this state created.
pub fn of_lineage(lineage: &str) -> Filter {
    Filter::builder().name(format!("tag:{LINEAGE}")).values(lineage).build()
}

/// Only the objects created for one address of this state.
pub fn of_address(ctx: &OperationContext) -> Vec<Filter> {
    vec![
        of_lineage(&ctx.lineage),
        Filter::builder().name(format!("tag:{ADDRESS}")).values(ctx.address.to_string()).build(),
    ]
}

/// What EC2 reports, split: the user's tags (as the `tags` attribute, null
/// when there are none) and the address marker.
pub fn observed(tags: &[Tag]) -> (Value, Option<String>) {
    observed_pairs(tags.iter().filter_map(|t| Some((t.key()?, t.value()?))))
}

/// Whether these tags mark an object of this lineage (and, when given, this address).
pub fn marks<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>, lineage: &str, address: Option<&str>) -> bool {
    let (mut lineage_found, mut address_found) = (false, address.is_none());
    for (k, v) in tags {
        lineage_found |= k == LINEAGE && v == lineage;
        address_found |= k == ADDRESS && Some(v) == address;
    }
    lineage_found && address_found
}

/// [`observed`] for tags as key-value pairs (the form services other than EC2 use).
pub fn observed_pairs<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> (Value, Option<String>) {
    let mut user = BTreeMap::new();
    let mut address = None;
    for (k, v) in tags {
        match k {
            ADDRESS => address = Some(v.to_string()),
            LINEAGE => {}
            _ => {
                user.insert(k.to_string(), Value::string(v));
            }
        }
    }
    let value = if user.is_empty() { Value::Null } else { Value::Object(user.into()) };
    (value, address)
}

/// The user tags to set and the keys to remove to go from `prior` to `planned`.
pub fn diff(prior: &Value, planned: &Value) -> (BTreeMap<String, String>, Vec<String>) {
    let (before, mut after) = (wanted(prior), wanted(planned));
    let removed = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
    after.retain(|k, v| before.get(k) != Some(v));
    (after, removed)
}

/// [`diff`] as EC2 tags.
pub fn changes(prior: &Value, planned: &Value) -> (Vec<Tag>, Vec<Tag>) {
    let (set, removed) = diff(prior, planned);
    (ec2_tags(set), removed.into_iter().map(|k| Tag::builder().key(k).build()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Value {
        Value::object([("tags", Value::object(pairs.iter().map(|(k, v)| (*k, Value::string(*v)))))])
    }

    #[test]
    fn markers_are_kept_apart_from_the_users_tags() {
        let reported = [
            Tag::builder().key("env").value("staging").build(),
            Tag::builder().key(LINEAGE).value("abc").build(),
            Tag::builder().key(ADDRESS).value("vpc.main").build(),
        ];
        let (user, address) = observed(&reported);
        assert_eq!(user, Value::object([("env", Value::string("staging"))]));
        assert_eq!(address.as_deref(), Some("vpc.main"));
        assert_eq!(observed(&reported[1..]).0, Value::Null, "no user tags read as null, as unset config does");
    }

    #[test]
    fn tag_changes_set_what_differs_and_remove_what_went() {
        let (set, removed) = changes(&tags(&[("env", "a"), ("old", "x")]), &tags(&[("env", "b"), ("new", "y")]));
        let keys = |t: &[Tag]| t.iter().map(|t| t.key().unwrap_or_default().to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&set), ["env", "new"]);
        assert_eq!(keys(&removed), ["old"]);
    }
}
