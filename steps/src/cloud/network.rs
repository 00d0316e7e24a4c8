//! `network.vpc` (a region's VPC with subnets, gateways and routes) and `network.peering`.

use std::sync::Arc;
use std::time::Duration;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::{Value, json};

use super::checks::{CloudSpec, ROLES, VPC_CIDR};
use super::framework::{BodyFuture, CloudStep, Cx, Desired, Names, cloud_spec};
use super::input;
use crate::backend::Kind;
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let vpc = cloud_spec(
        "network.vpc",
        "A region's network: VPC, public and private subnets across availability zones, an \
         internet gateway, NAT gateways and route tables (public via the IGW, private via NAT).",
    )
    .required("region", ValueType::String, "AWS region, e.g. eu-south-1.")
    .format(AWS_REGION)
    .required(
        "role",
        ValueType::String,
        "primary or standby (FailoverRole tag).",
    )
    .one_of(ROLES)
    .optional(
        "cidr",
        ValueType::String,
        json!("10.0.0.0/16"),
        "VPC CIDR block (/16 to /19); must not overlap the peer region's.",
    )
    .format(VPC_CIDR)
    .optional(
        "public_subnets",
        ValueType::Int,
        json!(2),
        "Public subnets, one per availability zone.",
    )
    .at_least(1.0)
    .optional(
        "private_subnets",
        ValueType::Int,
        json!(2),
        "Private subnets, one per availability zone.",
    )
    .at_least(1.0)
    .optional(
        "nat_gateways",
        ValueType::Int,
        json!(1),
        "NAT gateways (1 = cheapest; one per AZ = AZ-independent egress).",
    )
    .at_least(1.0)
    .rule(
        "`public_subnets` and `private_subnets` are at most the region's availability zones \
         (one subnet per zone).",
        &["region", "public_subnets", "private_subnets"],
        subnets_fit_zones,
    )
    .rule(
        "`nat_gateways` is at most `public_subnets` (each NAT gateway sits in a public subnet).",
        &["nat_gateways", "public_subnets"],
        |input| {
            let (nat, public) = (count(input, "nat_gateways"), count(input, "public_subnets"));
            if nat <= public {
                return Ok(());
            }
            Err(drflow_engine::RuleViolation::at(
                "nat_gateways",
                format!(
                    "{nat} NAT gateways need a public subnet each, but there {}",
                    if public == 1 {
                        "is 1".to_string()
                    } else {
                        format!("are {public}")
                    }
                ),
            )
            .hint(format!(
                "use at most {public} NAT gateways, or more public subnets"
            )))
        },
    )
    .output("vpc_id", ValueType::String, "The VPC id.")
    .output("cidr", ValueType::String, "The VPC CIDR block.")
    .echoes("cidr")
    .output(
        "availability_zones",
        ValueType::List,
        "The AZs the subnets span.",
    )
    .output(
        "public_subnet_ids",
        ValueType::List,
        "Public subnet ids, in AZ order.",
    )
    .output(
        "private_subnet_ids",
        ValueType::List,
        "Private subnet ids, in AZ order.",
    )
    .output(
        "private_route_table_ids",
        ValueType::List,
        "Route tables of the private subnets.",
    )
    .output(
        "public_route_table_id",
        ValueType::String,
        "Route table of the public subnets.",
    )
    .output(
        "internet_gateway_id",
        ValueType::String,
        "The internet gateway id.",
    )
    .output("nat_gateway_ids", ValueType::List, "NAT gateway ids.");
    reg.register(CloudStep::boxed(vpc, VPC_NAMES, backend, run_vpc));

    let peering = cloud_spec(
        "network.peering",
        "Cross-region VPC peering (requested and accepted) with routes to the peer CIDR in every \
         given route table on both sides.",
    )
    .required(
        "requester_region",
        ValueType::String,
        "Region of the requesting VPC (primary).",
    )
    .format(AWS_REGION)
    .required("requester_vpc_id", ValueType::String, "The requesting VPC.")
    .required("requester_cidr", ValueType::String, "Its CIDR.")
    .format(drflow_engine::formats::IPV4_CIDR)
    .required(
        "requester_route_table_ids",
        ValueType::List,
        "Its route tables that get a route to the peer.",
    )
    .required(
        "accepter_region",
        ValueType::String,
        "Region of the accepting VPC (standby).",
    )
    .format(AWS_REGION)
    .required("accepter_vpc_id", ValueType::String, "The accepting VPC.")
    .required("accepter_cidr", ValueType::String, "Its CIDR.")
    .format(drflow_engine::formats::IPV4_CIDR)
    .required(
        "accepter_route_table_ids",
        ValueType::List,
        "Its route tables that get a route back.",
    )
    .output("peering_connection_id", ValueType::String, "The pcx- id.")
    .distinct_regions("requester_region", "accepter_region")
    .rule(
        "`requester_cidr` and `accepter_cidr` do not overlap (peered VPCs route to each other).",
        &["requester_cidr", "accepter_cidr"],
        |input| {
            let get = |k: &str| {
                input
                    .get(k)
                    .and_then(serde_json::Value::as_str)
                    .and_then(drflow_engine::formats::Ipv4Cidr::parse)
            };
            let (Some(a), Some(b)) = (get("requester_cidr"), get("accepter_cidr")) else {
                return Ok(());
            };
            if !a.overlaps(b) {
                return Ok(());
            }
            Err(drflow_engine::RuleViolation::at(
                "accepter_cidr",
                format!(
                    "the standby VPC block `{b}` overlaps the primary's `{a}`: peered VPCs \
                     route to each other, so their blocks must be distinct"
                ),
            )
            .hint(match next_block(a, b.prefix) {
                Some(c) => format!("give the standby a block of its own, e.g. `{c}`"),
                None => "give the standby a block of its own".to_string(),
            }))
        },
    );
    reg.register(CloudStep::boxed(
        peering,
        PEERING_NAMES,
        backend,
        run_peering,
    ));
}

