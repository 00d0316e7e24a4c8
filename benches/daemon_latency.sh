#!/usr/bin/env bash
# How fast `drflow daemon --target aws` acts on an alarm event: from the moment its ReceiveMessage
# returns the event (the queue's own delivery is over) to the failover run's first API call,
# p50 and p99 over N events (default 100) on moto. Figures go in docs/performance.md.
#
# Usage: benches/daemon_latency.sh [N]
#   DRFLOW=path/to/drflow   the binary to time (default: cargo build --release, then that one)
#   PARAMS=file             the deployment (default runbooks/params/eu.yaml)
#
# It starts its own moto_server on a free port of 127.0.0.1 (pip: moto[server]==5.2.5,
# awscli==1.45.11; `.ci/run` installs both), provisions the environment there, and starts the
# daemon with a triggers file of its own: one signal (the primary's health check alarm in
# ALARM), 1 of 1, no cooldown, so that every new ALARM starts a run. Each round puts an OK and
# then an ALARM of a newer state timestamp on the queue, and waits for the run to end before
# the next (a run in progress would fold the next firing into itself). The first run fails
# over; the later ones find the standby serving and change nothing, but each makes its calls
# from the start. The daemon's reconcile and probe are off, so that the first call after an
# event is the run's. Then a soak: SOAK (default 10000) more events the triggers take without
# firing (every tenth a duplicate, every fiftieth malformed), with the daemon's resident memory
# and open file descriptors after the first 1,000 and after all of them. The daemon says, per run, how long after its event arrived the run's first
# API call was sent (`first API call N ms after its event arrived`); this script sorts those.
#
# moto has no FailoverGlobalCluster: the bench's moto answers it (DRFLOW_MOTO_EMULATE=failover,
# as in benches/failover_vs_awscli.sh). Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${1:-100}"
PARAMS="${PARAMS:-runbooks/params/eu.yaml}"
param() { sed -n "s/^$1:[[:space:]]*\\([^#]*\\).*/\\1/p" "$PARAMS" | tr -d ' "'; }
SUFFIX="$(param env_suffix)"
STANDBY="$(param standby_region)"
METRICS_REGION=us-east-1

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
WORK="$(mktemp -d -t drflow-daemon-bench.XXXXXX)"
DRFLOW_MOTO_EMULATE=failover python3 tests/moto_server.py -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true
    kill "$MOTO_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
EP="http://127.0.0.1:$PORT"
for _ in $(seq 1 60); do
    python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/', timeout=1)" "$EP" 2>/dev/null && break
    sleep 0.5
done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
aws_() { local region="$1"; shift; aws --endpoint-url "$EP" --region "$region" --output json "$@"; }

if [ -z "${DRFLOW:-}" ]; then
    cargo build --release --bin drflow
    DRFLOW="${CARGO_TARGET_DIR:-target}/release/drflow"
fi
drflow_aws() { "$DRFLOW" --state-dir "$WORK/state" "$@" --target aws --endpoint-url "$EP"; }

echo "== provision ($PARAMS) against moto $EP"
drflow_aws run runbooks/provision.yaml --params-file "$PARAMS" >"$WORK/provision.out" 2>"$WORK/provision.err"
aws_ "$METRICS_REGION" cloudwatch set-alarm-state --alarm-name "health-check-alarm-primary-$SUFFIX" \
    --state-value ALARM --state-reason "bench: primary down"
QUEUE_URL="$(aws_ "$STANDBY" sqs get-queue-url --queue-name "alarm-events-$SUFFIX" --query QueueUrl --output text)"

cat >"$WORK/drflow.yaml" <<EOF
version: 1
triggers:
  - name: bench
    runbook: $PWD/runbooks/failover.yaml
    signals:
      - name: primary-health-check
        pattern:
          source: [aws.cloudwatch]
          detail-type: [CloudWatch Alarm State Change]
          detail:
            alarmName: [{ prefix: health-check-alarm-primary- }]
            state: { value: [ALARM] }
    require: 1 of 1
    within: 5m
    cooldown: 0s
EOF

echo "== daemon, $ROUNDS events"
# Started directly, not through the function: $! must be drflow's own pid (for SIGTERM and for
# reading its memory and descriptors), not a subshell's.
"$DRFLOW" --state-dir "$WORK/state" daemon --config "$WORK/drflow.yaml" --params-file "$PARAMS" \
    -p 'signals=[alarms]' -p quorum=1 -p confirm_window=0s -p detection_timeout=5s \
    --listen 127.0.0.1:0 --reconcile-every 0s --probe-every 0s \
    --target aws --endpoint-url "$EP" 2>"$WORK/daemon.err" &
DAEMON_PID=$!
until grep -q 'daemon: reading ' "$WORK/daemon.err"; do
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.err"; exit 1; }
    sleep 0.2
done

