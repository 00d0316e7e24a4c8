//! The typed failover actions on AWS (a stub until their mapping lands: every action says so).

use super::AwsBackend;
use crate::backend::{
    AlarmState, ChangeInfo, CloudError, CloudFuture, Datapoint, DnsAnswer, ErrorKind, FailoverApi,
    GlobalClusterStatus, GroupCapacity, HealthCheckStatus, MetricQuery, ProbeResult, RecordSet,
    TargetHealth,
};

fn todo<'a, T: Send + 'a>(api: &'static str) -> CloudFuture<'a, T> {
    Box::pin(async move {
        Err(CloudError::new(
            ErrorKind::NotBuilt,
            format!("the aws target has no mapping for {api} yet"),
        ))
    })
}

impl FailoverApi for AwsBackend {
    fn get_health_check_status<'a>(
        &'a self,
        _health_check_id: &'a str,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        todo("GetHealthCheckStatus")
    }

    fn set_health_check_inverted<'a>(
        &'a self,
        _health_check_id: &'a str,
        _inverted: bool,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        todo("SetHealthCheckInverted")
    }

    fn describe_alarms<'a>(
        &'a self,
        _region: &'a str,
        _name_prefix: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<AlarmState>> {
        todo("DescribeAlarms")
    }

    fn get_metric_data<'a>(
        &'a self,
        _query: &'a MetricQuery,
        _start_ms: u64,
        _end_ms: u64,
    ) -> CloudFuture<'a, Vec<Datapoint>> {
        todo("GetMetricData")
    }

    fn describe_global_cluster<'a>(
        &'a self,
        _global_cluster_id: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        todo("DescribeGlobalCluster")
    }

    fn switchover_global_cluster<'a>(
        &'a self,
        _global_cluster_id: &'a str,
        _target_db_cluster_arn: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        todo("SwitchoverGlobalCluster")
    }

    fn failover_global_cluster<'a>(
        &'a self,
        _global_cluster_id: &'a str,
        _target_db_cluster_arn: &'a str,
        _allow_data_loss: bool,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        todo("FailoverGlobalCluster")
    }

    fn describe_target_health<'a>(
        &'a self,
        _region: &'a str,
        _target_group_arn: &'a str,
    ) -> CloudFuture<'a, Vec<TargetHealth>> {
        todo("DescribeTargetHealth")
    }

    fn deregister_targets<'a>(
        &'a self,
        _region: &'a str,
        _target_group_arn: &'a str,
        _target_ids: &'a [String],
    ) -> CloudFuture<'a, ()> {
        todo("DeregisterTargets")
    }

    fn describe_auto_scaling_group<'a>(
        &'a self,
        _region: &'a str,
        _name: &'a str,
    ) -> CloudFuture<'a, GroupCapacity> {
        todo("DescribeAutoScalingGroup")
    }

    fn update_auto_scaling_group<'a>(
        &'a self,
        _region: &'a str,
        _name: &'a str,
        _min_size: Option<u32>,
        _max_size: Option<u32>,
        _desired_capacity: Option<u32>,
    ) -> CloudFuture<'a, GroupCapacity> {
        todo("UpdateAutoScalingGroup")
    }

    fn list_resource_record_sets<'a>(
        &'a self,
        _hosted_zone_id: &'a str,
        _name: &'a str,
    ) -> CloudFuture<'a, Vec<RecordSet>> {
        todo("ListResourceRecordSets")
    }

    fn set_record_weight<'a>(
        &'a self,
        _hosted_zone_id: &'a str,
        _name: &'a str,
        _record_type: &'a str,
        _set_identifier: &'a str,
        _weight: u8,
    ) -> CloudFuture<'a, ChangeInfo> {
        todo("SetRecordWeight")
    }

    fn test_dns_answer<'a>(
        &'a self,
        _hosted_zone_id: &'a str,
        _record_name: &'a str,
        _record_type: &'a str,
    ) -> CloudFuture<'a, DnsAnswer> {
        todo("TestDnsAnswer")
    }

    fn publish<'a>(
        &'a self,
        _region: &'a str,
        _topic_arn: &'a str,
        _subject: &'a str,
        _message: &'a str,
    ) -> CloudFuture<'a, String> {
        todo("Publish")
    }

    fn probe<'a>(
        &'a self,
        _from_region: &'a str,
        _url: &'a str,
        _search_string: Option<&'a str>,
    ) -> CloudFuture<'a, ProbeResult> {
        todo("Probe")
    }
    fn get_change<'a>(&'a self, _change_id: &'a str) -> CloudFuture<'a, ChangeInfo> {
        todo("GetChange")
    }
}