/// The first block of prefix length `prefix` after `primary`: the suggestion for an
/// overlapping standby keeps the standby's own size, which the VPC step has already accepted
/// (the primary's size may be one a VPC cannot have, such as a /8).
fn next_block(
    primary: drflow_engine::formats::Ipv4Cidr,
    prefix: u8,
) -> Option<drflow_engine::formats::Ipv4Cidr> {
    let end = u64::from(primary.network().address) + (1u64 << (32 - u32::from(primary.prefix)));
    let size = 1u64 << (32 - u32::from(prefix));
    let start = end.div_ceil(size) * size;
    let address = u32::try_from(start).ok()?;
    u32::try_from(start + size - 1).ok()?;
    Some(drflow_engine::formats::Ipv4Cidr { address, prefix })
}

/// The names `network.vpc` builds (routes are named after their table and destination).
const VPC_NAMES: Names = &[
    (Kind::Vpc, "vpc"),
    (Kind::InternetGateway, "igw"),
    (Kind::Subnet, "public-subnet-{n}"),
    (Kind::Subnet, "private-subnet-{n}"),
    (Kind::RouteTable, "public-rt"),
    (Kind::RouteTable, "private-rt-{n}"),
    (Kind::ElasticIp, "nat-eip-{n}"),
    (Kind::NatGateway, "nat-gateway-{n}"),
];

/// The names `network.peering` builds.
const PEERING_NAMES: Names = &[(Kind::VpcPeering, "vpc-peering")];

