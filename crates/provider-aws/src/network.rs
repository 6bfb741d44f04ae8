//! The network: `vpc`, `subnet`, `internet_gateway`, `route_table` and
//! `route_table_association`.

use crate::client::Clients;
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, RouteOrigin};
use infra_core::{AttributeSchema, BlockNesting, OperationContext, ProviderError, Schema, Type, Value};

use crate::client::{aws_error, is_not_found};
use crate::kind::{
    Kind, Observed, Query, delete_retrying, flag, made_id, merged, required_text, retry_not_found, update_tags,
    visible, with_computed,
};
use crate::tags;

fn id_attribute() -> AttributeSchema {
    AttributeSchema::computed(Type::String)
}

/// The on/off settings EC2 changes one call at a time, apart from creation.
#[derive(Clone, Copy)]
enum Switch {
    /// A VPC's `dns_hostnames` (on by default).
    DnsHostnames,
    /// A subnet's `public_ips` (off by default).
    PublicIps,
}

impl Switch {
    fn wanted(self, value: &Value) -> bool {
        match self {
            Switch::DnsHostnames => flag(value, "dns_hostnames").unwrap_or(true),
            Switch::PublicIps => flag(value, "public_ips").unwrap_or(false),
        }
    }

    async fn set(self, ec2: &Client, id: &str, on: bool) -> Result<(), ProviderError> {
        let value = AttributeBooleanValue::builder().value(on).build();
        let what = format!(
            "setting {} of {id}",
            match self {
                Switch::DnsHostnames => "DNS hostnames",
                Switch::PublicIps => "public IPs",
            }
        );
        match self {
            Switch::DnsHostnames => {
                ec2.modify_vpc_attribute()
                    .vpc_id(id)
                    .enable_dns_hostnames(value)
                    .send()
                    .await
                    .map_err(|e| aws_error(&what, e))?;
            }
            Switch::PublicIps => {
                ec2.modify_subnet_attribute()
                    .subnet_id(id)
                    .map_public_ip_on_launch(value)
                    .send()
                    .await
                    .map_err(|e| aws_error(&what, e))?;
            }
        }
        Ok(())
    }

    /// Tags, then this setting where it changed.
    async fn update(self, ec2: &Client, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        update_tags(ec2, prior, planned).await?;
        if self.wanted(prior) != self.wanted(planned) {
            self.set(ec2, &prior.recorded_id("AWS")?, self.wanted(planned)).await?;
        }
        Ok(with_computed(planned, prior))
    }
}

pub struct Vpc;

