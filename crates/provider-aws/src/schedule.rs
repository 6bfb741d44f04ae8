//! EBS snapshot schedules: `snapshot_schedule`, a Data Lifecycle Manager
//! (DLM) policy that snapshots every volume carrying its target tags every few
//! hours and keeps the newest few snapshots, as `aws_dlm_lifecycle_policy`
//! does for Terraform users, with the one-schedule shape most disks need.
//!
//! DLM reports a policy's tags only in its listing and its schedule only per
//! policy, so a refresh is one listing plus one read per schedule of this
//! state (a handful, unlike instances). The snapshots DLM takes are not
//! tagged with this state's markers: they outlive the schedule, as they do
//! when it is deleted by hand, and are not this state's to destroy.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dlm::types::{
    CreateRule, GettablePolicyStateValues, IntervalUnitValues, LifecyclePolicy, PolicyDetails, PolicyTypeValues,
    ResourceTypeValues, RetainRule, Schedule, SettablePolicyStateValues, Tag,
};
use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};

use crate::client::{Clients, aws_error, is_not_found};
use crate::kind::{Kind, Observed, Query, flag, made_id, number, required_text, visible, with_computed};
use crate::tags;

/// The intervals DLM allows, in hours.
const INTERVALS: [i32; 8] = [1, 2, 3, 4, 6, 8, 12, 24];

pub struct SnapshotSchedule;