fn count(input: &Outputs, key: &str) -> i64 {
    input.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// One subnet per zone: the region's zones bound both counts.
fn subnets_fit_zones(input: &Outputs) -> Result<(), drflow_engine::RuleViolation> {
    let region = input
        .get("region")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(zones) = crate::regions::availability_zones(region) else {
        // Not a region: its format check says so.
        return Ok(());
    };
    for key in ["public_subnets", "private_subnets"] {
        let n = count(input, key);
        if n > zones.len() as i64 {
            return Err(drflow_engine::RuleViolation::at(
                if key == "public_subnets" {
                    "public_subnets"
                } else {
                    "private_subnets"
                },
                format!(
                    "{n} {} subnets need an availability zone each, but {region} has {} ({})",
                    key.trim_end_matches("_subnets"),
                    zones.len(),
                    zones.join(", ")
                ),
            )
            .hint(format!(
                "use at most {} subnets per tier in {region}",
                zones.len()
            )));
        }
    }
    Ok(())
}

/// A parsed IPv4 CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    base: u32,
    prefix: u32,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, StepError> {
        let bad = || {
            StepError::invalid_input(format!(
                "{s:?} is not an IPv4 CIDR block such as 10.0.0.0/16"
            ))
        };
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let prefix: u32 = prefix.parse().map_err(|_| bad())?;
        let octets: Vec<u32> = ip
            .split('.')
            .map(|o| o.parse::<u8>().map(u32::from))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        if octets.len() != 4 || prefix > 32 {
            return Err(bad());
        }
        let base = octets.iter().fold(0u32, |acc, o| (acc << 8) | o);
        Ok(Cidr { base, prefix })
    }

    /// The `index`-th /24 inside this block.
    pub fn subnet24(self, index: u32) -> Result<String, StepError> {
        if self.prefix > 24 || index >= 1 << (24 - self.prefix) {
            return Err(StepError::invalid_input(format!(
                "VPC CIDR /{} is too small for subnet {index}; use a /16 to /19",
                self.prefix
            )));
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        let ip = (self.base & mask) + (index << 8);
        Ok(format!(
            "{}.{}.{}.{}/24",
            ip >> 24,
            (ip >> 16) & 255,
            (ip >> 8) & 255,
            ip & 255
        ))
    }
}

/// Private subnets start at this /24 index, so public and private ranges read apart.
const PRIVATE_OFFSET: u32 = 10;

fn run_vpc<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let role = input::role(p)?;
        let cidr_text = input::str(p, "cidr")?;
        let cidr = Cidr::parse(cidr_text)?;
        let n_public = input::int(p, "public_subnets")?;
        let n_private = input::int(p, "private_subnets")?;
        let n_nat = input::int(p, "nat_gateways")?;
        let azs = cx.backend.availability_zones(region).await?;
        if !(1..=azs.len() as i64).contains(&n_public)
            || !(1..=azs.len() as i64).contains(&n_private)
        {
            return Err(StepError::invalid_input(format!(
                "{region} has {} availability zones; public_subnets and private_subnets must be 1..={}",
                azs.len(),
                azs.len()
            )));
        }
        if !(1..=n_public).contains(&n_nat) {
            return Err(StepError::invalid_input(format!(
                "nat_gateways must be 1..={n_public} (each NAT gateway sits in a public subnet)"
            )));
        }
        let tags = |cx: &Cx, name: &str| cx.tags(name, role);

        let name = cx.name("vpc");
        let vpc = cx
            .ensure(
                Desired::new(
                    Kind::Vpc,
                    region,
                    &name,
                    json!({
                        "cidr_block": cidr_text,
                        "enable_dns_support": true,
                        "enable_dns_hostnames": true,
                    }),
                )
                .immutable(&["cidr_block"])
                .tags(tags(cx, &name)),
            )
            .await?;

        let name = cx.name("igw");
        let igw = cx
            .ensure(
                Desired::new(
                    Kind::InternetGateway,
                    region,
                    &name,
                    json!({"vpc_id": vpc.id}),
                )
                .deps([vpc.id.clone()])
                .tags(tags(cx, &name)),
            )
            .await?;

        let subnets = |public: bool, count: i64| {
            (0..count as usize)
                .map(|i| {
                    let ty = if public {
                        "public-subnet"
                    } else {
                        "private-subnet"
                    };
                    let index = i as u32 + if public { 0 } else { PRIVATE_OFFSET };
                    Ok((
                        format!("{ty}-{}", i + 1),
                        azs[i].clone(),
                        cidr.subnet24(index)?,
                        public,
                    ))
                })
                .collect::<Result<Vec<_>, StepError>>()
        };
        let plan: Vec<_> = subnets(true, n_public)?
            .into_iter()
            .chain(subnets(false, n_private)?)
            .collect();
        let mut public_ids = Vec::new();
        let mut private_ids = Vec::new();
        for (ty, az, block, public) in plan {
            let name = cx.name(&ty);
            let s = cx
                .ensure(
                    Desired::new(
                        Kind::Subnet,
                        region,
                        &name,
                        json!({
                            "vpc_id": vpc.id,
                            "cidr_block": block,
                            "availability_zone": az,
                            "map_public_ip_on_launch": public,
                            "tier": if public { "public" } else { "private" },
                        }),
                    )
                    .immutable(&["vpc_id", "cidr_block", "availability_zone"])
                    .deps([vpc.id.clone()])
                    .tags(tags(cx, &name)),
                )
                .await?;
            if public {
                public_ids.push(s.id)
            } else {
                private_ids.push(s.id)
            }
        }

        let name = cx.name("public-rt");
        let public_rt = cx
            .ensure(
                Desired::new(
                    Kind::RouteTable,
                    region,
                    &name,
                    json!({
                        "vpc_id": vpc.id,
                        "subnet_ids": public_ids,
                    }),
                )
                .immutable(&["vpc_id"])
                .deps([vpc.id.clone()])
                .deps(public_ids.clone())
                .tags(tags(cx, &name)),
            )
            .await?;
        route(
            cx,
            region,
            &public_rt.id,
            "0.0.0.0/0",
            json!({"gateway_id": igw.id}),
            &igw.id,
            role,
        )
        .await?;

        let mut nat_ids = Vec::new();
        for (i, public_subnet) in public_ids.iter().take(n_nat as usize).enumerate() {
            let eip_name = cx.name(&format!("nat-eip-{}", i + 1));
            let eip = cx
                .ensure(
                    Desired::new(Kind::ElasticIp, region, &eip_name, json!({"domain": "vpc"}))
                        .tags(tags(cx, &eip_name)),
                )
                .await?;
            let name = cx.name(&format!("nat-gateway-{}", i + 1));
            let nat = cx
                .ensure(
                    Desired::new(
                        Kind::NatGateway,
                        region,
                        &name,
                        json!({
                            "subnet_id": public_subnet,
                            "allocation_id": eip.id,
                            "connectivity_type": "public",
                        }),
                    )
                    .immutable(&["subnet_id", "allocation_id"])
                    .deps([public_subnet.clone(), eip.id.clone()])
                    .tags(tags(cx, &name)),
                )
                .await?;
            cx.wait(&nat, Duration::from_secs(600)).await?;
            nat_ids.push(nat.id);
        }

        let mut private_rts = Vec::new();
        for (i, subnet) in private_ids.iter().enumerate() {
            let name = cx.name(&format!("private-rt-{}", i + 1));
            let rt = cx
                .ensure(
                    Desired::new(
                        Kind::RouteTable,
                        region,
                        &name,
                        json!({
                            "vpc_id": vpc.id,
                            "subnet_ids": [subnet],
                        }),
                    )
                    .immutable(&["vpc_id"])
                    .deps([vpc.id.clone(), subnet.clone()])
                    .tags(tags(cx, &name)),
                )
                .await?;
            // Spread private subnets over the NAT gateways; with one per AZ each uses its own.
            let nat = &nat_ids[i % nat_ids.len()];
            route(
                cx,
                region,
                &rt.id,
                "0.0.0.0/0",
                json!({"nat_gateway_id": nat}),
                nat,
                role,
            )
            .await?;
            private_rts.push(rt.id);
        }

        let mut out = Outputs::new();
        out.insert("vpc_id".into(), json!(vpc.id));
        out.insert("cidr".into(), json!(cidr_text));
        let used = n_public.max(n_private) as usize;
        out.insert("availability_zones".into(), json!(azs[..used]));
        out.insert("public_subnet_ids".into(), json!(public_ids));
        out.insert("private_subnet_ids".into(), json!(private_ids));
        out.insert("private_route_table_ids".into(), json!(private_rts));
        out.insert("public_route_table_id".into(), json!(public_rt.id));
        out.insert("internet_gateway_id".into(), json!(igw.id));
        out.insert("nat_gateway_ids".into(), json!(nat_ids));
        Ok(out)
    })
}

