//! The `aws` provider: VPCs, subnets, gateways, route tables, security groups
//! (written as firewalls), key pairs, instances, volumes, snapshots and
//! elastic IPs on EC2, through aws-sdk-ec2, and EBS snapshot schedules
//! through Data Lifecycle Manager (aws-sdk-dlm). This is the only crate that
//! depends on the AWS SDK, which dominates the build.
//!
//! Everything it creates is tagged `infra:lineage` and `infra:address`.
//! Refresh is batched: one paginated Describe call per resource type for the
//! whole state, filtered by the lineage tag, whatever the number of objects;
//! only recorded ids that listing did not show (an object imported and not
//! yet tagged, or one EC2 does not show yet) are looked up, together, by id.
//! An object created just before a crash is found by its tags and adopted.

mod client;
mod instance;
mod kind;
mod network;
mod schedule;
mod security_group;
mod storage;
mod tags;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use infra_core::{
    AttributeSchema, OperationContext, Provider, ProviderError, ProviderFactory, ProviderSchema, ReadRequest, Refined,
    Schema, Type, Value,
};

use crate::kind::{Kind, Observed, Query};

/// Every resource type, by name. A `firewall` with a `vpc` is a security group.
static KINDS: [(&str, &dyn Kind); 14] = [
    ("vpc", &network::Vpc),
    ("subnet", &network::Subnet),
    ("internet_gateway", &network::InternetGateway),
    ("route_table", &network::RouteTable),
    ("route_table_association", &network::RouteTableAssociation),
    ("security_group", &security_group::SecurityGroup),
    ("firewall", &security_group::SecurityGroup),
    ("key_pair", &instance::KeyPair),
    ("instance", &instance::Instance),
    ("elastic_ip", &instance::ElasticIp),
    ("volume", &storage::Volume),
    ("volume_attachment", &storage::VolumeAttachment),
    ("snapshot", &storage::Snapshot),
    ("snapshot_schedule", &schedule::SnapshotSchedule),
];

fn kind_of(name: &str) -> Result<&'static dyn Kind, ProviderError> {
    KINDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| ProviderError::invalid("", format!("the aws provider has no resource type `{name}`")))
}

static SCHEMA: LazyLock<ProviderSchema> = LazyLock::new(|| ProviderSchema {
    config: Schema::new("An AWS account and region; credentials come from the standard AWS chain.")
        .attribute(
            "region",
            AttributeSchema::optional(Type::String).describe("e.g. eu-west-1; default: AWS_REGION or the profile's"),
        )
        .attribute("profile", AttributeSchema::optional(Type::String).describe("a profile of ~/.aws/config"))
        .attribute(
            "endpoint",
            AttributeSchema::optional(Type::String)
                .describe("another EC2 endpoint (an emulator such as moto, for tests)"),
        ),
    resources: KINDS.iter().map(|(name, kind)| (*name, kind.schema())).collect(),
});

pub struct AwsFactory;

#[async_trait]
impl ProviderFactory for AwsFactory {
    fn schema(&self) -> &ProviderSchema {
        &SCHEMA
    }

    async fn configure(&self, config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(AwsProvider { aws: client::connect(config).await? }))
    }
}

pub struct AwsProvider {
    aws: client::Clients,
}

impl AwsProvider {
    /// The objects of one type that `requests` recorded: one listing by
    /// lineage, then one by id for whatever it did not show.
    async fn refresh_kind(
        &self,
        kind: &dyn Kind,
        lineage: &str,
        requests: &[&ReadRequest],
    ) -> Result<HashMap<String, Observed>, ProviderError> {
        let recorded: Vec<String> =
            requests.iter().filter_map(|r| r.state.non_empty_text("id").map(str::to_string)).collect();
        let mut found: HashMap<String, Observed> = HashMap::new();
        if kind.tagged() {
            found.extend(kind.list(&self.aws, Query::Lineage(lineage)).await?.into_iter().map(|o| (o.id.clone(), o)));
        }
        let missing: Vec<String> = recorded.into_iter().filter(|id| !found.contains_key(id)).collect();
        found.extend(kind.list(&self.aws, Query::Ids(&missing)).await?.into_iter().map(|o| (o.id.clone(), o)));
        Ok(found)
    }
}

/// Recorded state with what AWS reports of the type's attributes laid over
/// it; what AWS does not report (user data, a root volume's size) keeps its
/// recorded value, and what the schema does not name (a volume's attachment
/// state, which another resource changes) is not state.
fn merge_observed(kind: &str, recorded: &Value, observed: &Value) -> Value {
    let mut merged = recorded.clone();
    let schema = SCHEMA.resources.get(kind);
    if let (Value::Object(into), Some(from), Some(schema)) = (&mut merged, observed.as_object(), schema) {
        for (k, v) in from.iter().filter(|(k, _)| schema.attributes.contains_key(k.as_str())) {
            into.insert(k.clone(), v.clone());
        }
    }
    merged
}