#[async_trait]
impl Kind for SnapshotSchedule {
    fn schema(&self) -> Schema {
        Schema::new(
            "Snapshots the EBS volumes that carry `target_tags` every `every_hours` hours and keeps the newest \
             `keep` (a Data Lifecycle Manager policy). Destroying it leaves the snapshots already taken.",
        )
        .attribute(
            "target_tags",
            AttributeSchema::required(Type::map(Type::String))
                .describe("the volumes to snapshot: those carrying all of these tags"),
        )
        .attribute(
            "every_hours",
            AttributeSchema::optional(Type::Number).default(Value::Number(24.0)).describe("1, 2, 3, 4, 6, 8, 12 or 24"),
        )
        .attribute(
            "at",
            AttributeSchema::optional(Type::String)
                .default(Value::string("03:00"))
                .describe("the first snapshot of the day, hh:mm UTC"),
        )
        .attribute(
            "keep",
            AttributeSchema::optional(Type::Number)
                .default(Value::Number(7.0))
                .describe("how many snapshots per volume to keep (1-1000); older ones are deleted by AWS"),
        )
        .attribute(
            "role",
            AttributeSchema::required(Type::String).describe(
                "the IAM role ARN DLM acts as; `aws dlm create-default-role` makes AWSDataLifecycleManagerDefaultRole",
            ),
        )
        .attribute(
            "description",
            AttributeSchema::optional(Type::String)
                .default(Value::string("snapshots by infra"))
                .describe("letters, digits, spaces, - and _ (up to 500)"),
        )
        .attribute("enabled", AttributeSchema::optional(Type::Bool).default(Value::Bool(true)))
        .attribute("tags", tags::attribute())
        .attribute("id", AttributeSchema::computed(Type::String))
        .attribute("arn", AttributeSchema::computed(Type::String))
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errors = Vec::new();
        if let Some(hours) = number(config, "every_hours")
            && !INTERVALS.contains(&hours)
        {
            errors.push(ProviderError::invalid(
                "every_hours",
                format!("DLM snapshots every 1, 2, 3, 4, 6, 8, 12 or 24 hours, not {hours}"),
            ));
        }
        if let Some(at) = config.non_empty_text("at")
            && !is_time_of_day(at)
        {
            errors
                .push(ProviderError::invalid("at", format!("`{at}` is not a time of day as hh:mm (UTC), e.g. 03:00")));
        }
        if let Some(keep) = number(config, "keep")
            && !(1..=1000).contains(&keep)
        {
            errors.push(ProviderError::invalid("keep", format!("DLM keeps 1 to 1000 snapshots, not {keep}")));
        }
        if let Some(description) = config.non_empty_text("description")
            && !is_description(description)
        {
            errors.push(ProviderError::invalid(
                "description",
                "DLM takes up to 500 letters, digits, spaces, - and _ in a description",
            ));
        }
        if let Some(role) = config.non_empty_text("role")
            && !(role.starts_with("arn:") && role.contains(":role/"))
        {
            errors.push(ProviderError::invalid(
                "role",
                format!("`{role}` is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
            ));
        }
        if config.get("target_tags").and_then(Value::as_object).is_some_and(|t| t.is_empty()) {
            errors.push(ProviderError::invalid("target_tags", "an empty `target_tags` would select no volume"));
        }
        errors
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ids: Vec<String> = match query {
            Query::Ids(ids) => ids.to_vec(),
            Query::Lineage(lineage) => marked(aws, lineage, None).await?,
            Query::Address(ctx) => marked(aws, &ctx.lineage, Some(&ctx.address.to_string())).await?,
        };
        let reads = ids.iter().map(|id| read(aws, id));
        let found = futures_util::future::join_all(reads).await;
        Ok(found.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten().map(|p| observed(&p)).collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let made = aws
            .dlm
            .create_lifecycle_policy()
            .execution_role_arn(required_text(planned, "role")?)
            .description(description(planned))
            .state(state(planned))
            .policy_details(details(planned))
            .set_tags(Some(tags::with_markers(ctx, planned).into_iter().collect()))
            .send()
            .await
            .map_err(|e| aws_error("creating a snapshot schedule", e))?;
        let id = made_id(made.policy_id(), "snapshot schedule")?;
        let ready = visible(self, aws, &id, "snapshot schedule").await?;
        Ok(with_computed(planned, &ready.value))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let id = prior.recorded_id("AWS")?;
        aws.dlm
            .update_lifecycle_policy()
            .policy_id(&id)
            .execution_role_arn(required_text(planned, "role")?)
            .description(description(planned))
            .state(state(planned))
            .policy_details(details(planned))
            .send()
            .await
            .map_err(|e| aws_error(&format!("updating snapshot schedule {id}"), e))?;
        let arn = required_text(prior, "arn")?;
        let (set, removed) = tags::diff(prior, planned);
        tag(aws, arn, set).await?;
        if !removed.is_empty() {
            aws.dlm
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(removed))
                .send()
                .await
                .map_err(|e| aws_error(&format!("untagging snapshot schedule {id}"), e))?;
        }
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let id = prior.recorded_id("AWS")?;
        match aws.dlm.delete_lifecycle_policy().policy_id(&id).send().await {
            Err(e) if !is_not_found(&e) => Err(aws_error(&format!("deleting snapshot schedule {id}"), e)),
            _ => Ok(()),
        }
    }

    async fn add_tags(&self, aws: &Clients, id: &str, tags: BTreeMap<String, String>) -> Result<(), ProviderError> {
        let policy = read(aws, id).await?.ok_or_else(|| ProviderError::failed(format!("no snapshot schedule {id}")))?;
        tag(aws, policy.policy_arn().unwrap_or_default(), tags).await
    }
}

/// The ids of the policies tagged with this lineage (and address): one listing.
async fn marked(aws: &Clients, lineage: &str, address: Option<&str>) -> Result<Vec<String>, ProviderError> {
    let listed =
        aws.dlm.get_lifecycle_policies().send().await.map_err(|e| aws_error("listing snapshot schedules", e))?;
    Ok(listed
        .policies()
        .iter()
        .filter(|p| {
            let tags = p.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
            tags::marks(tags, lineage, address)
        })
        .filter_map(|p| p.policy_id().map(str::to_string))
        .collect())
}

/// One policy in full, or `None` when there is none with this id.
async fn read(aws: &Clients, id: &str) -> Result<Option<LifecyclePolicy>, ProviderError> {
    match aws.dlm.get_lifecycle_policy().policy_id(id).send().await {
        Ok(found) => Ok(found.policy().cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(&format!("reading snapshot schedule {id}"), e)),
    }
}

async fn tag(aws: &Clients, arn: &str, tags: BTreeMap<String, String>) -> Result<(), ProviderError> {
    if tags.is_empty() {
        return Ok(());
    }
    aws.dlm
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags.into_iter().collect()))
        .send()
        .await
        .map_err(|e| aws_error(&format!("tagging {arn}"), e))?;
    Ok(())
}

fn observed(policy: &LifecyclePolicy) -> Observed {
    let details = policy.policy_details();
    let schedule = details.and_then(|d| d.schedules().first());
    let create = schedule.and_then(Schedule::create_rule);
    let target_tags = details
        .map(|d| d.target_tags())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), Value::string(t.value()?))))
        .collect();
    let number = |n: Option<i32>| n.map_or(Value::Null, |n| Value::Number(f64::from(n)));
    let tags = policy.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()));
    Observed::with_tags(
        policy.policy_id().unwrap_or_default(),
        tags::observed_pairs(tags),
        [
            ("target_tags", Value::Object(target_tags)),
            ("every_hours", number(create.and_then(CreateRule::interval))),
            ("at", create.and_then(|c| c.times().first()).map_or(Value::Null, Value::string)),
            ("keep", number(schedule.and_then(Schedule::retain_rule).and_then(RetainRule::count))),
            ("role", Value::string(policy.execution_role_arn().unwrap_or_default())),
            ("description", Value::string(policy.description().unwrap_or_default())),
            ("enabled", Value::Bool(policy.state() == Some(&GettablePolicyStateValues::Enabled))),
            ("arn", Value::string(policy.policy_arn().unwrap_or_default())),
        ],
    )
}

