"""moto's server, with eight fixes to moto 5.2.5 where it answers differently from AWS.

It starts moto as `python3 -m moto.server` would, with the same arguments. The fixes, and only
these (docs/aws.md, "Testing against moto"; the opt-in emulation at the end of the file is for
the failover bench alone):

- CloudWatch `PutCompositeAlarm`: moto stores composite alarms (its PutMetricAlarm handler reads
  `AlarmRule` "to re-use this method for composite alarms as well", DescribeAlarms returns them
  under `CompositeAlarms`, DeleteAlarms deletes them), but does not route the action to that
  handler and answers 500.
- S3 `GetBucketVersioning`: S3 answers `<VersioningConfiguration>`; moto's serializer names the
  root element `<GetBucketVersioningResponse>`. The AWS SDKs that check the root element (the
  Rust SDK does; botocore does not) then fail to read the answer.
- RDS `DeleteDBCluster` and `RemoveFromGlobalCluster`: moto keeps global clusters in one
  region's backend and looks for them in the caller's region only, so a member deleted or
  removed in another region stays a member (a refused second CreateDBCluster even adds it
  twice), and the global cluster can never be deleted ("is not empty"). AWS removes the member.
- ACM `UpdateCertificateOptions`: moto stores a certificate's options (RequestCertificate takes
  them, DescribeCertificate returns them) but has no handler to change them, and answers 500.
- KMS `ReplicateKey`: moto's replica is a shallow copy that shares the primary key's aliases, so
  an alias made in one region shows in the other and `CreateAlias` there says it already exists.
  AWS keeps aliases per region.
- SQS `SetQueueAttributes`: moto clears a queue's access policy whenever the call does not name
  `Policy`. AWS changes only the attributes named.
- EC2 `DescribeLaunchTemplates`: moto answers with the tags a template was created with, not
  those CreateTags added later (its tag store has them). AWS answers with the current tags.
- EventBridge `PutEvents`: moto lets a rule with a schedule and no event pattern match every
  event, so an event put in a region with a scheduled rule reaches that rule's target (the
  replication-lag monitor's Lambda, which moto cannot invoke: it answers 500). AWS matches
  events against event patterns only; a schedule rule matches none.
"""

import os

from moto.acm.responses import AWSCertificateManagerResponse
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import EmptyResult
from moto.core.serialize import S3Serializer
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.events.models import Rule
from moto.kms.models import KmsBackend
from moto.rds.models import RDSBackend, rds_backends
from moto.server import main
from moto.sqs.models import Queue

if not hasattr(CloudWatchResponse, "put_composite_alarm"):
    CloudWatchResponse.put_composite_alarm = CloudWatchResponse.put_metric_alarm

if not hasattr(AWSCertificateManagerResponse, "update_certificate_options"):

    def _update_certificate_options(self):
        cert = self.acm_backend.get_certificate(self._get_param("CertificateArn"))
        cert.cert_options.update(self._get_param("Options") or {})
        return EmptyResult()

    AWSCertificateManagerResponse.update_certificate_options = _update_certificate_options

_replicate_key = KmsBackend.replicate_key


def _replicate_key_with_own_aliases(self, *args, **kwargs):
    replica = _replicate_key(self, *args, **kwargs)
    replica.aliases = {}
    return replica


KmsBackend.replicate_key = _replicate_key_with_own_aliases

# A template's tags are read from the tag store when asked for (the setter its constructor calls
# has nothing left to keep).
LaunchTemplate.tags = property(lambda self: self.get_tags(), lambda self, _value: None)

_set_queue_attributes = Queue._set_attributes


def _set_queue_attributes_keeping_the_policy(self, attributes, *args, **kwargs):
    # None while the queue is being made: its first call sets the policy as asked.
    policy = getattr(self, "_policy_json", None)
    _set_queue_attributes(self, attributes, *args, **kwargs)
    if "Policy" not in attributes and policy is not None:
        self._policy_json = policy


Queue._set_attributes = _set_queue_attributes_keeping_the_policy

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


def _leave_every_global_cluster(account_id, cluster_arn):
    for backend in rds_backends[account_id].values():
        for global_cluster in backend.global_clusters.values():
            # Every entry: a refused second CreateDBCluster adds the member again.
            global_cluster.members[:] = [
                m for m in global_cluster.members if m.db_cluster_arn != cluster_arn
            ]


def _delete_db_cluster_from_every_global_cluster(self, *args, **kwargs):
    cluster = _delete_db_cluster(self, *args, **kwargs)
    _leave_every_global_cluster(self.account_id, cluster.db_cluster_arn)
    return cluster


RDSBackend.delete_db_cluster = _delete_db_cluster_from_every_global_cluster


