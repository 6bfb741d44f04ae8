//! Machines: `instance`, the `key_pair` it is started with, and the
//! `elastic_ip` that keeps its address across replacements.

use crate::client::Clients;
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{
    AttributeValue, BlockDeviceMapping, DomainType, EbsBlockDevice, Filter, Instance as Ec2Instance, InstanceStateName,
    InstanceType, ResourceType,
};
use base64::Engine as _;
use infra_core::{AttributeSchema, OperationContext, ProviderError, Refined, Schema, Type, Value};

use crate::client::aws_error;
use crate::kind::{
    Kind, Observed, Query, delete_retrying, made_id, merged, number, required_text, retry_not_found, update_tags,
    wait_for, with_computed,
};
use crate::tags;

pub struct Instance;

/// States in which an instance still exists; a terminated one lingers in
/// listings for a while and counts as gone.
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

fn observed(i: &Ec2Instance) -> Observed {
    let optional = |s: Option<&str>| s.map_or(Value::Null, Value::string);
    let mut groups: Vec<&str> = i.security_groups().iter().filter_map(|g| g.group_id()).collect();
    groups.sort();
    Observed::tagged(
        i.instance_id().unwrap_or_default(),
        i.tags(),
        [
            ("ami", Value::string(i.image_id().unwrap_or_default())),
            ("type", Value::string(i.instance_type().map(InstanceType::as_str).unwrap_or_default())),
            ("subnet", optional(i.subnet_id())),
            ("security_groups", Value::List(groups.into_iter().map(Value::string).collect())),
            ("key_name", optional(i.key_name())),
            ("private_ip", optional(i.private_ip_address())),
            ("public_ip", optional(i.public_ip_address())),
            ("availability_zone", optional(i.placement().and_then(|p| p.availability_zone()))),
            (
                "state",
                Value::string(i.state().and_then(|s| s.name()).map(InstanceStateName::as_str).unwrap_or_default()),
            ),
        ],
    )
}

