//! The ec2 kinds on AWS: vpc, subnet, internet_gateway, elastic_ip, nat_gateway, route_table,
//! route, vpc_peering (this file), security_group (`sg.rs`) and launch_template (`lt.rs`).
//!
//! Every kind but the route is found by a filter: its `Name` tag (`tag:Name`), or for security
//! groups and launch templates their name field; `list` filters on `tag:ManagedBy=drflow`. A
//! route is found inside its route table by its destination CIDR; it has no id in EC2, so its
//! id here is `<rtb id>_<destination>` (the form Terraform imports routes by).
//!
//! `create` and `update` return the resource from what they sent and what EC2 answered, without
//! describing it again; `find` and `list` read everything back from EC2.
//!
//! What EC2 has no field for:
//! - a subnet's `tier` (`public`/`private`) is kept in the tag `drflow:tier`;
//! - an EIP's and a NAT gateway's ARN name no account (EC2 does not return their owner).

mod lt;
mod sg;
#[cfg(test)]
mod tests;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, ConnectivityType, DomainType, Filter, ResourceType, Tag,
    TagSpecification, VpcAttributeName,
};
use serde_json::{Map, Value, json};

use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

/// Sets a route call's target from a spec (the one of [`ROUTE_TARGETS`] it names).
macro_rules! route_target {
    ($call:expr, $spec:expr) => {{
        let spec: &Value = $spec;
        let mut call = $call;
        if let Some(v) = spec.get("gateway_id").and_then(Value::as_str) {
            call = call.gateway_id(v);
        }
        if let Some(v) = spec.get("nat_gateway_id").and_then(Value::as_str) {
            call = call.nat_gateway_id(v);
        }
        if let Some(v) = spec
            .get("vpc_peering_connection_id")
            .and_then(Value::as_str)
        {
            call = call.vpc_peering_connection_id(v);
        }
        call
    }};
}

