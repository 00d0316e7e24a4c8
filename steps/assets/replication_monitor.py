"""drflow replication-lag monitor (AWS Lambda, Python 3.12).

EventBridge invokes it once a minute (the shortest schedule EventBridge allows); it samples the
Aurora Global Database lag SAMPLES times, SAMPLE_INTERVAL_SECONDS apart, inside one invocation,
so the lag is measured every 30 seconds. Each sample is published as a high-resolution
(1-second storage) metric, which a 30-second CloudWatch alarm can watch; the alarm fires when
lag exceeds 30 s. It runs in the standby region, where Aurora publishes the lag metrics.

Environment:
  GLOBAL_CLUSTER_ID        the global cluster (aurora-global-<suffix>)
  SECONDARY_CLUSTER_ID     the cluster in this region whose lag is measured
  METRIC_NAMESPACE         where to publish (the IAM policy allows only this namespace)
  SAMPLES                  samples per invocation (2)
  SAMPLE_INTERVAL_SECONDS  seconds between samples (30)
"""
import datetime
import json
import os
import time

import boto3

rds = boto3.client("rds")
cloudwatch = boto3.client("cloudwatch")

GLOBAL_CLUSTER_ID = os.environ["GLOBAL_CLUSTER_ID"]
SECONDARY_CLUSTER_ID = os.environ["SECONDARY_CLUSTER_ID"]
NAMESPACE = os.environ.get("METRIC_NAMESPACE", "DrFlow/Trading")
SAMPLES = int(os.environ.get("SAMPLES", "2"))
INTERVAL = float(os.environ.get("SAMPLE_INTERVAL_SECONDS", "30"))


def global_status():
    """Whether the global cluster has a writer and the secondary is attached."""
    resp = rds.describe_global_clusters(GlobalClusterIdentifier=GLOBAL_CLUSTER_ID)
    members = resp["GlobalClusters"][0].get("GlobalClusterMembers", [])
    writers = [m for m in members if m.get("IsWriter")]
    secondary_attached = any(SECONDARY_CLUSTER_ID in m["DBClusterArn"] for m in members)
    return bool(writers), secondary_attached


def latest_lag_ms():
    """The newest AuroraGlobalDBReplicationLag datapoint (milliseconds), or None."""
    now = datetime.datetime.now(datetime.timezone.utc)
    resp = cloudwatch.get_metric_data(
        MetricDataQueries=[{
            "Id": "lag",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/RDS",
                    "MetricName": "AuroraGlobalDBReplicationLag",
                    "Dimensions": [{"Name": "DBClusterIdentifier", "Value": SECONDARY_CLUSTER_ID}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
        }],
        StartTime=now - datetime.timedelta(minutes=5),
        EndTime=now,
        ScanBy="TimestampDescending",
    )
    values = resp["MetricDataResults"][0]["Values"]
    return values[0] if values else None


def publish(lag_ms, has_writer, attached):
    data = [
        {"MetricName": "GlobalDbHasWriter", "Value": 1.0 if has_writer else 0.0,
         "Unit": "Count", "StorageResolution": 1},
        {"MetricName": "SecondaryAttached", "Value": 1.0 if attached else 0.0,
         "Unit": "Count", "StorageResolution": 1},
    ]
    if lag_ms is not None:
        data.append({"MetricName": "ReplicationLagMs", "Value": float(lag_ms),
                     "Unit": "Milliseconds", "StorageResolution": 1,
                     "Dimensions": [{"Name": "DBClusterIdentifier", "Value": SECONDARY_CLUSTER_ID}]})
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)


def handler(event, context):
    samples = []
    for i in range(SAMPLES):
        started = time.monotonic()
        try:
            has_writer, attached = global_status()
            lag = latest_lag_ms()
            publish(lag, has_writer, attached)
            samples.append({"lag_ms": lag, "has_writer": has_writer, "attached": attached})
        except Exception as exc:  # one failed sample must not lose the next one
            print(json.dumps({"level": "error", "sample": i, "error": str(exc)}))
        if i + 1 < SAMPLES:
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
    print(json.dumps({"level": "info", "samples": samples}))
    return {"samples": samples}
