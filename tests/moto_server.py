"""moto's server, with three fixes to moto 5.2.5 where it answers differently from AWS.

It starts moto as `python3 -m moto.server` would, with the same arguments. The fixes, and only
these (docs/aws.md, "Testing against moto"):

- CloudWatch `PutCompositeAlarm`: moto stores composite alarms (its PutMetricAlarm handler reads
  `AlarmRule` "to re-use this method for composite alarms as well", DescribeAlarms returns them
  under `CompositeAlarms`, DeleteAlarms deletes them), but does not route the action to that
  handler and answers 500.
- S3 `GetBucketVersioning`: S3 answers `<VersioningConfiguration>`; moto's serializer names the
  root element `<GetBucketVersioningResponse>`. The AWS SDKs that check the root element (the
  Rust SDK does; botocore does not) then fail to read the answer.
- RDS `DeleteDBCluster`: moto keeps each region's global clusters apart, so deleting a member
  cluster in one region leaves it a member of a global cluster made through another region,
  and the global cluster can never be deleted ("is not empty"). AWS removes the member.
"""

from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.serialize import S3Serializer
from moto.rds.models import RDSBackend, rds_backends
from moto.server import main

if not hasattr(CloudWatchResponse, "put_composite_alarm"):
    CloudWatchResponse.put_composite_alarm = CloudWatchResponse.put_metric_alarm

_s3_result = S3Serializer._serialized_result_to_response


def _s3_result_with_aws_roots(self, resp, result, shape, serialized_result):
    resp = _s3_result(self, resp, result, shape, serialized_result)
    body = resp.get("body")
    if self.operation_model.name == "GetBucketVersioning" and isinstance(body, str):
        resp["body"] = body.replace(
            "GetBucketVersioningResponse", "VersioningConfiguration"
        )
    return resp


S3Serializer._serialized_result_to_response = _s3_result_with_aws_roots

_delete_db_cluster = RDSBackend.delete_db_cluster


def _delete_db_cluster_from_every_global_cluster(self, *args, **kwargs):
    cluster = _delete_db_cluster(self, *args, **kwargs)
    for backend in rds_backends[self.account_id].values():
        for global_cluster in backend.global_clusters.values():
            if cluster in global_cluster.members:
                global_cluster.members.remove(cluster)
    return cluster


RDSBackend.delete_db_cluster = _delete_db_cluster_from_every_global_cluster

if __name__ == "__main__":
    main()