/// The tag that holds a subnet's tier, which EC2 has no field for.
const TIER_TAG: &str = "drflow:tier";

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    let region = id.region.as_str();
    let found = match id.kind {
        Kind::Route => {
            let Some(table) = id.parent.as_deref() else {
                return Err(no_parent(id.kind));
            };
            return find_route(c, region, table, &id.name).await;
        }
        Kind::SecurityGroup => sg::describe(c, region, vec![filter("group-name", &id.name)]).await,
        Kind::LaunchTemplate => {
            lt::describe(c, region, vec![filter("launch-template-name", &id.name)]).await
        }
        kind => describe(c, region, kind, vec![filter("tag:Name", &id.name)]).await,
    }?;
    // The filter is checked again here: an emulator may ignore a tag filter (moto does for NAT
    // gateways) and return every resource of the kind.
    let mut found: Vec<Resource> = found.into_iter().filter(|r| r.name == id.name).collect();
    // Several may carry one name (a replacement is built before the old one goes): prefer one
    // that is not on its way out.
    found.sort_by_key(|r| r.state == ResourceState::Deleting);
    Ok(found.into_iter().next())
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let managed = || vec![filter("tag:ManagedBy", "drflow")];
    match kind {
        Kind::Route => {
            let table = parent.ok_or_else(|| no_parent(kind))?;
            routes(c, region, table).await
        }
        Kind::SecurityGroup => sg::describe(c, region, managed()).await,
        Kind::LaunchTemplate => lt::describe(c, region, managed()).await,
        kind => describe(c, region, kind, managed()).await,
    }
    .map(|all| {
        // Checked again, as in `find`.
        all.into_iter()
            .filter(|r| {
                kind == Kind::Route || r.tags.get("ManagedBy").map(String::as_str) == Some("drflow")
            })
            .collect()
    })
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    match req.kind {
        Kind::Vpc => create_vpc(c, req).await,
        Kind::Subnet => create_subnet(c, req).await,
        Kind::InternetGateway => create_igw(c, req).await,
        Kind::ElasticIp => create_eip(c, req).await,
        Kind::NatGateway => create_nat(c, req).await,
        Kind::RouteTable => create_route_table(c, req).await,
        Kind::Route => create_route(c, req).await,
        Kind::VpcPeering => create_peering(c, req).await,
        Kind::SecurityGroup => sg::create(c, req).await,
        Kind::LaunchTemplate => lt::create(c, req).await,
        kind => Err(not_ec2(kind)),
    }
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let region = current.region.as_str();
    let mut out = current.clone();
    for path in &req.drifted {
        // The top-level key: `ingress` for `ingress`, `metadata_options` for
        // `metadata_options.http_tokens`.
        let key = path.split('.').next().unwrap_or(path);
        let handled = match (current.kind, key) {
            (Kind::Vpc, "enable_dns_support" | "enable_dns_hostnames") => {
                let value = bool_at(&req.spec, key);
                let rc = c.region(region).await;
                let call = rc.ec2.modify_vpc_attribute().vpc_id(&current.id);
                let call = if key == "enable_dns_support" {
                    call.enable_dns_support(boolean(value))
                } else {
                    call.enable_dns_hostnames(boolean(value))
                };
                c.call(Call::new(region, "ec2", "ModifyVpcAttribute"), call.send())
                    .await?;
                true
            }
            (Kind::Subnet, "map_public_ip_on_launch") => {
                let rc = c.region(region).await;
                c.call(
                    Call::new(region, "ec2", "ModifySubnetAttribute"),
                    rc.ec2
                        .modify_subnet_attribute()
                        .subnet_id(&current.id)
                        .map_public_ip_on_launch(boolean(bool_at(&req.spec, key)))
                        .send(),
                )
                .await?;
                true
            }
            (Kind::Subnet, "tier") => {
                let tier = str_at(&req.spec, "tier");
                let tags = Tags::from([(TIER_TAG.to_string(), tier.to_string())]);
                create_tags(c, region, &current.id, &tags).await?;
                out.tags.extend(tags);
                true
            }
            (Kind::InternetGateway, "vpc_id") => {
                let rc = c.region(region).await;
                let old = str_at(&current.spec, "vpc_id");
                if !old.is_empty() {
                    c.call(
                        Call::new(region, "ec2", "DetachInternetGateway"),
                        rc.ec2
                            .detach_internet_gateway()
                            .internet_gateway_id(&current.id)
                            .vpc_id(old)
                            .send(),
                    )
                    .await?;
                }
                c.call(
                    Call::new(region, "ec2", "AttachInternetGateway"),
                    rc.ec2
                        .attach_internet_gateway()
                        .internet_gateway_id(&current.id)
                        .vpc_id(str_at(&req.spec, "vpc_id"))
                        .send(),
                )
                .await?;
                true
            }
            (Kind::RouteTable, "subnet_ids") => {
                update_associations(c, current, &req.spec).await?;
                true
            }
            (Kind::Route, "gateway_id" | "nat_gateway_id" | "vpc_peering_connection_id") => {
                let rc = c.region(region).await;
                let (table, destination) = route_key(current);
                let call = rc
                    .ec2
                    .replace_route()
                    .route_table_id(table)
                    .destination_cidr_block(destination);
                let call = route_target!(call, &req.spec);
                c.call(Call::new(region, "ec2", "ReplaceRoute"), call.send())
                    .await?;
                // The old target is replaced, not merged, and one ReplaceRoute covers every
                // drifted target key (one removed, another added).
                for k in ROUTE_TARGETS {
                    match req.spec.get(*k) {
                        Some(v) => set(&mut out.spec, k, v.clone()),
                        None => {
                            if let Value::Object(m) = &mut out.spec {
                                m.remove(*k);
                            }
                        }
                    }
                }
                break;
            }
            (Kind::VpcPeering, "status") if str_at(&req.spec, "status") == "active" => {
                let status = accept_peering(c, current).await?;
                out.state = peering_state(&status).unwrap_or(ResourceState::Creating);
                set(&mut out.spec, "status", json!(status));
                continue;
            }
            (Kind::SecurityGroup, "ingress" | "egress") => {
                sg::update_rules(c, current, &req.spec, key).await?;
                true
            }
            (Kind::LaunchTemplate, _) => {
                lt::update(c, current, req, &mut out).await?;
                // One new version covers every drifted path.
                break;
            }
            _ => false,
        };
        if !handled {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} {} ({region}): `{path}` cannot change in place on AWS; the resource \
                     would have to be replaced",
                    current.kind, current.name
                ),
            ));
        }
        if let Some(v) = req.spec.get(key) {
            set(&mut out.spec, key, v.clone());
        }
    }
    if current.kind.taggable() {
        let changed: Tags = req
            .tags
            .iter()
            .filter(|(k, v)| current.tags.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !changed.is_empty() {
            create_tags(c, region, &current.id, &changed).await?;
            if let Some(name) = changed.get("Name")
                && current.kind.named_by_tag()
            {
                out.name = name.clone();
            }
            out.tags.extend(changed);
        }
    }
    out.depends_on = req.depends_on.clone();
    Ok(out)
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    let id = current.id.as_str();
    match current.kind {
        Kind::Vpc => {
            c.call(
                Call::new(region, "ec2", "DeleteVpc"),
                rc.ec2.delete_vpc().vpc_id(id).send(),
            )
            .await?;
        }
        Kind::Subnet => {
            c.call(
                Call::new(region, "ec2", "DeleteSubnet"),
                rc.ec2.delete_subnet().subnet_id(id).send(),
            )
            .await?;
        }
        Kind::InternetGateway => {
            let vpc = str_at(&current.spec, "vpc_id");
            if !vpc.is_empty() {
                let detached = c
                    .call(
                        Call::new(region, "ec2", "DetachInternetGateway"),
                        rc.ec2
                            .detach_internet_gateway()
                            .internet_gateway_id(id)
                            .vpc_id(vpc)
                            .send(),
                    )
                    .await;
                match detached {
                    // Detached already (Gateway.NotAttached): go on with the delete.
                    Err(e) if !e.message.contains("NotAttached") => return Err(e),
                    _ => {}
                }
            }
            c.call(
                Call::new(region, "ec2", "DeleteInternetGateway"),
                rc.ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(id)
                    .send(),
            )
            .await?;
        }
        Kind::ElasticIp => {
            c.call(
                Call::new(region, "ec2", "ReleaseAddress"),
                rc.ec2.release_address().allocation_id(id).send(),
            )
            .await?;
        }
        Kind::NatGateway => {
            c.call(
                Call::new(region, "ec2", "DeleteNatGateway"),
                rc.ec2.delete_nat_gateway().nat_gateway_id(id).send(),
            )
            .await?;
        }
        Kind::RouteTable => {
            // A table with subnets cannot be deleted: take the current associations (the
            // resource as found may be stale) off first.
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeRouteTables"),
                    rc.ec2.describe_route_tables().route_table_ids(id).send(),
                )
                .await?;
            for table in out.route_tables() {
                for a in table.associations() {
                    if a.main() == Some(true) {
                        continue;
                    }
                    if let Some(assoc) = a.route_table_association_id() {
                        c.call(
                            Call::new(region, "ec2", "DisassociateRouteTable"),
                            rc.ec2
                                .disassociate_route_table()
                                .association_id(assoc)
                                .send(),
                        )
                        .await?;
                    }
                }
            }
            c.call(
                Call::new(region, "ec2", "DeleteRouteTable"),
                rc.ec2.delete_route_table().route_table_id(id).send(),
            )
            .await?;
        }
        Kind::Route => {
            let (table, destination) = route_key(current);
            c.call(
                Call::new(region, "ec2", "DeleteRoute"),
                rc.ec2
                    .delete_route()
                    .route_table_id(table)
                    .destination_cidr_block(destination)
                    .send(),
            )
            .await?;
        }
        Kind::VpcPeering => {
            c.call(
                Call::new(region, "ec2", "DeleteVpcPeeringConnection"),
                rc.ec2
                    .delete_vpc_peering_connection()
                    .vpc_peering_connection_id(id)
                    .send(),
            )
            .await?;
        }
        Kind::SecurityGroup => {
            c.call(
                Call::new(region, "ec2", "DeleteSecurityGroup"),
                rc.ec2.delete_security_group().group_id(id).send(),
            )
            .await?;
        }
        Kind::LaunchTemplate => {
            c.call(
                Call::new(region, "ec2", "DeleteLaunchTemplate"),
                rc.ec2
                    .delete_launch_template()
                    .launch_template_id(id)
                    .send(),
            )
            .await?;
        }
        kind => return Err(not_ec2(kind)),
    }
    Ok(())
}

