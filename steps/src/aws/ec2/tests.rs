//! The ec2 kinds against moto: create, find (the spec comes back as the steps wrote it),
//! update of a drifted path, list, delete, find nothing.

use serde_json::{Value, json};

use super::*;
use crate::aws::{AwsSettings, StaticKeys};
use crate::cloud::drift::diff_raw as diff;

const REGION: &str = "eu-south-1";
const PEER_REGION: &str = "eu-central-1";

/// Clients for the moto of `DRFLOW_MOTO_ENDPOINT`; `None` (a loud skip) without one, outside CI.
fn moto() -> Option<Clients> {
    match std::env::var("DRFLOW_MOTO_ENDPOINT") {
        Ok(ep) if !ep.is_empty() => Some(Clients::new(AwsSettings {
            static_keys: Some(StaticKeys {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
            }),
            endpoint_url: Some(ep),
            profile: None,
        })),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("moto is required in CI (DRFLOW_MOTO_ENDPOINT)");
            }
            eprintln!("SKIPPED: aws::ec2 moto test; set DRFLOW_MOTO_ENDPOINT to run it");
            None
        }
    }
}

/// A suffix no other test (nor an earlier run against the same moto) uses.
fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{what}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn tags(name: &str) -> Tags {
    Tags::from([
        ("Name".to_string(), name.to_string()),
        ("ManagedBy".to_string(), "drflow".to_string()),
        ("Environment".to_string(), "Test".to_string()),
    ])
}

fn request(kind: Kind, region: &str, name: &str, spec: Value) -> CreateRequest {
    CreateRequest {
        kind,
        region: region.into(),
        name: name.into(),
        parent: None,
        spec,
        tags: if kind.taggable() {
            tags(name)
        } else {
            Tags::new()
        },
        depends_on: vec![],
    }
}

fn id_of(r: &Resource) -> Identity {
    r.identity()
}

async fn must_find(c: &Clients, id: &Identity) -> Resource {
    find(c, id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} not found"))
}

/// Sorts lists whose order AWS does not keep (subnets of a route table, rules), for comparing.
fn sorted(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        for (k, x) in m.iter_mut() {
            if let Value::Array(a) = x
                && matches!(k.as_str(), "subnet_ids" | "ingress" | "egress")
            {
                a.sort_by_key(|e| e.to_string());
            }
        }
    }
    v
}

/// What `find` gives back is what was asked, and carries the tags.
fn assert_round_trip(asked: &CreateRequest, found: &Resource) {
    let d = diff(&sorted(asked.spec.clone()), &sorted(found.spec.clone()));
    assert!(
        d.is_empty(),
        "{} {}: drift {d:?}\nasked {}\nfound {}",
        asked.kind,
        asked.name,
        asked.spec,
        found.spec
    );
    for (k, v) in &asked.tags {
        assert_eq!(found.tags.get(k), Some(v), "tag {k} of {}", asked.name);
    }
    assert_eq!(found.name, asked.name);
}

fn update_req(spec: Value, drifted: &[&str], tags: Tags) -> UpdateRequest {
    UpdateRequest {
        spec,
        drifted: drifted.iter().map(|s| s.to_string()).collect(),
        tags,
        depends_on: vec![],
    }
}

async fn listed(c: &Clients, region: &str, kind: Kind, parent: Option<&str>, id: &str) -> bool {
    list(c, region, kind, parent)
        .await
        .unwrap()
        .iter()
        .any(|r| r.id == id)
}