def _remove_from_global_cluster(self, global_cluster_identifier, db_cluster_identifier):
    """Looks for the global cluster in every region's backend (moto keeps them in us-east-1's
    and looks in the caller's region only, doing nothing when it is elsewhere)."""
    for backend in rds_backends[self.account_id].values():
        global_cluster = backend.global_clusters.get(global_cluster_identifier)
        if global_cluster is None:
            continue
        arns = [
            m.db_cluster_arn
            for m in global_cluster.members
            if db_cluster_identifier in (m.db_cluster_arn, m.db_cluster_identifier)
        ]
        for arn in arns:
            _leave_every_global_cluster(self.account_id, arn)
        return global_cluster
    return None


RDSBackend.remove_from_global_cluster = _remove_from_global_cluster

_send_to_targets = Rule.send_to_targets


def _send_to_targets_of_pattern_rules(self, event, *args, **kwargs):
    if self.scheduled_expression and not self.event_pattern.get_pattern():
        return None
    return _send_to_targets(self, event, *args, **kwargs)


Rule.send_to_targets = _send_to_targets_of_pattern_rules

# --- opt-in, for the failover bench only ------------------------------------------------------
# moto has no Aurora global failover and no TestDNSAnswer, so a failover run on it stops at the
# promotion. With DRFLOW_MOTO_EMULATE=failover set, this server answers both the simplest way
# that matches AWS's documented outcome, so that the bench (benches/failover_vs_awscli.sh) times
# the whole sequence for drflow and for the aws CLI alike. The tests never set it: what AWS does
# there is tested with the SDK's mock clients (steps/src/aws/failover.rs) and the sim.
if "failover" in os.environ.get("DRFLOW_MOTO_EMULATE", "").split(","):
    from moto.rds.responses import RDSResponse
    from moto.route53.responses import Route53
    from moto.route53.urls import url_paths as route53_paths
    from moto.core.responses import ActionResult

    def _global_cluster(self, identifier):
        for backend in rds_backends[self.current_account].values():
            if identifier in backend.global_clusters:
                return backend.global_clusters[identifier]
        from moto.rds.exceptions import RDSClientError

        raise RDSClientError("GlobalClusterNotFoundFault", f"{identifier} not found")

    def _make_writer(self):
        """FailoverGlobalCluster and SwitchoverGlobalCluster: the target member becomes the
        writer at once (AWS takes a minute or two; the bench measures the callers)."""
        cluster = _global_cluster(self, self._get_param("GlobalClusterIdentifier"))
        target = self._get_param("TargetDbClusterIdentifier")
        if not any(target in (m.db_cluster_arn, m.db_cluster_identifier) for m in cluster.members):
            from moto.rds.exceptions import InvalidParameterValue

            raise InvalidParameterValue(f"{target} is not a member of the global cluster")
        for m in cluster.members:
            m.is_writer = target in (m.db_cluster_arn, m.db_cluster_identifier)
        return ActionResult({"GlobalCluster": cluster})

    RDSResponse.failover_global_cluster = _make_writer
    RDSResponse.switchover_global_cluster = _make_writer

    def _test_dns_answer(self):
        """TestDNSAnswer: what a resolver gets for the record, from the zone's record sets: the
        heaviest weighted set, or the PRIMARY failover set (moto never fails a health check)."""
        zone = self.backend.get_hosted_zone(self._get_param("HostedZoneId"))
        name = self._get_param("RecordName").rstrip(".") + "."
        rtype = self._get_param("RecordType")
        sets = [r for r in zone.rrsets if r.name.rstrip(".") + "." == name and r.type == rtype]
        weighted = [r for r in sets if r.weight is not None]
        if weighted:
            sets = [max(weighted, key=lambda r: int(r.weight))]
        elif any(r.failover for r in sets):
            sets = [r for r in sets if r.failover == "PRIMARY"]
        data = []
        for r in sets:
            if r.alias_target:
                # AWS answers with the alias target's addresses; its name stands for them.
                data.append(r.alias_target.get("DNSName", "").rstrip("."))
            data += [v["Value"] if isinstance(v, dict) else v for v in (r.records or [])]
        return ActionResult(
            {
                "Nameserver": "ns-0.awsdns-00.com",
                "RecordName": name,
                "RecordType": rtype,
                "RecordData": data,
                "ResponseCode": "NOERROR" if data else "NXDOMAIN",
                "Protocol": "UDP",
            }
        )

    Route53.test_dns_answer = _test_dns_answer
    route53_paths[r"{0}/(?P<api_version>[\d_-]+)/testdnsanswer$"] = Route53.dispatch

if __name__ == "__main__":
    main()