#[async_trait]
impl Kind for Vpc {
    fn schema(&self) -> Schema {
        Schema::new("A virtual private cloud: the network every other object lives in.")
            .attribute(
                "cidr",
                AttributeSchema::required(Type::String).force_new().describe("its IPv4 range, e.g. 10.42.0.0/16"),
            )
            .attribute(
                "dns_hostnames",
                AttributeSchema::optional(Type::Bool).default(Value::Bool(true)).describe("instances get DNS names"),
            )
            .attribute("tags", tags::attribute())
            .attribute("id", id_attribute())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        cidr_errors(config, "cidr")
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let vpcs = ec2
            .describe_vpcs()
            .set_filters(Some(query.filters("vpc-id")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing VPCs", e))?;
        Ok(vpcs
            .into_iter()
            .map(|vpc| {
                Observed::tagged(
                    vpc.vpc_id().unwrap_or_default(),
                    vpc.tags(),
                    [("cidr", Value::string(vpc.cidr_block().unwrap_or_default()))],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let created = ec2
            .create_vpc()
            .cidr_block(required_text(planned, "cidr")?)
            .tag_specifications(tags::spec(ResourceType::Vpc, ctx, planned))
            .send()
            .await
            .map_err(|e| aws_error("creating the VPC", e))?;
        let id = made_id(created.vpc().and_then(|v| v.vpc_id()), "VPC")?;
        visible(self, aws, &id, "VPC").await?;
        Switch::DnsHostnames.set(ec2, &id, Switch::DnsHostnames.wanted(planned)).await?;
        Ok(merged(planned, [("id", Value::string(id))]))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        Switch::DnsHostnames.update(ec2, prior, planned).await
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("VPC {id}"), || ec2.delete_vpc().vpc_id(&id).send()).await
    }
}

pub struct Subnet;

#[async_trait]
impl Kind for Subnet {
    fn schema(&self) -> Schema {
        Schema::new("A range of a VPC's addresses in one availability zone.")
            .attribute("vpc", AttributeSchema::required(Type::String).force_new().describe("the VPC's id: vpc.NAME.id"))
            .attribute("cidr", AttributeSchema::required(Type::String).force_new())
            .attribute(
                "availability_zone",
                AttributeSchema::optional_computed(Type::String).force_new().describe("default: one AWS picks"),
            )
            .attribute(
                "public_ips",
                AttributeSchema::optional(Type::Bool)
                    .default(Value::Bool(false))
                    .describe("instances started in it get a public IPv4 address"),
            )
            .attribute("tags", tags::attribute())
            .attribute("id", id_attribute())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        cidr_errors(config, "cidr")
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let subnets = ec2
            .describe_subnets()
            .set_filters(Some(query.filters("subnet-id")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing subnets", e))?;
        Ok(subnets
            .into_iter()
            .map(|s| {
                Observed::tagged(
                    s.subnet_id().unwrap_or_default(),
                    s.tags(),
                    [
                        ("vpc", Value::string(s.vpc_id().unwrap_or_default())),
                        ("cidr", Value::string(s.cidr_block().unwrap_or_default())),
                        ("availability_zone", Value::string(s.availability_zone().unwrap_or_default())),
                        ("public_ips", Value::Bool(s.map_public_ip_on_launch().unwrap_or(false))),
                    ],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let vpc = required_text(planned, "vpc")?;
        let created = retry_not_found(|| {
            ec2.create_subnet()
                .vpc_id(vpc)
                .cidr_block(planned.non_empty_text("cidr").unwrap_or_default())
                .set_availability_zone(planned.non_empty_text("availability_zone").map(str::to_string))
                .tag_specifications(tags::spec(ResourceType::Subnet, ctx, planned))
                .send()
        })
        .await
        .map_err(|e| aws_error(&format!("creating a subnet in {vpc}"), e))?;
        let id = made_id(created.subnet().and_then(|s| s.subnet_id()), "subnet")?;
        let seen = visible(self, aws, &id, "subnet").await?;
        if Switch::PublicIps.wanted(planned) {
            Switch::PublicIps.set(ec2, &id, true).await?;
        }
        Ok(merged(
            planned,
            [
                ("id", Value::string(id)),
                ("availability_zone", seen.value.get("availability_zone").cloned().unwrap_or_default()),
            ],
        ))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        Switch::PublicIps.update(ec2, prior, planned).await
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("subnet {id}"), || ec2.delete_subnet().subnet_id(&id).send()).await
    }
}

pub struct InternetGateway;

#[async_trait]
impl Kind for InternetGateway {
    fn schema(&self) -> Schema {
        Schema::new("A VPC's way to and from the internet; routes send 0.0.0.0/0 to it.")
            .attribute("vpc", AttributeSchema::optional(Type::String).describe("the VPC it is attached to"))
            .attribute("tags", tags::attribute())
            .attribute("id", id_attribute())
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let gateways = ec2
            .describe_internet_gateways()
            .set_filters(Some(query.filters("internet-gateway-id")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing internet gateways", e))?;
        Ok(gateways
            .into_iter()
            .map(|g| {
                let vpc = g.attachments().iter().find_map(|a| a.vpc_id()).map_or(Value::Null, Value::string);
                Observed::tagged(g.internet_gateway_id().unwrap_or_default(), g.tags(), [("vpc", vpc)])
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let created = ec2
            .create_internet_gateway()
            .tag_specifications(tags::spec(ResourceType::InternetGateway, ctx, planned))
            .send()
            .await
            .map_err(|e| aws_error("creating the internet gateway", e))?;
        let id = made_id(created.internet_gateway().and_then(|g| g.internet_gateway_id()), "internet gateway")?;
        visible(self, aws, &id, "internet gateway").await?;
        if let Some(vpc) = planned.non_empty_text("vpc") {
            attach_gateway(ec2, &id, vpc).await?;
        }
        Ok(merged(planned, [("id", Value::string(id))]))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        update_tags(ec2, prior, planned).await?;
        let id = prior.recorded_id("AWS")?;
        let (before, after) = (prior.non_empty_text("vpc"), planned.non_empty_text("vpc"));
        if before != after {
            if let Some(vpc) = before {
                detach_gateway(ec2, &id, vpc).await?;
            }
            if let Some(vpc) = after {
                attach_gateway(ec2, &id, vpc).await?;
            }
        }
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        if let Some(vpc) = prior.non_empty_text("vpc") {
            detach_gateway(ec2, &id, vpc).await?;
        }
        delete_retrying(&format!("internet gateway {id}"), || {
            ec2.delete_internet_gateway().internet_gateway_id(&id).send()
        })
        .await
    }
}

async fn attach_gateway(ec2: &Client, id: &str, vpc: &str) -> Result<(), ProviderError> {
    retry_not_found(|| ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send())
        .await
        .map_err(|e| aws_error(&format!("attaching internet gateway {id} to {vpc}"), e))?;
    Ok(())
}

async fn detach_gateway(ec2: &Client, id: &str, vpc: &str) -> Result<(), ProviderError> {
    match ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send().await {
        // Detached already, or the VPC is gone: nothing holds it.
        Err(e)
            if !is_not_found(&e)
                && e.as_service_error().and_then(|s| aws_sdk_ec2::error::ProvideErrorMetadata::code(s))
                    != Some("Gateway.NotAttached") =>
        {
            Err(aws_error(&format!("detaching internet gateway {id} from {vpc}"), e))
        }
        _ => Ok(()),
    }
}

pub struct RouteTable;

fn route_schema() -> Schema {
    Schema::new("A route: where traffic for a range goes.")
        .attribute("cidr", AttributeSchema::required(Type::String).describe("destination range, e.g. 0.0.0.0/0"))
        .attribute("gateway", AttributeSchema::required(Type::String).describe("internet_gateway.NAME.id"))
}

/// Routes as `CIDR -> GATEWAY`, sorted: the form compared and shown in plans.
fn routes_of(value: &Value) -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = value
        .get("route")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| Some((r.non_empty_text("cidr")?.to_string(), r.non_empty_text("gateway")?.to_string())))
        .collect();
    routes.sort();
    routes
}

fn routes_value(routes: &[(String, String)]) -> Value {
    Value::List(
        routes
            .iter()
            .map(|(cidr, gateway)| Value::object([("cidr", Value::string(cidr)), ("gateway", Value::string(gateway))]))
            .collect(),
    )
}

#[async_trait]
impl Kind for RouteTable {
    fn schema(&self) -> Schema {
        Schema::new("A VPC's routing table; subnets use it through a route_table_association.")
            .attribute("vpc", AttributeSchema::required(Type::String).force_new())
            .block("route", BlockNesting::List, route_schema())
            .attribute("tags", tags::attribute())
            .attribute("id", id_attribute())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let routes = config.get("route").and_then(Value::as_list).unwrap_or_default();
        (0..routes.len())
            .flat_map(|i| {
                cidr_errors(&routes[i], "cidr").into_iter().map(move |mut e| {
                    e.attribute = Some(format!("route[{i}].cidr"));
                    e
                })
            })
            .collect()
    }

    fn plan(&self, _prior: Option<&Value>, proposed: Value) -> Result<infra_core::Refined, ProviderError> {
        // Sorted, as refresh reports them, so order alone is no change.
        let routes = proposed.get("route").filter(|r| r.is_wholly_known()).map(|_| routes_value(&routes_of(&proposed)));
        Ok(infra_core::Refined::new(match routes {
            Some(routes) => merged(&proposed, [("route", routes)]),
            None => proposed,
        }))
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let tables = ec2
            .describe_route_tables()
            .set_filters(Some(query.filters("route-table-id")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing route tables", e))?;
        Ok(tables
            .into_iter()
            .map(|t| {
                let mut routes: Vec<(String, String)> = t
                    .routes()
                    .iter()
                    .filter(|r| r.origin() != Some(&RouteOrigin::CreateRouteTable))
                    .filter_map(|r| Some((r.destination_cidr_block()?.to_string(), r.gateway_id()?.to_string())))
                    .collect();
                routes.sort();
                Observed::tagged(
                    t.route_table_id().unwrap_or_default(),
                    t.tags(),
                    [("vpc", Value::string(t.vpc_id().unwrap_or_default())), ("route", routes_value(&routes))],
                )
            })
            .collect())
    }

    async fn create(&self, aws: &Clients, ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let vpc = required_text(planned, "vpc")?;
        let created = retry_not_found(|| {
            ec2.create_route_table()
                .vpc_id(vpc)
                .tag_specifications(tags::spec(ResourceType::RouteTable, ctx, planned))
                .send()
        })
        .await
        .map_err(|e| aws_error(&format!("creating a route table in {vpc}"), e))?;
        let id = made_id(created.route_table().and_then(|t| t.route_table_id()), "route table")?;
        visible(self, aws, &id, "route table").await?;
        set_routes(ec2, &id, &[], &routes_of(planned)).await?;
        Ok(merged(planned, [("id", Value::string(id))]))
    }

    async fn update(&self, aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        update_tags(ec2, prior, planned).await?;
        set_routes(ec2, &prior.recorded_id("AWS")?, &routes_of(prior), &routes_of(planned)).await?;
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        delete_retrying(&format!("route table {id}"), || ec2.delete_route_table().route_table_id(&id).send()).await
    }
}

/// Removes the routes that went or changed, then adds the new ones.
async fn set_routes(
    ec2: &Client,
    table: &str,
    before: &[(String, String)],
    after: &[(String, String)],
) -> Result<(), ProviderError> {
    for (cidr, _) in before.iter().filter(|r| !after.contains(r)) {
        match ec2.delete_route().route_table_id(table).destination_cidr_block(cidr).send().await {
            Err(e) if !is_not_found(&e) => return Err(aws_error(&format!("removing route {cidr} from {table}"), e)),
            _ => {}
        }
    }
    for (cidr, gateway) in after.iter().filter(|r| !before.contains(r)) {
        retry_not_found(|| {
            ec2.create_route().route_table_id(table).destination_cidr_block(cidr).gateway_id(gateway).send()
        })
        .await
        .map_err(|e| aws_error(&format!("adding route {cidr} -> {gateway} to {table}"), e))?;
    }
    Ok(())
}

pub struct RouteTableAssociation;

#[async_trait]
impl Kind for RouteTableAssociation {
    fn schema(&self) -> Schema {
        Schema::new("Makes a subnet use a route table.")
            .attribute("route_table", AttributeSchema::required(Type::String).force_new())
            .attribute("subnet", AttributeSchema::required(Type::String).force_new())
            .attribute("id", id_attribute())
    }

    fn tagged(&self) -> bool {
        false
    }

    async fn list(&self, aws: &Clients, query: Query<'_>) -> Result<Vec<Observed>, ProviderError> {
        let ec2 = &aws.ec2;
        let Query::Ids(ids) = query else { return Ok(Vec::new()) };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let tables = ec2
            .describe_route_tables()
            .set_filters(Some(query.filters("association.route-table-association-id")))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| aws_error("listing route table associations", e))?;
        Ok(tables
            .iter()
            .flat_map(|t| t.associations())
            .filter_map(|a| {
                let id = a.route_table_association_id()?.to_string();
                let value = Value::object([
                    ("id", Value::string(&id)),
                    ("route_table", Value::string(a.route_table_id().unwrap_or_default())),
                    ("subnet", a.subnet_id().map_or(Value::Null, Value::string)),
                ]);
                Some(Observed { id, address: None, value })
            })
            .filter(|o| ids.contains(&o.id))
            .collect())
    }

    async fn create(&self, aws: &Clients, _ctx: &OperationContext, planned: &Value) -> Result<Value, ProviderError> {
        let ec2 = &aws.ec2;
        let (table, subnet) = (required_text(planned, "route_table")?, required_text(planned, "subnet")?);
        let made = retry_not_found(|| ec2.associate_route_table().route_table_id(table).subnet_id(subnet).send())
            .await
            .map_err(|e| aws_error(&format!("associating {subnet} with {table}"), e))?;
        Ok(merged(planned, [("id", Value::string(made_id(made.association_id(), "association")?))]))
    }

    async fn update(&self, _aws: &Clients, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
        Ok(with_computed(planned, prior))
    }

    async fn delete(&self, aws: &Clients, prior: &Value) -> Result<(), ProviderError> {
        let ec2 = &aws.ec2;
        let id = prior.recorded_id("AWS")?;
        match ec2.disassociate_route_table().association_id(&id).send().await {
            Err(e) if !is_not_found(&e) => Err(aws_error(&format!("removing route table association {id}"), e)),
            _ => Ok(()),
        }
    }
}

/// An attribute that must be an IPv4 or IPv6 network.
pub fn cidr_errors(config: &Value, key: &str) -> Vec<ProviderError> {
    match config.get(key).map(Value::peel) {
        Some(Value::String(s)) if s.parse::<ipnet::IpNet>().is_err() => {
            vec![ProviderError::invalid(key, format!("`{s}` is not a CIDR network such as 10.0.0.0/16"))]
        }
        _ => Vec::new(),
    }
}
