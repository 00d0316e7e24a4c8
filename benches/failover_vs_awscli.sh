#!/usr/bin/env bash
# The failover sequence against moto, two ways, side by side: drflow (`runbooks/failover.yaml
# --target aws`, independent calls in parallel in one process) and what many teams run today, a
# shell script of the same calls made one after another with the aws CLI. Also the provision's
# wall time and its mutating API calls per resource. Figures go in docs/performance.md.
#
# Usage: benches/failover_vs_awscli.sh [--awscli-only]
#   DRFLOW=path/to/drflow   the binary to time (default: cargo build --release, then that one)
#   PARAMS=file             the deployment (default runbooks/params/eu.yaml: weighted records)
#
# It starts its own moto_server on a free port of 127.0.0.1 (pip: moto[server]==5.2.5,
# awscli==1.45.11; `.ci/run` installs both) and stops it on exit. Nothing leaves 127.0.0.1: the
# credentials are moto's dummy ones.
#
# --awscli-only skips every drflow run: it builds the few resources the aws CLI half touches
# with the CLI itself (topics, groups, a weighted record pair, alarms) and times that half alone.
#
# moto has no FailoverGlobalCluster and no TestDNSAnswer. The bench starts tests/moto_server.py
# with DRFLOW_MOTO_EMULATE=failover, which answers both at once with AWS's documented outcome
# (the target cluster becomes the writer; the heaviest weighted record answers), so that both
# halves make every call of the sequence and succeed. The tests never turn that on.
set -euo pipefail
cd "$(dirname "$0")/.."

AWSCLI_ONLY=0
[ "${1:-}" = "--awscli-only" ] && AWSCLI_ONLY=1
PARAMS="${PARAMS:-runbooks/params/eu.yaml}"

param() { # the value of a top-level `name: value` line of $PARAMS
    sed -n "s/^$1:[[:space:]]*\\([^#]*\\).*/\\1/p" "$PARAMS" | tr -d ' "'
}
SUFFIX="$(param env_suffix)"
PRIMARY="$(param primary_region)"
STANDBY="$(param standby_region)"
DOMAIN="$(param domain_name)"
CAPACITY="$(param primary_capacity)"
METRICS_REGION=us-east-1 # failover.yaml's health_metrics_region default: Route 53's metrics

# --- moto -------------------------------------------------------------------------------------
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
WORK="$(mktemp -d -t drflow-bench.XXXXXX)"
DRFLOW_MOTO_EMULATE=failover python3 tests/moto_server.py -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
EP="http://127.0.0.1:$PORT"
for _ in $(seq 1 60); do
    python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" "$EP" 2>/dev/null && break
    sleep 0.5