// ---- describe -------------------------------------------------------------------------------

/// The resources of a tag-named kind matching `filters`, as EC2 describes them.
async fn describe(
    c: &Clients,
    region: &str,
    kind: Kind,
    filters: Vec<Filter>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let mut found = Vec::new();
    match kind {
        Kind::Vpc => {
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeVpcs"),
                    rc.ec2.describe_vpcs().set_filters(Some(filters)).send(),
                )
                .await?;
            for v in out.vpcs() {
                let id = v.vpc_id().unwrap_or_default();
                let mut dns = [false; 2];
                for (i, attr) in [
                    VpcAttributeName::EnableDnsSupport,
                    VpcAttributeName::EnableDnsHostnames,
                ]
                .into_iter()
                .enumerate()
                {
                    let a = c
                        .call(
                            Call::new(region, "ec2", "DescribeVpcAttribute"),
                            rc.ec2
                                .describe_vpc_attribute()
                                .vpc_id(id)
                                .attribute(attr)
                                .send(),
                        )
                        .await?;
                    let value = if i == 0 {
                        a.enable_dns_support()
                    } else {
                        a.enable_dns_hostnames()
                    };
                    dns[i] = value.and_then(|b| b.value()).unwrap_or(false);
                }
                let tags = tags_of(v.tags());
                found.push(resource(
                    kind,
                    region,
                    &tags,
                    id,
                    arn(region, v.owner_id(), "vpc", id),
                    json!({
                        "cidr_block": v.cidr_block().unwrap_or_default(),
                        "enable_dns_support": dns[0],
                        "enable_dns_hostnames": dns[1],
                    }),
                    match v.state().map(|s| s.as_str()) {
                        Some("pending") => ResourceState::Creating,
                        _ => ResourceState::Available,
                    },
                    vec![],
                ));
            }
        }
        Kind::Subnet => {
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeSubnets"),
                    rc.ec2.describe_subnets().set_filters(Some(filters)).send(),
                )
                .await?;
            for s in out.subnets() {
                let id = s.subnet_id().unwrap_or_default();
                let tags = tags_of(s.tags());
                let vpc = s.vpc_id().unwrap_or_default();
                let mut spec = json!({
                    "vpc_id": vpc,
                    "cidr_block": s.cidr_block().unwrap_or_default(),
                    "availability_zone": s.availability_zone().unwrap_or_default(),
                    "map_public_ip_on_launch": s.map_public_ip_on_launch().unwrap_or(false),
                });
                if let Some(tier) = tags.get(TIER_TAG) {
                    set(&mut spec, "tier", json!(tier));
                }
                let arn = s
                    .subnet_arn()
                    .map(str::to_string)
                    .unwrap_or_else(|| arn(region, s.owner_id(), "subnet", id));
                found.push(resource(
                    kind,
                    region,
                    &tags,
                    id,
                    arn,
                    spec,
                    match s.state().map(|s| s.as_str()) {
                        Some("pending") => ResourceState::Creating,
                        Some("unavailable") => ResourceState::Failed,
                        _ => ResourceState::Available,
                    },
                    vec![vpc.to_string()],
                ));
            }
        }
        Kind::InternetGateway => {
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeInternetGateways"),
                    rc.ec2
                        .describe_internet_gateways()
                        .set_filters(Some(filters))
                        .send(),
                )
                .await?;
            for g in out.internet_gateways() {
                let id = g.internet_gateway_id().unwrap_or_default();
                let tags = tags_of(g.tags());
                let attachment = g.attachments().first();
                let vpc = attachment.and_then(|a| a.vpc_id()).unwrap_or_default();
                let state = match attachment.and_then(|a| a.state()).map(|s| s.as_str()) {
                    Some("attaching") => ResourceState::Creating,
                    Some("detaching") => ResourceState::Modifying,
                    _ => ResourceState::Available,
                };
                let spec = if vpc.is_empty() {
                    json!({})
                } else {
                    json!({"vpc_id": vpc})
                };
                found.push(resource(
                    kind,
                    region,
                    &tags,
                    id,
                    arn(region, g.owner_id(), "internet-gateway", id),
                    spec,
                    state,
                    deps([vpc]),
                ));
            }
        }
        Kind::ElasticIp => {
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeAddresses"),
                    rc.ec2
                        .describe_addresses()
                        .set_filters(Some(filters))
                        .send(),
                )
                .await?;
            for a in out.addresses() {
                let id = a.allocation_id().unwrap_or_default();
                let tags = tags_of(a.tags());
                let mut r = resource(
                    kind,
                    region,
                    &tags,
                    id,
                    arn(region, None, "elastic-ip", id),
                    json!({"domain": a.domain().map(|d| d.as_str()).unwrap_or("vpc")}),
                    ResourceState::Available,
                    vec![],
                );
                if let Some(ip) = a.public_ip() {
                    r.attrs.insert("public_ip".into(), json!(ip));
                }
                found.push(r);
            }
        }
        Kind::NatGateway => {
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeNatGateways"),
                    rc.ec2
                        .describe_nat_gateways()
                        .set_filter(Some(filters))
                        .send(),
                )
                .await?;
            for n in out.nat_gateways() {
                let state = match n.state().map(|s| s.as_str()) {
                    Some("pending") => ResourceState::Creating,
                    Some("deleting") => ResourceState::Deleting,
                    Some("failed") => ResourceState::Failed,
                    // EC2 shows a deleted NAT gateway for an hour: it is gone.
                    Some("deleted") => continue,
                    _ => ResourceState::Available,
                };
                let id = n.nat_gateway_id().unwrap_or_default();
                let tags = tags_of(n.tags());
                let address = n.nat_gateway_addresses().first();
                let allocation = address.and_then(|a| a.allocation_id()).unwrap_or_default();
                let subnet = n.subnet_id().unwrap_or_default();
                let mut r = resource(
                    kind,
                    region,
                    &tags,
                    id,
                    arn(region, None, "natgateway", id),
                    json!({
                        "subnet_id": subnet,
                        "allocation_id": allocation,
                        "connectivity_type": n
                            .connectivity_type()
                            .map(|t| t.as_str())
                            .unwrap_or("public"),
                    }),
                    state,
                    deps([subnet, allocation]),
                );
                if let Some(ip) = address.and_then(|a| a.public_ip()) {
                    r.attrs.insert("public_ip".into(), json!(ip));
                }
                found.push(r);
            }
        }
        Kind::RouteTable => {
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeRouteTables"),
                    rc.ec2
                        .describe_route_tables()
                        .set_filters(Some(filters))
                        .send(),
                )
                .await?;
            for t in out.route_tables() {
                let id = t.route_table_id().unwrap_or_default();
                let tags = tags_of(t.tags());
                let vpc = t.vpc_id().unwrap_or_default();
                let subnets: Vec<&str> = t
                    .associations()
                    .iter()
                    .filter_map(|a| a.subnet_id())
                    .collect();
                let mut depends_on = deps([vpc]);
                depends_on.extend(subnets.iter().map(|s| s.to_string()));
                found.push(resource(
                    kind,
                    region,
                    &tags,
                    id,
                    arn(region, t.owner_id(), "route-table", id),
                    json!({"vpc_id": vpc, "subnet_ids": subnets}),
                    ResourceState::Available,
                    depends_on,
                ));
            }
        }
        Kind::VpcPeering => {
            let out = c
                .call(
                    Call::new(region, "ec2", "DescribeVpcPeeringConnections"),
                    rc.ec2
                        .describe_vpc_peering_connections()
                        .set_filters(Some(filters))
                        .send(),
                )
                .await?;
            for p in out.vpc_peering_connections() {
                let status = p
                    .status()
                    .and_then(|s| s.code())
                    .map(|c| c.as_str())
                    .unwrap_or_default();
                let Some(state) = peering_state(status) else {
                    continue;
                };
                // Described in the accepter's region, the connection is the requester's.
                let requester = p.requester_vpc_info();
                if requester
                    .and_then(|r| r.region())
                    .is_some_and(|r| r != region)
                {
                    continue;
                }
                let id = p.vpc_peering_connection_id().unwrap_or_default();
                let tags = tags_of(p.tags());
                let accepter = p.accepter_vpc_info();
                let vpc = requester.and_then(|r| r.vpc_id()).unwrap_or_default();
                let peer_vpc = accepter.and_then(|a| a.vpc_id()).unwrap_or_default();
                found.push(resource(
                    kind,
                    region,
                    &tags,
                    id,
                    arn(
                        region,
                        requester.and_then(|r| r.owner_id()),
                        "vpc-peering-connection",
                        id,
                    ),
                    json!({
                        "vpc_id": vpc,
                        "peer_vpc_id": peer_vpc,
                        "peer_region": accepter.and_then(|a| a.region()).unwrap_or(region),
                        "status": status,
                    }),
                    state,
                    deps([vpc, peer_vpc]),
                ));
            }
        }
        kind => return Err(not_ec2(kind)),
    }
    Ok(found)
}