impl Instance {
    async fn describe(&self, ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Ec2Instance>, ProviderError> {
        let reservations = ec2
            .describe_instances()
            .set_filters(Some(filters))
            // The largest page EC2 gives; without it an endpoint may page by the hundred.
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing instances", e))?;
        Ok(reservations.into_iter().flat_map(|r| r.instances.unwrap_or_default()).collect())
    }

    /// Waits until the instance is in `state` (or, for `terminated`, gone).
    async fn wait_state(&self, ec2: &Client, id: &str, state: &str) -> Result<Observed, ProviderError> {
        let filter = Filter::builder().name("instance-id").values(id).build();
        wait_for(&format!("instance {id} to be {state}"), || async {
            let found = self.describe(ec2, vec![filter.clone()]).await?;
            let current = found.first().and_then(|i| i.state()).and_then(|s| s.name()).map(InstanceStateName::as_str);
            Ok(match current {
                None if state == "terminated" => {
                    Some(Observed { id: id.to_string(), address: None, value: Value::Null })
                }
                Some(now) if now == state => found.first().map(observed),
                _ => None,
            })
        })
        .await
    }

    /// The AMI's root device, for a root volume of another size.
    async fn root_device(&self, ec2: &Client, ami: &str, size: i32) -> Result<BlockDeviceMapping, ProviderError> {
        let images = ec2
            .describe_images()
            .image_ids(ami)
            .send()
            .await
            .map_err(|e| aws_error(&format!("reading AMI {ami}"), e))?;
        let device = images.images().first().and_then(|i| i.root_device_name()).unwrap_or("/dev/xvda").to_string();
        Ok(BlockDeviceMapping::builder()
            .device_name(device)
            .ebs(EbsBlockDevice::builder().volume_size(size).delete_on_termination(true).build())
            .build())
    }

    async fn set_attribute(
        &self,
        id: &str,
        what: &str,
        change: aws_sdk_ec2::operation::modify_instance_attribute::builders::ModifyInstanceAttributeFluentBuilder,
    ) -> Result<(), ProviderError> {
        change
            .instance_id(id)
            .send()
            .await
            .map_err(|e| aws_error(&format!("changing the {what} of instance {id}"), e))?;
        Ok(())
    }
}

#[async_trait]
impl Kind for Instance {
    fn schema(&self) -> Schema {
        Schema::new(
            "A virtual machine. Name it in a `server` (host = instance.NAME.public_ip) to configure it over SSH.",
        )
        .attribute(
            "ami",
            AttributeSchema::required(Type::String).force_new().describe("the image it boots, e.g. a Debian 12 AMI"),
        )
        .attribute(
            "type",
            AttributeSchema::required(Type::String)
                .describe("instance type, e.g. t3.small; a change stops and starts the instance"),
        )
        .attribute(
            "subnet",
            AttributeSchema::optional_computed(Type::String).force_new().describe("default: the VPC's default subnet"),
        )
        .attribute(
            "security_groups",
            AttributeSchema::optional(Type::list(Type::String)).describe("ids: [firewall.web.id]; changed in place"),
        )
        .attribute("key_name", AttributeSchema::optional(Type::String).force_new().describe("key_pair.NAME.name"))
        .attribute(
            "user_data",
            AttributeSchema::optional(Type::String).force_new().describe("cloud-init data, as text"),
        )
        .attribute(
            "root_volume_size",
            AttributeSchema::optional(Type::Number).force_new().describe("GiB; default: the AMI's"),
        )
        .attribute("tags", tags::attribute())
        .attribute("private_ip", AttributeSchema::computed(Type::String))
        .attribute("public_ip", AttributeSchema::computed(Type::String))
        .attribute("availability_zone", AttributeSchema::computed(Type::String))
        .attribute("state", AttributeSchema::computed(Type::String))
        .attribute("id", AttributeSchema::computed(Type::String))
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        match config.get("user_data").and_then(|v| v.peel().as_str()) {
            Some(data) if data.len() > 16 * 1024 => {
                vec![ProviderError::invalid(
                    "user_data",
                    format!("user_data is {} bytes; EC2 takes at most 16 KiB", data.len()),
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Security groups are a set: sorted as EC2 reports them.
    fn plan(&self, _prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        let groups = proposed.get("security_groups").filter(|g| g.is_wholly_known()).map(|_| {
            let mut ids = proposed.strings("security_groups");
            ids.sort();
            ids.dedup();
            Value::List(ids.into_iter().map(Value::string).collect())
        });
        let planned = merged(&proposed, [("state", Value::string("running"))]);
        Ok(Refined::new(match groups {
            Some(groups) => merged(&planned, [("security_groups", groups)]),
            None => planned,
        }))
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let mut filters = query.filters("instance-id");
        filters.push(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.map(String::from).to_vec()))
                .build(),
        );
        Ok(self.describe(ec2, filters).await?.iter().map(observed).collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let ami = required_text(planned, "ami")?;
        let root = match number(planned, "root_volume_size") {
            Some(size) => Some(vec![self.root_device(ec2, ami, size).await?]),
            None => None,
        };
        let groups = planned.strings("security_groups");
        // A token per create call: a run retried by the SDK after a lost answer
        // starts one instance, not two.
        let token = uuid::Uuid::new_v4().to_string();
        let started = retry_not_found(|| {
            ec2.run_instances()
                .image_id(ami)
                .instance_type(InstanceType::from(planned.non_empty_text("type").unwrap_or_default()))
                .min_count(1)
                .max_count(1)
                .set_subnet_id(planned.non_empty_text("subnet").map(str::to_string))
                .set_security_group_ids((!groups.is_empty()).then(|| groups.clone()))
                .set_key_name(planned.non_empty_text("key_name").map(str::to_string))
                .set_user_data(
                    planned.non_empty_text("user_data").map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
                )
                .set_block_device_mappings(root.clone())
                .client_token(&token)
                .tag_specifications(tags::spec(ResourceType::Instance, ctx, planned))
                .tag_specifications(tags::spec(ResourceType::Volume, ctx, planned))
                .send()
        })
        .await
        .map_err(|e| aws_error(&format!("starting an instance of {ami}"), e))?;
        let id = made_id(started.instances().first().and_then(|i| i.instance_id()), "instance")?;
        let running = self.wait_state(ec2, &id, "running").await?;
        Ok(with_computed(planned, &running.value))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        update_tags(ec2, prior, planned).await?;
        let id = prior.recorded_id("AWS")?;
        let groups = planned.strings("security_groups");
        if groups != prior.strings("security_groups") && !groups.is_empty() {
            self.set_attribute(&id, "security groups", ec2.modify_instance_attribute().set_groups(Some(groups)))
                .await?;
        }
        let wanted = planned.non_empty_text("type").unwrap_or_default();
        let retype = prior.non_empty_text("type") != Some(wanted);
        // Stopped by hand: the plan says running.
        let stopped = prior.non_empty_text("state") == Some("stopped");
        if retype && !stopped {
            ec2.stop_instances()
                .instance_ids(&id)
                .send()
                .await
                .map_err(|e| aws_error(&format!("stopping instance {id}"), e))?;
            self.wait_state(ec2, &id, "stopped").await?;
        }
        if retype {
            let change = ec2.modify_instance_attribute().instance_type(AttributeValue::builder().value(wanted).build());
            self.set_attribute(&id, "type", change).await?;
        }
        if retype || stopped {
            ec2.start_instances()
                .instance_ids(&id)
                .send()
                .await
                .map_err(|e| aws_error(&format!("starting instance {id}"), e))?;
        }
        // A started instance may have a new public address.
        let running = self.wait_state(ec2, &id, "running").await?;
        Ok(with_computed(
            &merged(planned, [("public_ip", Value::Unknown), ("private_ip", Value::Unknown)]),
            &running.value,
        ))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("instance {id}"), || ec2.terminate_instances().instance_ids(&id).send()).await?;
        self.wait_state(ec2, &id, "terminated").await.map(|_| ())
    }
}

pub struct KeyPair;

#[async_trait]
impl Kind for KeyPair {
    fn schema(&self) -> Schema {
        Schema::new("A public key EC2 installs on the instances started with it.")
            .attribute("name", AttributeSchema::required(Type::String).force_new())
            .attribute(
                "public_key",
                AttributeSchema::required(Type::String).force_new().describe("an OpenSSH public key line"),
            )
            .attribute("tags", tags::attribute())
            .attribute("fingerprint", AttributeSchema::computed(Type::String))
            .attribute("id", AttributeSchema::computed(Type::String))
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let found = ec2
            .describe_key_pairs()
            .set_filters(Some(query.filters("key-pair-id")))
            .send()
            .await
            .map_err(|e| aws_error("listing key pairs", e))?;
        Ok(found
            .key_pairs()
            .iter()
            .map(|k| {
                Observed::tagged(
                    k.key_pair_id().unwrap_or_default(),
                    k.tags(),
                    [
                        ("name", Value::string(k.key_name().unwrap_or_default())),
                        ("fingerprint", Value::string(k.key_fingerprint().unwrap_or_default())),
                    ],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let name = required_text(planned, "name")?;
        let made = ec2
            .import_key_pair()
            .key_name(name)
            .public_key_material(Blob::new(required_text(planned, "public_key")?.trim().as_bytes()))
            .tag_specifications(tags::spec(ResourceType::KeyPair, ctx, planned))
            .send()
            .await
            .map_err(|e| aws_error(&format!("importing key pair {name}"), e))?;
        Ok(merged(
            planned,
            [
                ("id", Value::string(made_id(made.key_pair_id(), "key pair")?)),
                ("fingerprint", Value::string(made.key_fingerprint().unwrap_or_default())),
            ],
        ))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        // By name: every EC2 endpoint (moto too) takes that; not all take the id.
        let name = required_text(prior, "name")?;
        delete_retrying(&format!("key pair {name}"), || ec2.delete_key_pair().key_name(name).send()).await
    }
}

pub struct ElasticIp;

#[async_trait]
impl Kind for ElasticIp {
    fn schema(&self) -> Schema {
        Schema::new("A public IPv4 address that outlives the instance it points at.")
            .attribute(
                "instance",
                AttributeSchema::optional(Type::String)
                    .describe("the instance it points at; moved in place (create_before_destroy on the instance keeps the address serving)"),
            )
            .attribute("tags", tags::attribute())
            .attribute("public_ip", AttributeSchema::computed(Type::String))
            .attribute("association", AttributeSchema::computed(Type::String))
            .attribute("id", AttributeSchema::computed(Type::String))
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let found = ec2
            .describe_addresses()
            .set_filters(Some(query.filters("allocation-id")))
            .send()
            .await
            .map_err(|e| aws_error("listing elastic IPs", e))?;
        Ok(found
            .addresses()
            .iter()
            .map(|a| {
                let optional = |s: Option<&str>| s.map_or(Value::Null, Value::string);
                Observed::tagged(
                    a.allocation_id().unwrap_or_default(),
                    a.tags(),
                    [
                        ("instance", optional(a.instance_id())),
                        ("public_ip", optional(a.public_ip())),
                        ("association", optional(a.association_id())),
                    ],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let made = ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(tags::spec(ResourceType::ElasticIp, ctx, planned))
            .send()
            .await
            .map_err(|e| aws_error("allocating an elastic IP", e))?;
        let id = made_id(made.allocation_id(), "elastic IP")?;
        let association = match planned.non_empty_text("instance") {
            Some(instance) => Value::string(associate(ec2, &id, instance).await?),
            None => Value::Null,
        };
        Ok(merged(
            planned,
            [
                ("id", Value::string(&id)),
                ("public_ip", Value::string(made.public_ip().unwrap_or_default())),
                ("association", association),
            ],
        ))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        update_tags(ec2, prior, planned).await?;
        let id = prior.recorded_id("AWS")?;
        let mut association = prior.get("association").cloned().unwrap_or_default();
        if prior.non_empty_text("instance") != planned.non_empty_text("instance") {
            association = match planned.non_empty_text("instance") {
                // Re-associating moves the address in one call, without a gap.
                Some(instance) => Value::string(associate(ec2, &id, instance).await?),
                None => {
                    disassociate(ec2, prior).await?;
                    Value::Null
                }
            };
        }
        Ok(merged(&with_computed(planned, prior), [("association", association)]))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        disassociate(ec2, prior).await?;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("elastic IP {id}"), || ec2.release_address().allocation_id(&id).send()).await
    }
}

async fn associate(ec2: &Client, id: &str, instance: &str) -> Result<String, ProviderError> {
    let made = retry_not_found(|| {
        ec2.associate_address().allocation_id(id).instance_id(instance).allow_reassociation(true).send()
    })
    .await
    .map_err(|e| aws_error(&format!("pointing elastic IP {id} at {instance}"), e))?;
    made_id(made.association_id(), "association")
}

async fn disassociate(ec2: &Client, prior: &Value) -> Result<(), ProviderError> {
    let Some(association) = prior.non_empty_text("association") else { return Ok(()) };
    delete_retrying(&format!("elastic IP association {association}"), || {
        ec2.disassociate_address().association_id(association).send()
    })
    .await
}