async fn new_vpc(c: &Clients, region: &str, cidr: &str) -> Resource {
    let name = unique("vpc");
    create(
        c,
        &request(
            Kind::Vpc,
            region,
            &name,
            json!({"cidr_block": cidr, "enable_dns_support": true, "enable_dns_hostnames": true}),
        ),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn vpc_round_trip() {
    let Some(c) = moto() else { return };
    let name = unique("vpc");
    let spec = json!({"cidr_block": "10.10.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": true});
    let req = request(Kind::Vpc, REGION, &name, spec.clone());
    let made = create(&c, &req).await.unwrap();
    assert!(made.id.starts_with("vpc-"), "{}", made.id);
    let found = must_find(&c, &id_of(&made)).await;
    assert_eq!(found.id, made.id);
    assert_eq!(found.state, ResourceState::Available);
    assert_round_trip(&req, &found);

    let mut want = spec.clone();
    want["enable_dns_hostnames"] = json!(false);
    let mut new_tags = tags(&name);
    new_tags.insert("Owner".into(), "team".into());
    update(
        &c,
        &found,
        &update_req(want.clone(), &["enable_dns_hostnames"], new_tags),
    )
    .await
    .unwrap();
    let found = must_find(&c, &id_of(&made)).await;
    assert!(diff(&want, &found.spec).is_empty(), "{}", found.spec);
    assert_eq!(found.tags.get("Owner").map(String::as_str), Some("team"));
    assert!(listed(&c, REGION, Kind::Vpc, None, &made.id).await);

    delete(&c, &found).await.unwrap();
    assert!(find(&c, &id_of(&made)).await.unwrap().is_none());
    let again = delete(&c, &found).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::NotFound, "{}", again.message);
}

#[tokio::test]
async fn subnet_gateways_and_nat_round_trip() {
    let Some(c) = moto() else { return };
    let vpc = new_vpc(&c, REGION, "10.11.0.0/16").await;
    let zones = availability_zones(&c, REGION).await.unwrap();

    // subnet
    let name = unique("public-subnet");
    let spec = json!({"vpc_id": vpc.id, "cidr_block": "10.11.0.0/24", "availability_zone": zones[0], "map_public_ip_on_launch": true, "tier": "public"});
    let req = request(Kind::Subnet, REGION, &name, spec.clone());
    let subnet = create(&c, &req).await.unwrap();
    let found = must_find(&c, &id_of(&subnet)).await;
    assert_round_trip(&req, &found);
    let mut want = spec.clone();
    want["map_public_ip_on_launch"] = json!(false);
    update(
        &c,
        &found,
        &update_req(want.clone(), &["map_public_ip_on_launch"], tags(&name)),
    )
    .await
    .unwrap();
    let found = must_find(&c, &id_of(&subnet)).await;
    assert!(diff(&want, &found.spec).is_empty(), "{}", found.spec);
    assert!(listed(&c, REGION, Kind::Subnet, None, &subnet.id).await);

    // internet gateway, moved to another VPC
    let name = unique("igw");
    let req = request(
        Kind::InternetGateway,
        REGION,
        &name,
        json!({"vpc_id": vpc.id}),
    );
    let igw = create(&c, &req).await.unwrap();
    let found = must_find(&c, &id_of(&igw)).await;
    assert_round_trip(&req, &found);
    let other = new_vpc(&c, REGION, "10.12.0.0/16").await;
    let want = json!({"vpc_id": other.id});
    update(
        &c,
        &found,
        &update_req(want.clone(), &["vpc_id"], tags(&name)),
    )
    .await
    .unwrap();
    let found = must_find(&c, &id_of(&igw)).await;
    assert_eq!(found.spec, want);
    assert!(listed(&c, REGION, Kind::InternetGateway, None, &igw.id).await);

    // elastic IP: only its tags can change
    let name = unique("nat-eip");
    let req = request(Kind::ElasticIp, REGION, &name, json!({"domain": "vpc"}));
    let eip = create(&c, &req).await.unwrap();
    assert!(eip.id.starts_with("eipalloc-"), "{}", eip.id);
    let found = must_find(&c, &id_of(&eip)).await;
    assert_round_trip(&req, &found);
    assert!(!found.attr_str("public_ip").is_empty());
    let mut t = tags(&name);
    t.insert("Environment".into(), "Other".into());
    update(&c, &found, &update_req(req.spec.clone(), &[], t))
        .await
        .unwrap();
    let found = must_find(&c, &id_of(&eip)).await;
    assert_eq!(
        found.tags.get("Environment").map(String::as_str),
        Some("Other")
    );
    assert!(listed(&c, REGION, Kind::ElasticIp, None, &eip.id).await);
    // What cannot change in place is refused, naming the path.
    let err = update(
        &c,
        &found,
        &update_req(json!({"domain": "standard"}), &["domain"], tags(&name)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.message.contains("`domain`"), "{}", err.message);

    // NAT gateway in the subnet, with the EIP
    let name = unique("nat-gateway");
    let req = request(
        Kind::NatGateway,
        REGION,
        &name,
        json!({"subnet_id": subnet.id, "allocation_id": eip.id, "connectivity_type": "public"}),
    );
    let nat = create(&c, &req).await.unwrap();
    assert!(nat.id.starts_with("nat-"), "{}", nat.id);
    let found = must_find(&c, &id_of(&nat)).await;
    assert_round_trip(&req, &found);
    assert!(listed(&c, REGION, Kind::NatGateway, None, &nat.id).await);
    delete(&c, &found).await.unwrap();
    // Deleting, then deleted (gone); moto goes straight to either.
    if let Some(r) = find(&c, &id_of(&nat)).await.unwrap() {
        assert_eq!(r.state, ResourceState::Deleting);
    }

    delete(&c, &must_find(&c, &id_of(&eip)).await)
        .await
        .unwrap();
    assert!(find(&c, &id_of(&eip)).await.unwrap().is_none());
    let igw_now = must_find(&c, &id_of(&igw)).await;
    delete(&c, &igw_now).await.unwrap();
    assert!(find(&c, &id_of(&igw)).await.unwrap().is_none());
    delete(&c, &must_find(&c, &id_of(&subnet)).await)
        .await
        .unwrap();
    assert!(find(&c, &id_of(&subnet)).await.unwrap().is_none());
    delete(&c, &vpc).await.unwrap();
    delete(&c, &other).await.unwrap();
}

#[tokio::test]
async fn route_table_and_routes_round_trip() {
    let Some(c) = moto() else { return };
    let vpc = new_vpc(&c, REGION, "10.13.0.0/16").await;
    let mut subnets = Vec::new();
    for i in 0..3 {
        let name = unique("private-subnet");
        let r = create(
            &c,
            &request(
                Kind::Subnet,
                REGION,
                &name,
                json!({"vpc_id": vpc.id, "cidr_block": format!("10.13.{i}.0/24"), "map_public_ip_on_launch": false, "tier": "private"}),
            ),
        )
        .await
        .unwrap();
        subnets.push(r.id);
    }
    let name = unique("private-rt");
    let spec = json!({"vpc_id": vpc.id, "subnet_ids": [subnets[0], subnets[1]]});
    let req = request(Kind::RouteTable, REGION, &name, spec);
    let rt = create(&c, &req).await.unwrap();
    let found = must_find(&c, &id_of(&rt)).await;
    assert_round_trip(&req, &found);
    let want = json!({"vpc_id": vpc.id, "subnet_ids": [subnets[1], subnets[2]]});
    update(
        &c,
        &found,
        &update_req(want.clone(), &["subnet_ids"], tags(&name)),
    )
    .await
    .unwrap();
    let found = must_find(&c, &id_of(&rt)).await;
    assert!(
        diff(&sorted(want), &sorted(found.spec.clone())).is_empty(),
        "{}",
        found.spec
    );
    assert!(listed(&c, REGION, Kind::RouteTable, None, &rt.id).await);

    // A route to an internet gateway, replaced by one to a NAT gateway.
    let igw = create(
        &c,
        &request(
            Kind::InternetGateway,
            REGION,
            &unique("igw"),
            json!({"vpc_id": vpc.id}),
        ),
    )
    .await
    .unwrap();
    let mut req = request(
        Kind::Route,
        REGION,
        "0.0.0.0/0",
        json!({"route_table_id": rt.id, "destination_cidr_block": "0.0.0.0/0", "gateway_id": igw.id}),
    );
    req.parent = Some(rt.id.clone());
    let route = create(&c, &req).await.unwrap();
    let route_id = Identity::child(Kind::Route, REGION, &rt.id, "0.0.0.0/0");
    assert_eq!(route.identity(), route_id);
    let found = must_find(&c, &route_id).await;
    assert_round_trip(&req, &found);
    assert!(found.tags.is_empty());
    let err = create(&c, &req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{}", err.message);

    let eip = create(
        &c,
        &request(
            Kind::ElasticIp,
            REGION,
            &unique("eip"),
            json!({"domain": "vpc"}),
        ),
    )
    .await
    .unwrap();
    let nat = create(
        &c,
        &request(
            Kind::NatGateway,
            REGION,
            &unique("nat"),
            json!({"subnet_id": subnets[0], "allocation_id": eip.id}),
        ),
    )
    .await
    .unwrap();
    let want = json!({"route_table_id": rt.id, "destination_cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id});
    let updated = update(
        &c,
        &found,
        &update_req(want.clone(), &["nat_gateway_id", "gateway_id"], Tags::new()),
    )
    .await
    .unwrap();
    assert_eq!(updated.spec, want);
    let found = must_find(&c, &route_id).await;
    assert_eq!(found.spec, want);

    // The table's routes: this one, never the local one.
    let routes = list(&c, REGION, Kind::Route, Some(&rt.id)).await.unwrap();
    assert_eq!(
        routes.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["0.0.0.0/0"]
    );

    delete(&c, &found).await.unwrap();
    assert!(find(&c, &route_id).await.unwrap().is_none());
    delete(&c, &must_find(&c, &id_of(&rt)).await).await.unwrap();
    assert!(find(&c, &id_of(&rt)).await.unwrap().is_none());
    // A route of a table that is gone is gone too.
    assert!(find(&c, &route_id).await.unwrap().is_none());
}

#[tokio::test]
async fn cross_region_peering_round_trip() {
    let Some(c) = moto() else { return };
    let a = new_vpc(&c, REGION, "10.14.0.0/16").await;
    let b = new_vpc(&c, PEER_REGION, "10.15.0.0/16").await;
    let name = unique("vpc-peering");
    let req = request(
        Kind::VpcPeering,
        REGION,
        &name,
        json!({"vpc_id": a.id, "peer_vpc_id": b.id, "peer_region": PEER_REGION, "status": "active"}),
    );
    let pcx = create(&c, &req).await.unwrap();
    assert!(pcx.id.starts_with("pcx-"), "{}", pcx.id);
    let found = must_find(&c, &id_of(&pcx)).await;
    assert_round_trip(&req, &found);
    assert_eq!(found.state, ResourceState::Available);
    // It is the requester's: the accepter's region does not list it as drflow's.
    assert!(listed(&c, REGION, Kind::VpcPeering, None, &pcx.id).await);
    assert!(!listed(&c, PEER_REGION, Kind::VpcPeering, None, &pcx.id).await);
    // The accept happened in the peer region.
    assert!(
        c.calls()
            .iter()
            .any(|r| r.operation == "AcceptVpcPeeringConnection"
                && r.region == PEER_REGION
                && !r.failed)
    );

    let mut t = tags(&name);
    t.insert("FailoverRole".into(), "Primary".into());
    update(&c, &found, &update_req(req.spec.clone(), &[], t))
        .await
        .unwrap();
    let found = must_find(&c, &id_of(&pcx)).await;
    assert_eq!(
        found.tags.get("FailoverRole").map(String::as_str),
        Some("Primary")
    );

    delete(&c, &found).await.unwrap();
    assert!(find(&c, &id_of(&pcx)).await.unwrap().is_none());
}

#[tokio::test]
async fn security_group_round_trip() {
    let Some(c) = moto() else { return };
    let vpc = new_vpc(&c, REGION, "10.16.0.0/16").await;
    let alb_name = unique("alb-sg");
    let alb_req = request(
        Kind::SecurityGroup,
        REGION,
        &alb_name,
        json!({
            "vpc_id": vpc.id,
            "description": "ALB: HTTPS and the HTTP redirect from the internet",
            "ingress": [
                {"protocol": "tcp", "from_port": 443, "to_port": 443, "description": "HTTPS from the internet", "cidr_ipv4": "0.0.0.0/0"},
                {"protocol": "tcp", "from_port": 80, "to_port": 80, "description": "HTTP, redirected to HTTPS", "cidr_ipv4": "0.0.0.0/0"},
            ],
            "egress": [{"protocol": "-1", "cidr_ipv4": "0.0.0.0/0"}],
        }),
    );
    let alb = create(&c, &alb_req).await.unwrap();
    let found = must_find(&c, &id_of(&alb)).await;
    assert_eq!(found.id, alb.id);
    assert_round_trip(&alb_req, &found);

    let db_name = unique("db-sg");
    let db_req = request(
        Kind::SecurityGroup,
        REGION,
        &db_name,
        json!({
            "vpc_id": vpc.id,
            "description": "Aurora: PostgreSQL only from the app",
            "ingress": [{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "description": "PostgreSQL from the app only", "source_security_group_id": alb.id}],
            "egress": [],
        }),
    );
    let db = create(&c, &db_req).await.unwrap();
    let found_db = must_find(&c, &id_of(&db)).await;
    // The default egress rule is gone, as asked.
    assert_round_trip(&db_req, &found_db);
    assert!(found_db.depends_on.contains(&alb.id));
    let err = create(&c, &db_req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{}", err.message);

    // Drop the HTTP rule, reword the HTTPS one, add 8443: only the difference is sent.
    let mut want = alb_req.spec.clone();
    want["ingress"] = json!([
        {"protocol": "tcp", "from_port": 443, "to_port": 443, "description": "HTTPS", "cidr_ipv4": "0.0.0.0/0"},
        {"protocol": "tcp", "from_port": 8443, "to_port": 8443, "cidr_ipv4": "10.0.0.0/8"},
    ]);
    let before = c.calls().len();
    update(
        &c,
        &found,
        &update_req(want.clone(), &["ingress"], tags(&alb_name)),
    )
    .await
    .unwrap();
    let ops: Vec<_> = c.calls()[before..].iter().map(|r| r.operation).collect();
    assert_eq!(
        ops,
        [
            "RevokeSecurityGroupIngress",
            "AuthorizeSecurityGroupIngress"
        ]
    );
    let found = must_find(&c, &id_of(&alb)).await;
    assert!(
        diff(&sorted(want), &sorted(found.spec.clone())).is_empty(),
        "{}",
        found.spec
    );
    assert!(listed(&c, REGION, Kind::SecurityGroup, None, &alb.id).await);

    delete(&c, &found_db).await.unwrap();
    delete(&c, &found).await.unwrap();
    assert!(find(&c, &id_of(&alb)).await.unwrap().is_none());
    assert!(find(&c, &id_of(&db)).await.unwrap().is_none());
}

#[tokio::test]
async fn launch_template_round_trip() {
    let Some(c) = moto() else { return };
    let name = unique("launch-template");
    let instance_tags = tags(&name);
    let spec = json!({
        "image_id": "resolve:ssm:/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2",
        "instance_type": "t3.medium",
        "iam_instance_profile": {"arn": "arn:aws:iam::123456789012:instance-profile/ec2-instance-profile-test"},
        "vpc_security_group_ids": ["sg-084c63f66e34145d6"],
        "user_data": "IyEvYmluL2Jhc2gKZWNobyBoaQo=",
        "metadata_options": {"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1},
        "block_device_mappings": [{
            "device_name": "/dev/xvda",
            "ebs": {"volume_size": 20, "volume_type": "gp3", "encrypted": true, "delete_on_termination": true}
        }],
        "monitoring": {"enabled": true},
        "tag_specifications": [{"resource_type": "instance", "tags": instance_tags}],
        "update_default_version": true,
    });
    let req = request(Kind::LaunchTemplate, REGION, &name, spec.clone());
    let lt = create(&c, &req).await.unwrap();
    assert!(lt.id.starts_with("lt-"), "{}", lt.id);
    let found = must_find(&c, &id_of(&lt)).await;
    assert_round_trip(&req, &found);
    assert_eq!(found.attrs.get("latest_version"), Some(&json!(1)));

    let mut want = spec.clone();
    want["instance_type"] = json!("t3.large");
    let updated = update(
        &c,
        &found,
        &update_req(want.clone(), &["instance_type"], tags(&name)),
    )
    .await
    .unwrap();
    assert_eq!(updated.attrs.get("latest_version"), Some(&json!(2)));
    let found = must_find(&c, &id_of(&lt)).await;
    assert!(diff(&want, &found.spec).is_empty(), "{}", found.spec);
    assert_eq!(found.attrs.get("latest_version"), Some(&json!(2)));
    assert_eq!(found.attrs.get("default_version"), Some(&json!(2)));
    assert!(listed(&c, REGION, Kind::LaunchTemplate, None, &lt.id).await);

    delete(&c, &found).await.unwrap();
    assert!(find(&c, &id_of(&lt)).await.unwrap().is_none());
}

#[tokio::test]
async fn availability_zones_are_the_available_ones_in_name_order() {
    let Some(c) = moto() else { return };
    let zones = availability_zones(&c, PEER_REGION).await.unwrap();
    assert!(zones.len() >= 2, "{zones:?}");
    let mut s = zones.clone();
    s.sort();
    assert_eq!(zones, s);
    assert!(
        zones.iter().all(|z| z.starts_with(PEER_REGION)),
        "{zones:?}"
    );
}

/// The region's availability zones that are `available`, in name order, as moto reports them.
async fn availability_zones(c: &Clients, region: &str) -> Result<Vec<String>, CloudError> {
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "DescribeAvailabilityZones"),
            rc.ec2
                .describe_availability_zones()
                .filters(filter("state", "available"))
                .send(),
        )
        .await?;
    let mut zones: Vec<String> = out
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    zones.sort();
    Ok(zones)
}