/// The seam's state for a peering connection's status code; `None` once it is gone.
fn peering_state(status: &str) -> Option<ResourceState> {
    Some(match status {
        "initiating-request" | "pending-acceptance" | "provisioning" => ResourceState::Creating,
        "active" => ResourceState::Available,
        "deleting" => ResourceState::Deleting,
        "deleted" => return None,
        // rejected, expired, failed: it will never become active.
        _ => ResourceState::Failed,
    })
}

// ---- routes ---------------------------------------------------------------------------------

/// The keys of a route's target, as the steps write them.
const ROUTE_TARGETS: &[&str] = &["gateway_id", "nat_gateway_id", "vpc_peering_connection_id"];

/// A route's table and destination, from the resource as found.
fn route_key(r: &Resource) -> (String, String) {
    let table = r
        .parent
        .clone()
        .unwrap_or_else(|| str_at(&r.spec, "route_table_id").to_string());
    let destination = match str_at(&r.spec, "destination_cidr_block") {
        "" => r.name.clone(),
        d => d.to_string(),
    };
    (table, destination)
}

fn route_id(table: &str, destination: &str) -> String {
    format!("{table}_{destination}")
}

/// The routes of one table, but its `local` route (EC2 makes and keeps that one itself).
async fn routes(c: &Clients, region: &str, table: &str) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "DescribeRouteTables"),
            rc.ec2.describe_route_tables().route_table_ids(table).send(),
        )
        .await?;
    let mut found = Vec::new();
    for t in out.route_tables() {
        for r in t.routes() {
            let Some(destination) = r.destination_cidr_block() else {
                continue;
            };
            if r.gateway_id() == Some("local") {
                continue;
            }
            let mut spec = json!({"route_table_id": table, "destination_cidr_block": destination});
            let mut depends_on = vec![table.to_string()];
            for (key, value) in [
                ("gateway_id", r.gateway_id()),
                ("nat_gateway_id", r.nat_gateway_id()),
                ("vpc_peering_connection_id", r.vpc_peering_connection_id()),
            ] {
                if let Some(v) = value {
                    set(&mut spec, key, json!(v));
                    depends_on.push(v.to_string());
                }
            }
            found.push(Resource {
                kind: Kind::Route,
                region: region.to_string(),
                name: destination.to_string(),
                parent: Some(table.to_string()),
                id: route_id(table, destination),
                arn: String::new(),
                spec,
                attrs: Map::new(),
                tags: Tags::new(),
                state: match r.state().map(|s| s.as_str()) {
                    // Its target is gone (a deleted NAT gateway): traffic is dropped.
                    Some("blackhole") => ResourceState::Failed,
                    _ => ResourceState::Available,
                },
                depends_on,
            });
        }
    }
    Ok(found)
}

