//! Creating one object when a crash may have left it behind: what a provider
//! finds under this state's marker for the address is taken over if it is the
//! object the plan describes, and replaced if it is not, so one apply after a
//! crash converges and nothing carrying the lineage is left unrecorded.

use std::time::{Duration, Instant};

use infra_core::{OperationContext, Provider, ProviderError, ProviderErrorKind, Schema, Value};

/// Creates the object `planned` describes, or takes over the one this state
/// made for the address and never recorded.
pub async fn create_or_adopt(
    provider: &dyn Provider,
    ctx: &OperationContext,
    schema: Option<&Schema>,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let kind = ctx.address.kind.as_str();
    let first = match provider.adopt(ctx, kind, planned).await? {
        Some(found) => take_over(provider, ctx, schema, found, planned).await,
        None => provider.create(ctx, kind, planned).await,
    };
    match first {
        Err(e) if e.kind == ProviderErrorKind::Conflict => take_over_late(provider, ctx, schema, planned, e).await,
        done => done,
    }
}

/// How long an object whose name is taken may take to show up and settle.
const LATE: Duration = Duration::from_secs(10);

/// After a create refused as a conflict: the object in the way, taken over
/// when it is ours. A request of a run killed a moment ago can finish after
/// that run's last look, and a backend can hold the name before the object is
/// listed or can be started (Docker reserves a container's name first), so
/// this looks again, and takes over again, for a while; then `refused` stands.
async fn take_over_late(
    provider: &dyn Provider,
    ctx: &OperationContext,
    schema: Option<&Schema>,
    planned: &Value,
    refused: ProviderError,
) -> Result<Value, ProviderError> {
    let deadline = Instant::now() + LATE;
    let mut pause = Duration::from_millis(100);
    let mut last = refused;
    loop {
        if let Some(found) = provider.adopt(ctx, &ctx.address.kind, planned).await? {
            match take_over(provider, ctx, schema, found, planned).await {
                Err(e) if e.kind == ProviderErrorKind::Conflict => last = e,
                done => return done,
            }
        }
        if Instant::now() + pause > deadline {
            return Err(last);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Brings a found object to the plan: updated in place when it is the object
/// planned, deleted and made anew when it differs where nothing can change in
/// place (another name, another image), as a replacement would.
async fn take_over(
    provider: &dyn Provider,
    ctx: &OperationContext,
    schema: Option<&Schema>,
    found: Value,
    planned: &Value,
) -> Result<Value, ProviderError> {
    let kind = ctx.address.kind.as_str();
    if schema.is_none_or(|schema| unlike_planned(schema, planned, &found).is_empty()) {
        return provider.update(ctx, kind, &found, planned).await;
    }
    provider.delete(ctx, kind, &found).await?;
    provider.create(ctx, kind, planned).await
}

/// The attributes that cannot change in place on which a found object is not
/// what `planned` describes. What the provider could not observe (null in
/// `found`) or the configuration leaves open (null in `planned`) is no evidence.
pub fn unlike_planned(schema: &Schema, planned: &Value, found: &Value) -> Vec<String> {
    let evidence = |name: &String| match (planned.get(name), found.get(name)) {
        (Some(want), Some(have)) => !want.is_null() && !have.is_null() && want.is_wholly_known(),
        _ => false,
    };
    crate::propose::forced(schema, planned, found).into_iter().filter(evidence).collect()
}

#[cfg(test)]
mod tests {
    use infra_core::{AttributeSchema, Type};

    use super::*;

    fn schema() -> Schema {
        Schema::new("")
            .attribute("name", AttributeSchema::required(Type::String).force_new())
            .attribute("driver", AttributeSchema::optional(Type::String).force_new())
            .attribute("size", AttributeSchema::optional(Type::Number))
            .attribute("id", AttributeSchema::computed(Type::String))
    }

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    #[test]
    fn another_name_is_another_object() {
        let planned = object(&[("name", Value::string("other-app")), ("id", Value::Unknown)]);
        let found = object(&[("name", Value::string("quickstart-app")), ("id", Value::string("n1"))]);
        assert_eq!(unlike_planned(&schema(), &planned, &found), ["name"]);
    }

    #[test]
    fn what_changes_in_place_or_was_not_observed_does_not_count() {
        let planned = object(&[
            ("name", Value::string("app")),
            ("driver", Value::string("bridge")),
            ("size", Value::Number(2.0)),
            ("id", Value::Unknown),
        ]);
        let found =
            object(&[("name", Value::string("app")), ("size", Value::Number(1.0)), ("id", Value::string("n1"))]);
        assert!(unlike_planned(&schema(), &planned, &found).is_empty());
    }

    #[test]
    fn a_value_not_known_yet_is_no_evidence() {
        let planned = object(&[("name", Value::Unknown)]);
        let found = object(&[("name", Value::string("app"))]);
        assert!(unlike_planned(&schema(), &planned, &found).is_empty());
    }
}
