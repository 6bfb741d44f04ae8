//! Disks: `volume` (EBS), `volume_attachment` and `snapshot`.

use crate::client::Clients;
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{ResourceType, Volume as Ec2Volume, VolumeAttachmentState, VolumeType};
use infra_core::{AttributeSchema, OperationContext, ProviderError, Schema, Type, Value};

use crate::client::aws_error;
use crate::kind::{
    Kind, Observed, Query, delete_retrying, flag, made_id, merged, number, required_text, retry_not_found, update_tags,
    visible, wait_for, with_computed,
};
use crate::tags;

async fn describe_volumes(
    ec2: &Client,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Ec2Volume>, ProviderError> {
    ec2.describe_volumes()
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| aws_error("listing volumes", e))
}

pub struct Volume;

#[async_trait]
impl Kind for Volume {
    fn schema(&self) -> Schema {
        Schema::new("An EBS volume: a disk in one availability zone, attached with volume_attachment.")
            .attribute("availability_zone", AttributeSchema::required(Type::String).force_new())
            .attribute("size", AttributeSchema::optional_computed(Type::Number).describe("GiB; grows in place"))
            .attribute(
                "type",
                AttributeSchema::optional(Type::String)
                    .default(Value::string("gp3"))
                    .describe("gp3, gp2, io2, st1...; changed in place"),
            )
            .attribute("encrypted", AttributeSchema::optional(Type::Bool).default(Value::Bool(true)).force_new())
            .attribute(
                "snapshot",
                AttributeSchema::optional(Type::String).force_new().describe("start from this snapshot's id"),
            )
            .attribute("tags", tags::attribute())
            .attribute("id", AttributeSchema::computed(Type::String))
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        if config.get("size").is_none_or(Value::is_null) && config.get("snapshot").is_none_or(Value::is_null) {
            return vec![ProviderError::invalid("size", "a volume needs a `size` (GiB) or a `snapshot` to start from")];
        }
        Vec::new()
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        Ok(describe_volumes(ec2, query.filters("volume-id"))
            .await?
            .iter()
            .map(|v| {
                Observed::tagged(
                    v.volume_id().unwrap_or_default(),
                    v.tags(),
                    [
                        ("availability_zone", Value::string(v.availability_zone().unwrap_or_default())),
                        ("size", v.size().map_or(Value::Null, |s| Value::Number(f64::from(s)))),
                        ("type", Value::string(v.volume_type().map(VolumeType::as_str).unwrap_or_default())),
                        ("encrypted", Value::Bool(v.encrypted().unwrap_or(false))),
                        ("state", Value::string(v.state().map(|s| s.as_str()).unwrap_or_default())),
                    ],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let zone = required_text(planned, "availability_zone")?;
        let made = retry_not_found(|| {
            ec2.create_volume()
                .availability_zone(zone)
                .set_size(number(planned, "size"))
                .volume_type(VolumeType::from(planned.non_empty_text("type").unwrap_or("gp3")))
                .encrypted(flag(planned, "encrypted").unwrap_or(true))
                .set_snapshot_id(planned.non_empty_text("snapshot").map(str::to_string))
                .tag_specifications(tags::spec(ResourceType::Volume, ctx, planned))
                .send()
        })
        .await
        .map_err(|e| aws_error(&format!("creating a volume in {zone}"), e))?;
        let id = made_id(made.volume_id(), "volume")?;
        let ready = wait_volume(self, aws, &id, "available").await?;
        Ok(with_computed(planned, &ready.value))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        update_tags(ec2, prior, planned).await?;
        let id = prior.recorded_id("AWS")?;
        let (size, kind) = (number(planned, "size"), planned.non_empty_text("type"));
        if size != number(prior, "size") || kind != prior.non_empty_text("type") {
            ec2.modify_volume()
                .volume_id(&id)
                .set_size(size)
                .set_volume_type(kind.map(VolumeType::from))
                .send()
                .await
                .map_err(|e| aws_error(&format!("resizing volume {id}"), e))?;
        }
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("volume {id}"), || ec2.delete_volume().volume_id(&id).send()).await
    }
}

async fn wait_volume(kind: &Volume, aws: &Clients, id: &str, state: &str) -> Result<Observed, ProviderError> {
    let ids = [id.to_string()];
    wait_for(&format!("volume {id} to be {state}"), || async {
        let found = kind.list(aws, Query::Ids(&ids)).await?.into_iter().next();
        Ok(found.filter(|v| v.value.get("state").and_then(Value::as_str) == Some(state)))
    })
    .await
}

pub struct VolumeAttachment;

/// An attachment's id: `DEVICE:VOLUME:INSTANCE`, as Terraform users know it.
fn attachment_id(device: &str, volume: &str, instance: &str) -> String {
    format!("{device}:{volume}:{instance}")
}

#[async_trait]
impl Kind for VolumeAttachment {
    fn schema(&self) -> Schema {
        Schema::new("Attaches a volume to an instance as a device.")
            .attribute("volume", AttributeSchema::required(Type::String).force_new())
            .attribute("instance", AttributeSchema::required(Type::String).force_new())
            .attribute("device", AttributeSchema::required(Type::String).force_new().describe("e.g. /dev/sdf"))
            .attribute("id", AttributeSchema::computed(Type::String))
    }

    fn tagged(&self) -> bool {
        false
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        let Query::Ids(ids) = query else { return Ok(Vec::new()) };
        let volumes: Vec<String> = ids.iter().filter_map(|id| id.split(':').nth(1).map(str::to_string)).collect();
        if volumes.is_empty() {
            return Ok(Vec::new());
        }
        let filter = aws_sdk_ec2::types::Filter::builder().name("volume-id").set_values(Some(volumes)).build();
        Ok(describe_volumes(ec2, vec![filter])
            .await?
            .iter()
            .flat_map(|v| v.attachments())
            .filter(|a| matches!(a.state(), Some(VolumeAttachmentState::Attached | VolumeAttachmentState::Attaching)))
            .filter_map(|a| {
                let (device, volume, instance) = (a.device()?, a.volume_id()?, a.instance_id()?);
                let id = attachment_id(device, volume, instance);
                let value = Value::object([
                    ("id", Value::string(&id)),
                    ("volume", Value::string(volume)),
                    ("instance", Value::string(instance)),
                    ("device", Value::string(device)),
                ]);
                Some(Observed { id, address: None, value })
            })
            .filter(|o| ids.contains(&o.id))
            .collect())
    }

    async fn create(&self, aws: &Clients, _ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let (volume, instance, device) =
            (required_text(planned, "volume")?, required_text(planned, "instance")?, required_text(planned, "device")?);
        retry_not_found(|| ec2.attach_volume().volume_id(volume).instance_id(instance).device(device).send())
            .await
            .map_err(|e| aws_error(&format!("attaching {volume} to {instance} as {device}"), e))?;
        let id = attachment_id(device, volume, instance);
        visible(self, aws, &id, "attachment").await?;
        Ok(merged(planned, [("id", Value::string(id))]))
    }

    async fn update(&self, _aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let (volume, instance) = (required_text(prior, "volume")?, required_text(prior, "instance")?);
        delete_retrying(&format!("attachment of {volume} to {instance}"), || {
            ec2.detach_volume().volume_id(volume).instance_id(instance).send()
        })
        .await?;
        wait_volume(&Volume, aws, volume, "available").await.map(|_| ())
    }
}

pub struct Snapshot;

#[async_trait]
impl Kind for Snapshot {
    fn schema(&self) -> Schema {
        Schema::new("A point-in-time copy of a volume, taken at apply and kept until destroyed.")
            .attribute("volume", AttributeSchema::required(Type::String).force_new())
            .attribute("description", AttributeSchema::optional(Type::String).force_new())
            .attribute("tags", tags::attribute())
            .attribute("size", AttributeSchema::computed(Type::Number))
            .attribute("state", AttributeSchema::computed(Type::String))
            .attribute("id", AttributeSchema::computed(Type::String))
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let snapshots = ec2
            .describe_snapshots()
            .owner_ids("self")
            .set_filters(Some(query.filters("snapshot-id")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing snapshots", e))?;
        Ok(snapshots
            .iter()
            .map(|s| {
                Observed::tagged(
                    s.snapshot_id().unwrap_or_default(),
                    s.tags(),
                    [
                        ("volume", Value::string(s.volume_id().unwrap_or_default())),
                        ("size", s.volume_size().map_or(Value::Null, |n| Value::Number(f64::from(n)))),
                        ("state", Value::string(s.state().map(|s| s.as_str()).unwrap_or_default())),
                    ],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let volume = required_text(planned, "volume")?;
        let made = retry_not_found(|| {
            ec2.create_snapshot()
                .volume_id(volume)
                .set_description(planned.non_empty_text("description").map(str::to_string))
                .tag_specifications(tags::spec(ResourceType::Snapshot, ctx, planned))
                .send()
        })
        .await
        .map_err(|e| aws_error(&format!("taking a snapshot of {volume}"), e))?;
        let id = made_id(made.snapshot_id(), "snapshot")?;
        let ids = [id.clone()];
        let done = wait_for(&format!("snapshot {id} to complete"), || async {
            let found = self.list(aws, Query::Ids(&ids)).await?.into_iter().next();
            Ok(found.filter(|s| s.value.get("state").and_then(Value::as_str) == Some("completed")))
        })
        .await?;
        Ok(with_computed(planned, &done.value))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("snapshot {id}"), || ec2.delete_snapshot().snapshot_id(&id).send()).await
    }
}