async fn find_route(
    c: &Clients,
    region: &str,
    table: &str,
    destination: &str,
) -> Result<Option<Resource>, CloudError> {
    match routes(c, region, table).await {
        Ok(all) => Ok(all.into_iter().find(|r| r.name == destination)),
        // Its table is gone, and with it the route.
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

// ---- create ---------------------------------------------------------------------------------

async fn create_vpc(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "CreateVpc"),
            rc.ec2
                .create_vpc()
                .cidr_block(str_at(&req.spec, "cidr_block"))
                .tag_specifications(tag_spec(ResourceType::Vpc, &req.tags))
                .send(),
        )
        .await?;
    let vpc = out.vpc();
    let id = vpc.and_then(|v| v.vpc_id()).unwrap_or_default().to_string();
    // A new VPC resolves DNS but gives no hostnames: change only what differs from that.
    for (key, default) in [
        ("enable_dns_support", true),
        ("enable_dns_hostnames", false),
    ] {
        let Some(want) = req.spec.get(key).and_then(Value::as_bool) else {
            continue;
        };
        if want == default {
            continue;
        }
        let call = rc.ec2.modify_vpc_attribute().vpc_id(&id);
        let call = if key == "enable_dns_support" {
            call.enable_dns_support(boolean(want))
        } else {
            call.enable_dns_hostnames(boolean(want))
        };
        c.call(Call::new(region, "ec2", "ModifyVpcAttribute"), call.send())
            .await?;
    }
    let state = match vpc.and_then(|v| v.state()).map(|s| s.as_str()) {
        Some("pending") => ResourceState::Creating,
        _ => ResourceState::Available,
    };
    let arn = arn(region, vpc.and_then(|v| v.owner_id()), "vpc", &id);
    Ok(created(req, id, arn, state))
}