ARN="arn:aws:cloudwatch:$METRICS_REGION:123456789012:alarm:health-check-alarm-primary-$SUFFIX"
event() { # the state change event of the alarm into $1 at epoch ms $2, with id $3
    python3 - "$1" "$2" "$3" "$ARN" "$SUFFIX" "$METRICS_REGION" <<'PY'
import json, sys, datetime
state, ms, eid, arn, suffix, region = sys.argv[1:]
t = datetime.datetime.fromtimestamp(int(ms) / 1000, datetime.timezone.utc)
stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"
print(json.dumps({
    "version": "0", "id": eid, "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change", "region": region, "resources": [arn],
    "time": stamp[:19] + "Z",
    "detail": {"alarmName": f"health-check-alarm-primary-{suffix}",
               "state": {"value": state, "timestamp": stamp, "reason": "bench"}},
}))
PY
}
base="$(python3 -c 'import time; print(int(time.time() * 1000))')"
for i in $(seq 1 "$ROUNDS"); do
    at=$((base + i * 1000))
    aws_ "$STANDBY" sqs send-message --queue-url "$QUEUE_URL" --message-body "$(event OK $((at - 500)) "ok-$i")" >/dev/null
    aws_ "$STANDBY" sqs send-message --queue-url "$QUEUE_URL" --message-body "$(event ALARM "$at" "alarm-$i")" >/dev/null
    until [ "$(grep -c 'ended: ' "$WORK/daemon.err")" -ge "$i" ]; do
        kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$WORK/daemon.err"; exit 1; }
        sleep 0.05
    done
done

# --- soak: memory and file descriptors over SOAK events -------------------------------------
# Alarm states the triggers take without firing (OK of the watched alarm, each newer than the
# last), with every tenth a duplicate and every fiftieth malformed, sent ten to a batch.
SOAK="${SOAK:-10000}"
echo "== soak, $SOAK events"
usage() { # VmRSS in kB and open file descriptors of the daemon
    printf '%s kB RSS, %s fds' "$(awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status")" \
        "$(ls "/proc/$DAEMON_PID/fd" | wc -l)"
}
soak() { # sends events $1..$2 and waits until the daemon has received them all
    python3 - "$EP" "$QUEUE_URL" "$STANDBY" "$1" "$2" "$ARN" "$SUFFIX" "$base" <<'PY'
import json, sys, datetime, boto3
ep, url, region, first, last, arn, suffix, base = sys.argv[1:]
sqs = boto3.client("sqs", endpoint_url=ep, region_name=region,
                   aws_access_key_id="testing", aws_secret_access_key="testing")
def event(i):
    if i % 50 == 0:
        return "{not an event " + str(i)
    ms = int(base) + 10_000_000 + (i - i % 10 if i % 10 == 9 else i) * 10
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"
    return json.dumps({"version": "0", "id": f"soak-{i}", "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change", "resources": [arn],
        "detail": {"alarmName": f"health-check-alarm-primary-{suffix}",
                   "state": {"value": "OK", "timestamp": stamp}}})
ids = list(range(int(first), int(last) + 1))
for k in range(0, len(ids), 10):
    batch = [{"Id": str(i), "MessageBody": event(i)} for i in ids[k:k + 10]]
    sqs.send_message_batch(QueueUrl=url, Entries=batch)
PY
}
received() { curl -s "http://$METRICS_ADDR/metrics" | awk '/^drflow_daemon_events_received_total/ {s += $2} END {print s + 0}'; }
METRICS_ADDR="$(grep -o 'on http://[0-9.:]*' "$WORK/daemon.err" | head -1 | sed 's|on http://||')"
# A hundred at a time, each hundred taken before the next is sent: moto's ReceiveMessage slows
# down with the queue's length, and the daemon, not moto, is what is measured.
before="$(received)"
for first in $(seq 1 100 "$SOAK"); do
    soak "$first" $((first + 99))
    until [ "$(received)" -ge $((before + first + 99)) ]; do sleep 0.05; done
    [ "$first" = 901 ] && echo "after 1000 events: $(usage)"
done
echo "after $SOAK events: $(usage)"
curl -s "http://$METRICS_ADDR/metrics" | grep -E '^drflow_daemon_events_(dropped|deduplicated)_total|^drflow_daemon_firings_total'

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=

grep -o 'first API call [0-9]* ms' "$WORK/daemon.err" | awk '{print $4}' >"$WORK/latency.txt"
statuses="$(grep -o 'ended: [a-z_]*' "$WORK/daemon.err" | sort | uniq -c | tr '\n' ' ')"
python3 - "$WORK/latency.txt" "$ROUNDS" "$statuses" <<'PY'
import sys
ms = sorted(int(x) for x in open(sys.argv[1]) if x.strip())
n = len(ms)
if n == 0:
    sys.exit("no run reported its first API call")
pct = lambda p: ms[min(n - 1, int(round(p / 100 * (n - 1))))]
print(f"runs measured: {n} of {sys.argv[2]} events; run ends: {sys.argv[3].strip()}")
print(f"event received -> first failover API call: p50 {pct(50)} ms, p99 {pct(99)} ms, max {ms[-1]} ms")
PY
