//! TEMPORARY: a stand-in for simworld's `impl FailoverApi for SimBackend`, so the failover
//! steps compile before it lands. Removed when branch `simworld` is merged.
#![allow(unused_variables)]

use crate::backend::*;
use crate::sim::SimBackend;

fn missing<T: Send + 'static>() -> CloudFuture<'static, T> {
    Box::pin(async {
        Err(CloudError::new(
            ErrorKind::NotBuilt,
            "sim: failover API not built yet",
        ))
    })
}

impl FailoverApi for SimBackend {
    fn get_health_check_status<'a>(
        &'a self,
        health_check_id: &'a str,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        missing()
    }
    fn set_health_check_inverted<'a>(
        &'a self,
        health_check_id: &'a str,
        inverted: bool,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        missing()
    }
    fn describe_alarms<'a>(
        &'a self,
        region: &'a str,
        name_prefix: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<AlarmState>> {
        missing()
    }
    fn get_metric_data<'a>(
        &'a self,
        query: &'a MetricQuery,
        start_ms: u64,
        end_ms: u64,
    ) -> CloudFuture<'a, Vec<Datapoint>> {
        missing()
    }
    fn describe_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        missing()
    }
    fn switchover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        missing()
    }
    fn failover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
        allow_data_loss: bool,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        missing()
    }
    fn describe_target_health<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
    ) -> CloudFuture<'a, Vec<TargetHealth>> {
        missing()
    }
    fn deregister_targets<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
        target_ids: &'a [String],
    ) -> CloudFuture<'a, ()> {
        missing()
    }
    fn describe_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, GroupCapacity> {
        missing()
    }
    fn update_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
        min_size: Option<u32>,
        max_size: Option<u32>,
        desired_capacity: Option<u32>,
    ) -> CloudFuture<'a, GroupCapacity> {
        missing()
    }
    fn list_resource_record_sets<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Vec<RecordSet>> {
        missing()
    }
    fn set_record_weight<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
        record_type: &'a str,
        set_identifier: &'a str,
        weight: u8,
    ) -> CloudFuture<'a, ChangeInfo> {
        missing()
    }
    fn get_change<'a>(&'a self, change_id: &'a str) -> CloudFuture<'a, ChangeInfo> {
        missing()
    }
    fn test_dns_answer<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        record_name: &'a str,
        record_type: &'a str,
    ) -> CloudFuture<'a, DnsAnswer> {
        missing()
    }
    fn publish<'a>(
        &'a self,
        region: &'a str,
        topic_arn: &'a str,
        subject: &'a str,
        message: &'a str,
    ) -> CloudFuture<'a, String> {
        missing()
    }
    fn probe<'a>(
        &'a self,
        from_region: &'a str,
        url: &'a str,
        search_string: Option<&'a str>,
    ) -> CloudFuture<'a, ProbeResult> {
        missing()
    }
}