async fn create_subnet(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let mut tags = req.tags.clone();
    if let Some(tier) = req.spec.get("tier").and_then(Value::as_str) {
        tags.insert(TIER_TAG.into(), tier.into());
    }
    let mut call = rc
        .ec2
        .create_subnet()
        .vpc_id(str_at(&req.spec, "vpc_id"))
        .cidr_block(str_at(&req.spec, "cidr_block"))
        .tag_specifications(tag_spec(ResourceType::Subnet, &tags));
    if let Some(az) = req.spec.get("availability_zone").and_then(Value::as_str) {
        call = call.availability_zone(az);
    }
    let out = c
        .call(Call::new(region, "ec2", "CreateSubnet"), call.send())
        .await?;
    let s = out.subnet();
    let id = s
        .and_then(|s| s.subnet_id())
        .unwrap_or_default()
        .to_string();
    if bool_at(&req.spec, "map_public_ip_on_launch") {
        c.call(
            Call::new(region, "ec2", "ModifySubnetAttribute"),
            rc.ec2
                .modify_subnet_attribute()
                .subnet_id(&id)
                .map_public_ip_on_launch(boolean(true))
                .send(),
        )
        .await?;
    }
    let arn = s
        .and_then(|s| s.subnet_arn())
        .map(str::to_string)
        .unwrap_or_else(|| arn(region, s.and_then(|s| s.owner_id()), "subnet", &id));
    let state = match s.and_then(|s| s.state()).map(|s| s.as_str()) {
        Some("pending") => ResourceState::Creating,
        _ => ResourceState::Available,
    };
    let mut r = created(req, id, arn, state);
    r.tags = tags;
    Ok(r)
}

async fn create_igw(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "CreateInternetGateway"),
            rc.ec2
                .create_internet_gateway()
                .tag_specifications(tag_spec(ResourceType::InternetGateway, &req.tags))
                .send(),
        )
        .await?;
    let g = out.internet_gateway();
    let id = g
        .and_then(|g| g.internet_gateway_id())
        .unwrap_or_default()
        .to_string();
    let vpc = str_at(&req.spec, "vpc_id");
    if !vpc.is_empty() {
        c.call(
            Call::new(region, "ec2", "AttachInternetGateway"),
            rc.ec2
                .attach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(vpc)
                .send(),
        )
        .await?;
    }
    let arn = arn(
        region,
        g.and_then(|g| g.owner_id()),
        "internet-gateway",
        &id,
    );
    Ok(created(req, id, arn, ResourceState::Available))
}

