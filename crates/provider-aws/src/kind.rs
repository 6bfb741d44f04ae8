//! What every AWS resource type implements, and what they share: how a
//! listing is asked for (one paginated Describe call filtered by tag or id),
//! waiting for a state, and retrying an id that is not visible yet.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Tag};
use infra_core::{OperationContext, ProviderError, Refined, Schema, Value};

use crate::client::Clients;
use crate::tags;

/// Which objects a listing asks for.
#[derive(Clone, Copy)]
pub enum Query<'a> {
    /// Everything tagged with this lineage.
    Lineage(&'a str),
    /// What was created for one address of a state.
    Address(&'a OperationContext),
    /// These ids, tagged or not.
    Ids(&'a [String]),
}

impl Query<'_> {
    /// The Describe filters for this query; `id_filter` is the type's id filter
    /// name (`vpc-id`). Filters, not id parameters: a missing id is simply
    /// absent from the answer instead of failing the whole call.
    pub fn filters(&self, id_filter: &str) -> Vec<Filter> {
        match self {
            Query::Lineage(lineage) => vec![tags::of_lineage(lineage)],
            Query::Address(ctx) => tags::of_address(ctx),
            Query::Ids(ids) => vec![Filter::builder().name(id_filter).set_values(Some(ids.to_vec())).build()],
        }
    }

    /// An id query with no ids needs no call.
    pub fn is_empty(&self) -> bool {
        matches!(self, Query::Ids(ids) if ids.is_empty())
    }
}

/// One object as AWS reports it.
#[derive(Clone, Debug)]
pub struct Observed {
    pub id: String,
    /// The `infra:address` tag, when it has one.
    pub address: Option<String>,
    pub value: Value,
}

impl Observed {
    /// An object with its id, what AWS reports of it, and its EC2 tags split
    /// into the user's (`tags`, null when none) and the address marker.
    pub fn tagged<const N: usize>(id: &str, ec2_tags: &[Tag], fields: [(&'static str, Value); N]) -> Observed {
        Observed::with_tags(id, tags::observed(ec2_tags), fields)
    }

    /// [`Observed::tagged`] with the tags already split by [`tags::observed_pairs`].
    pub fn with_tags<const N: usize>(
        id: &str,
        (user_tags, address): (Value, Option<String>),
        fields: [(&'static str, Value); N],
    ) -> Observed {
        let mut value = Value::object(fields);
        if let Value::Object(map) = &mut value {
            map.insert("id".into(), Value::string(id));
            map.insert("tags".into(), user_tags);
        }
        Observed { id: id.to_string(), address, value }
    }
}

#[async_trait]
pub trait Kind: Sync {
    fn schema(&self) -> Schema;

    /// Whether objects of this type carry tags (associations and attachments do not).
    fn tagged(&self) -> bool {
        true
    }

    fn validate(&self, _config: &Value) -> Vec<ProviderError> {
        Vec::new()
    }

    fn plan(&self, _prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        Ok(Refined::new(proposed))
    }

    /// One paginated Describe call (or none, for an empty id query); a type
    /// whose service cannot list by tag in one call says what it does instead.
    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError>;

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError>;

    /// Tags are the only thing that changes in place unless a type says more.
    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        update_tags(ec2, prior, planned).await?;
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError>;

    /// Adds tags to an object that exists (an import this state claims).
    async fn add_tags(&self, aws: &Clients, id: &str, tags: BTreeMap<String, String>) -> Result<(), ProviderError> {
        aws.ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(tags::ec2_tags(tags)))
            .send()
            .await
            .map_err(|e| crate::client::aws_error(&format!("tagging {id}"), e))?;
        Ok(())
    }
}

/// Sets and removes user tags to go from `prior` to `planned`.
pub async fn update_tags(ec2: &Client, prior: &Value, planned: &Value) -> Result<(), ProviderError> {
    let id = prior.recorded_id("AWS")?;
    let (set, removed) = tags::changes(prior, planned);
    if !set.is_empty() {
        ec2.create_tags()
            .resources(&id)
            .set_tags(Some(set))
            .send()
            .await
            .map_err(|e| crate::client::aws_error(&format!("tagging {id}"), e))?;
    }
    if !removed.is_empty() {
        ec2.delete_tags()
            .resources(&id)
            .set_tags(Some(removed))
            .send()
            .await
            .map_err(|e| crate::client::aws_error(&format!("untagging {id}"), e))?;
    }
    Ok(())
}

pub fn required_text<'a>(value: &'a Value, key: &str) -> Result<&'a str, ProviderError> {
    value.non_empty_text(key).ok_or_else(|| ProviderError::invalid(key, format!("`{key}` is required")))
}

pub fn flag(value: &Value, key: &str) -> Option<bool> {
    value.get(key).and_then(|v| v.peel().as_bool())
}

pub fn number(value: &Value, key: &str) -> Option<i32> {
    value.get(key).and_then(|v| v.peel().as_number()).map(|n| n as i32)
}

/// The planned value with the computed attributes of what exists filled in.
pub fn with_computed(planned: &Value, existing: &Value) -> Value {
    planned.with_computed(existing)
}

/// The id AWS gave an object it just made: an answer without one is an error
/// (recording an empty id would lose the object).
pub fn made_id(id: Option<&str>, what: &str) -> Result<String, ProviderError> {
    id.filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ProviderError::failed(format!("AWS made the {what} but its answer carries no id")))
}

/// `planned` with `fields` laid over it.
pub fn merged(planned: &Value, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let mut out = planned.clone();
    if let Value::Object(map) = &mut out {
        for (k, v) in fields {
            map.insert(k.to_string(), v);
        }
    }
    out
}

/// How long a waiter keeps asking before it gives up.
pub const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Asks `probe` until it answers `Some`, from every 200 ms up to every 5 s, for
/// at most [`WAIT_LIMIT`]. `what` says what is awaited, for the error.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(200);
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if started.elapsed() > WAIT_LIMIT {
            return Err(ProviderError::failed(format!("gave up waiting {}s for {what}", WAIT_LIMIT.as_secs())));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// One object by id; waits while EC2 does not show an id it has just handed
/// out (its reads are eventually consistent), so a fresh id is never taken
/// for a missing one.
pub async fn visible(kind: &dyn Kind, aws: &Clients, id: &str, what: &str) -> Result<Observed, ProviderError> {
    let ids = [id.to_string()];
    wait_for(&format!("{what} {id} to become visible"), || async {
        Ok(kind.list(aws, Query::Ids(&ids)).await?.into_iter().next())
    })
    .await
}

/// Retries a call that names an id EC2 may not show yet (a subnet in a VPC
/// created a moment ago): `*.NotFound` answers are retried for up to a minute.
pub async fn retry_not_found<T, E, R, F, Fut>(mut call: F) -> Result<T, aws_sdk_ec2::error::SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, aws_sdk_ec2::error::SdkError<E, R>>>,
    E: aws_sdk_ec2::error::ProvideErrorMetadata,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match call().await {
            Err(e) if crate::client::is_not_found(&e) && started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Runs a delete until it goes through: an object already gone counts as
/// deleted, and one still held by something on its way out
/// (`DependencyViolation`: a terminating instance holds its subnet and
/// groups for a while) is tried again.
pub async fn delete_retrying<T, E, R, F, Fut>(what: &str, mut call: F) -> Result<(), ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, aws_sdk_ec2::error::SdkError<E, R>>>,
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    wait_for(&format!("{what} to be released by what uses it"), || {
        let attempt = call();
        async move {
            match attempt.await {
                Ok(_) => Ok(Some(())),
                Err(e) if crate::client::is_not_found(&e) => Ok(Some(())),
                Err(e) if e.code() == Some("DependencyViolation") || e.code() == Some("VolumeInUse") => Ok(None),
                Err(e) => Err(crate::client::aws_error(&format!("deleting {what}"), e)),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_an_id_is_an_error_not_an_empty_id() {
        assert_eq!(made_id(Some("vpc-1"), "VPC").expect("an id"), "vpc-1");
        for missing in [None, Some("")] {
            let error = made_id(missing, "VPC").expect_err("no id");
            assert_eq!(error.message, "AWS made the VPC but its answer carries no id");
        }
    }
}