/// One schedule; DLM tags each snapshot it takes with the policy's id and
/// the schedule's name (`aws:dlm:lifecycle-policy-id`), so none needs adding.
fn details(planned: &Value) -> PolicyDetails {
    let create = CreateRule::builder()
        .interval(number(planned, "every_hours").unwrap_or(24))
        .interval_unit(IntervalUnitValues::Hours)
        .times(planned.non_empty_text("at").unwrap_or("03:00"))
        .build();
    let schedule = Schedule::builder()
        .name("infra")
        .create_rule(create)
        .retain_rule(RetainRule::builder().count(number(planned, "keep").unwrap_or(7)).build())
        .copy_tags(false)
        .build();
    let target_tags = tags::string_map(planned, "target_tags").into_iter().map(|(k, v)| dlm_tag(&k, &v)).collect();
    PolicyDetails::builder()
        .policy_type(PolicyTypeValues::EbsSnapshotManagement)
        .resource_types(ResourceTypeValues::Volume)
        .set_target_tags(Some(target_tags))
        .schedules(schedule)
        .build()
}

fn dlm_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn description(planned: &Value) -> &str {
    planned.non_empty_text("description").unwrap_or("snapshots by infra")
}

fn state(planned: &Value) -> SettablePolicyStateValues {
    if flag(planned, "enabled").unwrap_or(true) {
        SettablePolicyStateValues::Enabled
    } else {
        SettablePolicyStateValues::Disabled
    }
}

fn is_time_of_day(text: &str) -> bool {
    let Some((hours, minutes)) = text.split_once(':') else { return false };
    let two_digits = |s: &str, max: u32| s.len() == 2 && s.parse::<u32>().is_ok_and(|n| n <= max);
    two_digits(hours, 23) && two_digits(minutes, 59)
}

fn is_description(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 500
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&'static str, Value)]) -> Value {
        let mut all = vec![
            ("target_tags", Value::object([("snapshots", Value::string("daily"))])),
            ("role", Value::string("arn:aws:iam::123456789012:role/AWSDataLifecycleManagerDefaultRole")),
        ];
        all.extend(pairs.iter().cloned());
        Value::object(all)
    }

    fn refused(config: &Value) -> Vec<String> {
        SnapshotSchedule.validate(config).into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn a_plain_schedule_is_valid() {
        assert!(refused(&config(&[("every_hours", Value::Number(12.0)), ("at", Value::string("23:30"))])).is_empty());
    }

    #[test]
    fn what_dlm_would_refuse_is_refused_at_plan_time() {
        let cases = [
            ("every_hours", Value::Number(5.0), "not 5"),
            ("at", Value::string("3am"), "hh:mm"),
            ("at", Value::string("24:00"), "hh:mm"),
            ("keep", Value::Number(0.0), "1 to 1000"),
            ("description", Value::string("staging: data"), "letters, digits"),
            ("role", Value::string("AWSDataLifecycleManagerDefaultRole"), "not an IAM role ARN"),
            ("target_tags", Value::Object(Default::default()), "no volume"),
        ];
        for (key, value, says) in cases {
            let errors = refused(&config(&[(key, value.clone())]));
            assert!(errors.len() == 1 && errors[0].contains(says), "{key} = {value:?}: {errors:?}");
        }
    }

    #[test]
    fn the_policy_snapshots_volumes_with_the_target_tags_every_few_hours() {
        let planned = config(&[("every_hours", Value::Number(6.0)), ("keep", Value::Number(14.0))]);
        let details = details(&planned);
        assert_eq!(details.resource_types(), [ResourceTypeValues::Volume]);
        assert_eq!(
            details.target_tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(),
            [(Some("snapshots"), Some("daily"))]
        );
        let schedule = &details.schedules()[0];
        let create = schedule.create_rule().expect("create rule");
        assert_eq!((create.interval(), create.times()), (Some(6), ["03:00".to_string()].as_slice()));
        assert_eq!(schedule.retain_rule().and_then(RetainRule::count), Some(14));
        assert_eq!(schedule.copy_tags(), Some(false), "the volume's infra markers stay off its snapshots");
    }
}