#[async_trait]
impl Provider for AwsProvider {
    fn validate(&self, kind: &str, config: &Value) -> Vec<ProviderError> {
        kind_of(kind).map(|k| k.validate(config)).unwrap_or_default()
    }

    fn plan(&self, kind: &str, prior: Option<&Value>, proposed: Value) -> Result<Refined, ProviderError> {
        kind_of(kind)?.plan(prior, proposed)
    }

    async fn read(&self, requests: &[ReadRequest]) -> Vec<Result<Option<Value>, ProviderError>> {
        let Some(lineage) = requests.first().map(|r| r.lineage.clone()) else { return Vec::new() };
        let mut by_kind: HashMap<&str, Vec<&ReadRequest>> = HashMap::new();
        for r in requests {
            by_kind.entry(r.kind.as_str()).or_default().push(r);
        }
        // The types are listed side by side: a slow or failing endpoint costs one wait, not one per type.
        let listings = by_kind.iter().map(|(name, of_kind)| {
            let lineage = &lineage;
            async move {
                let found = match kind_of(name) {
                    Ok(kind) => self.refresh_kind(kind, lineage, of_kind).await,
                    Err(e) => Err(e),
                };
                (*name, found)
            }
        });
        let listed: HashMap<&str, Result<HashMap<String, Observed>, ProviderError>> =
            futures_util::future::join_all(listings).await.into_iter().collect();
        requests
            .iter()
            .map(|r| {
                let found = listed.get(r.kind.as_str()).map(|l| l.as_ref().map_err(Clone::clone));
                let found = found.unwrap_or_else(|| Err(ProviderError::failed("not listed")))?;
                let id = r.state.non_empty_text("id").unwrap_or_default();
                Ok(found.get(id).map(|o| merge_observed(&r.kind, &r.state, &o.value)))
            })
            .collect()
    }

    async fn create(&self, ctx: &OperationContext, kind: &str, planned: &Value) -> Result<Value, ProviderError> {
        kind_of(kind)?.create(&self.aws, ctx, planned).await
    }

    async fn update(
        &self,
        _ctx: &OperationContext,
        kind: &str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ProviderError> {
        kind_of(kind)?.update(&self.aws, prior, planned).await
    }

    async fn delete(&self, _ctx: &OperationContext, kind: &str, prior: &Value) -> Result<(), ProviderError> {
        kind_of(kind)?.delete(&self.aws, prior).await
    }

    /// Reads the object and tags it as this state's, so refresh lists it with the rest.
    async fn import(&self, ctx: &OperationContext, kind: &str, id: &str) -> Result<Value, ProviderError> {
        let k = kind_of(kind)?;
        let ids = [id.to_string()];
        let found = k
            .list(&self.aws, Query::Ids(&ids))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::failed(format!("no {kind} with id {id} in this region")))?;
        let _ = ctx;
        Ok(merge_observed(kind, &Value::Object(Default::default()), &found.value))
    }

    /// Tags an imported object with this state's lineage and its address.
    async fn claim(&self, ctx: &OperationContext, kind: &str, imported: &Value) -> Result<(), ProviderError> {
        let k = kind_of(kind)?;
        let Some(id) = imported.non_empty_text("id").filter(|_| k.tagged()).map(str::to_string) else { return Ok(()) };
        k.add_tags(&self.aws, &id, tags::with_markers(ctx, &Value::Null)).await.map_err(|mut e| {
            e.message = format!("claiming it as {}: {}", ctx.address, e.message);
            e
        })
    }

    /// Finds an object created for this address by this state but never
    /// recorded (a crash between create and save), by its tags; never the one
    /// a create_before_destroy replacement is replacing.
    async fn adopt(
        &self,
        ctx: &OperationContext,
        kind: &str,
        _planned: &Value,
    ) -> Result<Option<Value>, ProviderError> {
        let k = kind_of(kind)?;
        if !k.tagged() {
            return Ok(None);
        }
        let replaced = ctx.replaced_id().unwrap_or_default();
        let address = ctx.address.to_string();
        let found = k.list(&self.aws, Query::Address(ctx)).await?;
        Ok(found
            .into_iter()
            .find(|o| o.id != replaced && o.address.as_deref() == Some(&address))
            .map(|o| merge_observed(kind, &Value::Object(Default::default()), &o.value)))
    }
}