done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
aws_() { # aws CLI against moto in region $1
    local region="$1"
    shift
    aws --endpoint-url "$EP" --region "$region" --output json "$@"
}
now() { python3 -c 'import time; print(time.monotonic())'; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# --- drflow -----------------------------------------------------------------------------------
if [ "$AWSCLI_ONLY" = 0 ]; then
    if [ -z "${DRFLOW:-}" ]; then
        cargo build --release --bin drflow
        DRFLOW="${CARGO_TARGET_DIR:-target}/release/drflow"
    fi
    drflow_aws() { # drflow against moto; stderr kept in $WORK/$1.err
        local name="$1"
        shift
        "$DRFLOW" --state-dir "$WORK/state" "$@" --target aws --endpoint-url "$EP" \
            --params-file "$PARAMS" 2>"$WORK/$name.err"
    }
    aws_line() { grep '^aws: ' "$WORK/$1.err" | tail -1; }

    echo "== provision ($PARAMS) against moto $EP"
    t0="$(now)"
    drflow_aws provision run runbooks/provision.yaml --yes >"$WORK/provision.out" || {
        echo "provision failed:" >&2
        tail -20 "$WORK/provision.err" >&2
        exit 1
    }
    t1="$(now)"
    resources="$(grep -c '^ *+ ' "$WORK/provision.err" || true)"
    calls="$(aws_line provision)"
    mutating="$(sed -n 's/.*(\([0-9]*\) mutating).*/\1/p' <<<"$calls")"
    echo "provision: $(elapsed "$t0" "$t1") s wall, $resources resources created; $calls"
    if [ -n "$mutating" ] && [ "$resources" -gt 0 ]; then
        python3 -c "import sys; print(f'provision: {int(sys.argv[1]) / int(sys.argv[2]):.2f} mutating calls per resource')" "$mutating" "$resources"
    fi
    drflow_aws provision-again run runbooks/provision.yaml --yes >/dev/null
    echo "provision again: $(aws_line provision-again) (expected: only the repairs of what moto does not store, docs/aws.md; 0 on AWS)"
fi

# --- the resources the CLI half needs, when drflow did not build them -------------------------
if [ "$AWSCLI_ONLY" = 1 ]; then
    echo "== --awscli-only: building the CLI half's resources with the aws CLI (untimed)"
    AMI="$(aws_ "$PRIMARY" ec2 describe-images --owners amazon --query 'Images[0].ImageId' --output text)"
    for region in "$PRIMARY" "$STANDBY"; do
        vpc="$(aws_ "$region" ec2 create-vpc --cidr-block 10.99.0.0/16 --query Vpc.VpcId --output text)"
        az="$(aws_ "$region" ec2 describe-availability-zones --query 'AvailabilityZones[0].ZoneName' --output text)"
        subnet="$(aws_ "$region" ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.99.1.0/24 \
            --availability-zone "$az" --query Subnet.SubnetId --output text)"
        ami="$(aws_ "$region" ec2 describe-images --owners amazon --query 'Images[0].ImageId' --output text)"
        aws_ "$region" ec2 create-launch-template --launch-template-name "lt-$SUFFIX" \
            --launch-template-data "{\"ImageId\":\"${ami:-$AMI}\",\"InstanceType\":\"t3.medium\"}" >/dev/null
        size=1
        [ "$region" = "$PRIMARY" ] && size="$CAPACITY"
        aws_ "$region" autoscaling create-auto-scaling-group --auto-scaling-group-name "asg-$SUFFIX" \
            --launch-template "LaunchTemplateName=lt-$SUFFIX" --min-size "$size" --max-size 8 \
            --desired-capacity "$size" --vpc-zone-identifier "$subnet"
        aws_ "$region" sns create-topic --name "sns-topic-$SUFFIX" >/dev/null
    done
    aws_ "$PRIMARY" rds create-global-cluster --global-cluster-identifier "aurora-global-$SUFFIX" \
        --engine aurora-postgresql >/dev/null
    zone="$(aws_ us-east-1 route53 create-hosted-zone --name "$DOMAIN" --caller-reference "bench-$PORT" \
        --query HostedZone.Id --output text)"
    for side in primary:100 standby:0; do
        aws_ us-east-1 route53 change-resource-record-sets --hosted-zone-id "$zone" --change-batch \
            "{\"Changes\":[{\"Action\":\"UPSERT\",\"ResourceRecordSet\":{\"Name\":\"api.$DOMAIN.\",\"Type\":\"CNAME\",\"SetIdentifier\":\"${side%%:*}\",\"Weight\":${side##*:},\"TTL\":60,\"ResourceRecords\":[{\"Value\":\"${side%%:*}.example.net\"}]}}]}" >/dev/null
    done
    aws_ "$METRICS_REGION" cloudwatch put-metric-alarm --alarm-name "health-check-alarm-primary-$SUFFIX" \
        --namespace AWS/Route53 --metric-name HealthCheckStatus --statistic Minimum --period 60 \
        --evaluation-periods 1 --threshold 1 --comparison-operator LessThanThreshold
fi

ZONE_ID="$(aws_ us-east-1 route53 list-hosted-zones-by-name --dns-name "$DOMAIN" \
    --query 'HostedZones[0].Id' --output text)"
ZONE_ID="${ZONE_ID#/hostedzone/}"
topic_arn() { aws_ "$1" sns list-topics --query "Topics[?ends_with(TopicArn, ':sns-topic-$SUFFIX')].TopicArn | [0]" --output text; }
TOPIC_PRIMARY="$(topic_arn "$PRIMARY")"
TOPIC_STANDBY="$(topic_arn "$STANDBY")"
# The records' full definitions, so an UPSERT changes only the weight.
record() { # the record set of set identifier $1, as JSON
    aws_ us-east-1 route53 list-resource-record-sets --hosted-zone-id "$ZONE_ID" \
        --query "ResourceRecordSets[?Name=='api.$DOMAIN.' && SetIdentifier=='$1'] | [0]"
}
with_weight() { python3 -c "import json, sys; r = json.loads(sys.argv[1]); r['Weight'] = int(sys.argv[2]); print(json.dumps({'Changes': [{'Action': 'UPSERT', 'ResourceRecordSet': r}]}))" "$1" "$2"; }

# Puts the world back where a failover starts: the primary's alarm in ALARM (moto never
# evaluates alarms), the primary group at full size, the standby at its minimum, weights 100/0.
reset() {
    aws_ "$METRICS_REGION" cloudwatch set-alarm-state --alarm-name "health-check-alarm-primary-$SUFFIX" \
        --state-value ALARM --state-reason "bench: primary down"
    aws_ "$PRIMARY" autoscaling update-auto-scaling-group --auto-scaling-group-name "asg-$SUFFIX" \
        --min-size "$CAPACITY" --desired-capacity "$CAPACITY"
    aws_ "$STANDBY" autoscaling update-auto-scaling-group --auto-scaling-group-name "asg-$SUFFIX" \
        --min-size 1 --desired-capacity 1
    aws_ us-east-1 route53 change-resource-record-sets --hosted-zone-id "$ZONE_ID" \
        --change-batch "$(with_weight "$(record primary)" 100)" >/dev/null
    aws_ us-east-1 route53 change-resource-record-sets --hosted-zone-id "$ZONE_ID" \
        --change-batch "$(with_weight "$(record standby)" 0)" >/dev/null
}

# --- the failover as a sequential aws CLI script ----------------------------------------------
# The same calls drflow's failover.yaml makes with signals=[alarms] and quorum 1, in its order,
# one process per call: announce, read the signal and the database, fence the old primary,
# promote, scale the standby and wait for it, move the weights and wait for Route 53, verify,
# announce the end.
awscli_failover() {
    aws_ "$PRIMARY" sns publish --topic-arn "$TOPIC_PRIMARY" --subject "failover started" --message "bench" >/dev/null
    aws_ "$STANDBY" sns publish --topic-arn "$TOPIC_STANDBY" --subject "failover started" --message "bench" >/dev/null
    aws_ "$METRICS_REGION" cloudwatch describe-alarms --alarm-name-prefix "health-check-alarm-primary-$SUFFIX" >/dev/null
    aws_ "$PRIMARY" autoscaling describe-auto-scaling-groups --auto-scaling-group-names "asg-$SUFFIX" >/dev/null
    aws_ "$PRIMARY" rds describe-global-clusters --global-cluster-identifier "aurora-global-$SUFFIX" >/dev/null
    aws_ "$PRIMARY" autoscaling update-auto-scaling-group --auto-scaling-group-name "asg-$SUFFIX" \
        --min-size 0 --desired-capacity 0
    aws_ "$STANDBY" rds failover-global-cluster --global-cluster-identifier "aurora-global-$SUFFIX" \
        --target-db-cluster-identifier "arn:aws:rds:$STANDBY:123456789012:cluster:aurora-cluster-$SUFFIX" \
        --allow-data-loss >/dev/null
    aws_ "$STANDBY" autoscaling update-auto-scaling-group --auto-scaling-group-name "asg-$SUFFIX" \
        --min-size "$CAPACITY" --desired-capacity "$CAPACITY"
    until [ "$(aws_ "$STANDBY" autoscaling describe-auto-scaling-groups --auto-scaling-group-names "asg-$SUFFIX" \
        --query "length(AutoScalingGroups[0].Instances[?LifecycleState=='InService'])" --output text)" -ge "$CAPACITY" ]; do
        :
    done
    local c1 c2
    c1="$(aws_ us-east-1 route53 change-resource-record-sets --hosted-zone-id "$ZONE_ID" \
        --change-batch "$(with_weight "$(record standby)" 100)" --query ChangeInfo.Id --output text)"
    c2="$(aws_ us-east-1 route53 change-resource-record-sets --hosted-zone-id "$ZONE_ID" \
        --change-batch "$(with_weight "$(record primary)" 0)" --query ChangeInfo.Id --output text)"
    aws_ us-east-1 route53 get-change --id "$c1" >/dev/null
    aws_ us-east-1 route53 get-change --id "$c2" >/dev/null
    aws_ us-east-1 route53 test-dns-answer --hosted-zone-id "$ZONE_ID" --record-name "api.$DOMAIN" \
        --record-type CNAME >/dev/null
    aws_ "$PRIMARY" sns publish --topic-arn "$TOPIC_PRIMARY" --subject "failover done" --message "bench" >/dev/null
    aws_ "$STANDBY" sns publish --topic-arn "$TOPIC_STANDBY" --subject "failover done" --message "bench" >/dev/null
}

echo "== failover, aws CLI, sequential"
reset
t0="$(now)"
awscli_failover
t1="$(now)"
CLI_S="$(elapsed "$t0" "$t1")"
echo "aws CLI: $CLI_S s wall"
weights="$(aws_ us-east-1 route53 list-resource-record-sets --hosted-zone-id "$ZONE_ID" \
    --query "ResourceRecordSets[?Name=='api.$DOMAIN.'].[SetIdentifier, Weight]" --output text | tr '\t\n' '= ')"
echo "aws CLI: weights now $weights"

if [ "$AWSCLI_ONLY" = 0 ]; then
    echo "== failover, drflow"
    reset
    t0="$(now)"
    status=0
    drflow_aws failover run runbooks/failover.yaml --yes -p 'signals=[alarms]' -p quorum=1 \
        -p confirm_window=0s -p detection_timeout=5s >"$WORK/failover.out" || status=$?
    t1="$(now)"
    DRFLOW_S="$(elapsed "$t0" "$t1")"
    echo "drflow: $DRFLOW_S s wall (exit $status); $(aws_line failover)"
    [ "$status" = 0 ] || grep -E '^(error|  [a-z_]+ failed|.*failed:)' "$WORK/failover.err" | head -5 || true
    if [ "$status" != 0 ]; then
        echo "drflow's failover failed: no ratio (the two halves did not do the same work)" >&2
        exit 1
    fi
    python3 -c "import sys; c, d = float(sys.argv[1]), float(sys.argv[2]); print(f'ratio: aws CLI / drflow = {c / d:.1f}x')" "$CLI_S" "$DRFLOW_S"
fi