async fn create_eip(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let domain = match req.spec.get("domain").and_then(Value::as_str) {
        Some(d) => DomainType::from(d),
        None => DomainType::Vpc,
    };
    let out = c
        .call(
            Call::new(region, "ec2", "AllocateAddress"),
            rc.ec2
                .allocate_address()
                .domain(domain)
                .tag_specifications(tag_spec(ResourceType::ElasticIp, &req.tags))
                .send(),
        )
        .await?;
    let id = out.allocation_id().unwrap_or_default().to_string();
    let arn = arn(region, None, "elastic-ip", &id);
    let mut r = created(req, id, arn, ResourceState::Available);
    if let Some(ip) = out.public_ip() {
        r.attrs.insert("public_ip".into(), json!(ip));
    }
    Ok(r)
}

async fn create_nat(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let mut call = rc
        .ec2
        .create_nat_gateway()
        .subnet_id(str_at(&req.spec, "subnet_id"))
        .tag_specifications(tag_spec(ResourceType::Natgateway, &req.tags));
    if let Some(a) = req.spec.get("allocation_id").and_then(Value::as_str) {
        call = call.allocation_id(a);
    }
    if let Some(t) = req.spec.get("connectivity_type").and_then(Value::as_str) {
        call = call.connectivity_type(ConnectivityType::from(t));
    }
    let out = c
        .call(Call::new(region, "ec2", "CreateNatGateway"), call.send())
        .await?;
    let n = out.nat_gateway();
    let id = n
        .and_then(|n| n.nat_gateway_id())
        .unwrap_or_default()
        .to_string();
    let state = match n.and_then(|n| n.state()).map(|s| s.as_str()) {
        Some("available") => ResourceState::Available,
        Some("failed") => ResourceState::Failed,
        _ => ResourceState::Creating,
    };
    let arn = arn(region, None, "natgateway", &id);
    Ok(created(req, id, arn, state))
}

async fn create_route_table(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "CreateRouteTable"),
            rc.ec2
                .create_route_table()
                .vpc_id(str_at(&req.spec, "vpc_id"))
                .tag_specifications(tag_spec(ResourceType::RouteTable, &req.tags))
                .send(),
        )
        .await?;
    let t = out.route_table();
    let id = t
        .and_then(|t| t.route_table_id())
        .unwrap_or_default()
        .to_string();
    for subnet in strings_at(&req.spec, "subnet_ids") {
        c.call(
            Call::new(region, "ec2", "AssociateRouteTable"),
            rc.ec2
                .associate_route_table()
                .route_table_id(&id)
                .subnet_id(subnet)
                .send(),
        )
        .await?;
    }
    let arn = arn(region, t.and_then(|t| t.owner_id()), "route-table", &id);
    Ok(created(req, id, arn, ResourceState::Available))
}

/// Associates the subnets the spec adds and disassociates those it drops, as EC2 has them now.
async fn update_associations(
    c: &Clients,
    current: &Resource,
    spec: &Value,
) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    let want = strings_at(spec, "subnet_ids");
    let out = c
        .call(
            Call::new(region, "ec2", "DescribeRouteTables"),
            rc.ec2
                .describe_route_tables()
                .route_table_ids(&current.id)
                .send(),
        )
        .await?;
    let mut have = Vec::new();
    for t in out.route_tables() {
        for a in t.associations() {
            if let (Some(subnet), Some(assoc)) = (a.subnet_id(), a.route_table_association_id()) {
                have.push((subnet.to_string(), assoc.to_string()));
            }
        }
    }
    for (subnet, assoc) in &have {
        if !want.contains(&subnet.as_str()) {
            c.call(
                Call::new(region, "ec2", "DisassociateRouteTable"),
                rc.ec2
                    .disassociate_route_table()
                    .association_id(assoc)
                    .send(),
            )
            .await?;
        }
    }
    for subnet in want {
        if !have.iter().any(|(s, _)| s == subnet) {
            c.call(
                Call::new(region, "ec2", "AssociateRouteTable"),
                rc.ec2
                    .associate_route_table()
                    .route_table_id(&current.id)
                    .subnet_id(subnet)
                    .send(),
            )
            .await?;
        }
    }
    Ok(())
}

async fn create_route(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let table = req
        .parent
        .clone()
        .unwrap_or_else(|| str_at(&req.spec, "route_table_id").to_string());
    let destination = match str_at(&req.spec, "destination_cidr_block") {
        "" => req.name.clone(),
        d => d.to_string(),
    };
    let call = rc
        .ec2
        .create_route()
        .route_table_id(&table)
        .destination_cidr_block(&destination);
    let call = route_target!(call, &req.spec);
    c.call(Call::new(region, "ec2", "CreateRoute"), call.send())
        .await?;
    Ok(Resource {
        kind: Kind::Route,
        region: region.to_string(),
        name: destination.clone(),
        parent: Some(table.clone()),
        id: route_id(&table, &destination),
        arn: String::new(),
        spec: req.spec.clone(),
        attrs: Map::new(),
        tags: Tags::new(),
        state: ResourceState::Available,
        depends_on: req.depends_on.clone(),
    })
}