/// One route: AWS finds it by its table and destination, which are its identity.
async fn route(
    cx: &mut Cx,
    region: &str,
    table: &str,
    destination: &str,
    target: Value,
    target_id: &str,
    role: super::framework::Role,
) -> Result<(), StepError> {
    let mut spec = json!({"route_table_id": table, "destination_cidr_block": destination});
    crate::json::merge(&mut spec, &target);
    let tags = cx.tags(destination, role);
    cx.ensure(
        Desired::child(Kind::Route, region, table, destination, spec)
            .immutable(&["route_table_id", "destination_cidr_block"])
            .deps([table.to_string(), target_id.to_string()])
            .tags(tags),
    )
    .await?;
    Ok(())
}

fn run_peering<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let req_region = input::str(p, "requester_region")?;
        let acc_region = input::str(p, "accepter_region")?;
        let req_vpc = input::str(p, "requester_vpc_id")?;
        let acc_vpc = input::str(p, "accepter_vpc_id")?;
        let req_cidr = input::str(p, "requester_cidr")?;
        let acc_cidr = input::str(p, "accepter_cidr")?;
        let (a, b) = (Cidr::parse(req_cidr)?, Cidr::parse(acc_cidr)?);
        let shorter = a.prefix.min(b.prefix);
        let mask = if shorter == 0 {
            0
        } else {
            u32::MAX << (32 - shorter)
        };
        if a.base & mask == b.base & mask {
            return Err(StepError::invalid_input(format!(
                "VPC CIDRs {req_cidr} and {acc_cidr} overlap; peered VPCs need distinct ranges"
            )));
        }
        let role = super::framework::Role::Primary;
        let name = cx.name("vpc-peering");
        let tags = cx.tags(&name, role);
        let pcx = cx
            .ensure(
                Desired::new(
                    Kind::VpcPeering,
                    req_region,
                    &name,
                    json!({
                        "vpc_id": req_vpc,
                        "peer_vpc_id": acc_vpc,
                        "peer_region": acc_region,
                        "status": "active",
                    }),
                )
                .immutable(&["vpc_id", "peer_vpc_id", "peer_region"])
                .deps([req_vpc.to_string(), acc_vpc.to_string()])
                .tags(tags),
            )
            .await?;
        cx.wait(&pcx, Duration::from_secs(300)).await?;
        for rt in input::strings(p, "requester_route_table_ids")? {
            route(
                cx,
                req_region,
                &rt,
                acc_cidr,
                json!({"vpc_peering_connection_id": pcx.id}),
                &pcx.id,
                role,
            )
            .await?;
        }
        for rt in input::strings(p, "accepter_route_table_ids")? {
            route(
                cx,
                acc_region,
                &rt,
                req_cidr,
                json!({"vpc_peering_connection_id": pcx.id}),
                &pcx.id,
                super::framework::Role::Standby,
            )
            .await?;
        }
        let mut out = Outputs::new();
        out.insert("peering_connection_id".into(), json!(pcx.id));
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carves_24s_out_of_the_vpc_block() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert_eq!(c.subnet24(0).unwrap(), "10.1.0.0/24");
        assert_eq!(c.subnet24(12).unwrap(), "10.1.12.0/24");
        assert!(Cidr::parse("10.1.0.0/25").unwrap().subnet24(1).is_err());
        assert!(Cidr::parse("10.300.0.0/16").is_err());
    }

    /// With a primary a VPC cannot have (`10.0.0.0/8`), the suggested standby block used to be
    /// `11.0.0.0/8`, refused in turn; it keeps the standby's own size now, after the primary.
    #[test]
    fn an_overlap_hint_suggests_a_block_of_the_standbys_size() {
        let c = |t: &str| drflow_engine::formats::Ipv4Cidr::parse(t).unwrap();
        let s = |p: &str, prefix| next_block(c(p), prefix).map(|b| b.to_string());
        assert_eq!(s("10.0.0.0/8", 16).as_deref(), Some("11.0.0.0/16"));
        assert_eq!(s("10.0.0.0/15", 16).as_deref(), Some("10.2.0.0/16"));
        assert_eq!(s("10.20.128.0/17", 16).as_deref(), Some("10.21.0.0/16"));
        assert_eq!(s("10.0.0.0/16", 16).as_deref(), Some("10.1.0.0/16"));
        assert_eq!(s("255.255.0.0/16", 16), None);
    }
}