async fn create_peering(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let mut call = rc
        .ec2
        .create_vpc_peering_connection()
        .vpc_id(str_at(&req.spec, "vpc_id"))
        .peer_vpc_id(str_at(&req.spec, "peer_vpc_id"))
        .tag_specifications(tag_spec(ResourceType::VpcPeeringConnection, &req.tags));
    if let Some(peer) = req.spec.get("peer_region").and_then(Value::as_str) {
        call = call.peer_region(peer);
    }
    let out = c
        .call(
            Call::new(region, "ec2", "CreateVpcPeeringConnection"),
            call.send(),
        )
        .await?;
    let p = out.vpc_peering_connection();
    let id = p
        .and_then(|p| p.vpc_peering_connection_id())
        .unwrap_or_default()
        .to_string();
    let owner = p
        .and_then(|p| p.requester_vpc_info())
        .and_then(|r| r.owner_id());
    let arn = arn(region, owner, "vpc-peering-connection", &id);
    let mut r = created(req, id, arn, ResourceState::Creating);
    let status = if str_at(&req.spec, "status") == "active" {
        accept_peering(c, &r).await?
    } else {
        "pending-acceptance".to_string()
    };
    r.state = peering_state(&status).unwrap_or(ResourceState::Creating);
    set(&mut r.spec, "status", json!(status));
    Ok(r)
}

/// Accepts a peering connection in its peer's region; its new status code.
async fn accept_peering(c: &Clients, current: &Resource) -> Result<String, CloudError> {
    let peer_region = match str_at(&current.spec, "peer_region") {
        "" => current.region.as_str(),
        r => r,
    };
    let rc = c.region(peer_region).await;
    let out = c
        .call(
            Call::new(peer_region, "ec2", "AcceptVpcPeeringConnection"),
            rc.ec2
                .accept_vpc_peering_connection()
                .vpc_peering_connection_id(&current.id)
                .send(),
        )
        .await?;
    Ok(out
        .vpc_peering_connection()
        .and_then(|p| p.status())
        .and_then(|s| s.code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "active".to_string()))
}

// ---- helpers --------------------------------------------------------------------------------

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn boolean(value: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(value).build()
}

/// Tags to create a resource with: none for an empty set (EC2 refuses an empty tag list).
fn tag_spec(kind: ResourceType, tags: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tag_list(tags)))
        .build()
}

fn tag_list(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

async fn create_tags(c: &Clients, region: &str, id: &str, tags: &Tags) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    c.call(
        Call::new(region, "ec2", "CreateTags"),
        rc.ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(tag_list(tags)))
            .send(),
    )
    .await?;
    Ok(())
}

/// An EC2 ARN. EC2 does not return the owner of every kind; the account is left empty then.
fn arn(region: &str, owner: Option<&str>, ty: &str, id: &str) -> String {
    format!("arn:aws:ec2:{region}:{}:{ty}/{id}", owner.unwrap_or(""))
}

fn str_at<'a>(spec: &'a Value, key: &str) -> &'a str {
    spec.get(key).and_then(Value::as_str).unwrap_or("")
}

fn bool_at(spec: &Value, key: &str) -> bool {
    spec.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strings_at<'a>(spec: &'a Value, key: &str) -> Vec<&'a str> {
    spec.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn set(spec: &mut Value, key: &str, value: Value) {
    if let Value::Object(m) = spec {
        m.insert(key.to_string(), value);
    }
}

fn deps<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    ids.into_iter()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A resource as described: named by its `Name` tag.
#[allow(clippy::too_many_arguments)]
fn resource(
    kind: Kind,
    region: &str,
    tags: &Tags,
    id: &str,
    arn: String,
    spec: Value,
    state: ResourceState,
    depends_on: Vec<String>,
) -> Resource {
    Resource {
        kind,
        region: region.to_string(),
        name: tags.get("Name").cloned().unwrap_or_default(),
        parent: None,
        id: id.to_string(),
        arn,
        spec,
        attrs: Map::new(),
        tags: tags.clone(),
        state,
        depends_on,
    }
}

/// A resource as just created, from its request.
fn created(req: &CreateRequest, id: String, arn: String, state: ResourceState) -> Resource {
    Resource {
        kind: req.kind,
        region: req.region.clone(),
        name: req.name.clone(),
        parent: req.parent.clone(),
        id,
        arn,
        spec: req.spec.clone(),
        attrs: Map::new(),
        tags: req.tags.clone(),
        state,
        depends_on: req.depends_on.clone(),
    }
}

fn no_parent(kind: Kind) -> CloudError {
    CloudError::new(
        ErrorKind::InvalidInput,
        format!("a {kind} is found inside its route table: the parent route table id is missing"),
    )
}

fn not_ec2(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::Internal, format!("{kind} is not an ec2 kind"))
}
