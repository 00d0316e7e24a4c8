//! The typed failover interface on the sim: each method is one AWS API, answered by the
//! process that owns it (Route 53 and CloudWatch by `route53.rs`/`cloudwatch.rs`/`dns.rs`,
//! the rest here). Reads cost nothing; actions cost the API's latency on the run's clock.

use super::{SimBackend, World, app, aurora, autoscaling, cloudwatch, dns, route53};
use crate::backend::{
    AlarmState, ChangeInfo, CloudError, CloudFuture, Datapoint, DnsAnswer, FailoverApi,
    GlobalClusterStatus, GroupCapacity, HealthCheckStatus, MetricQuery, ProbeResult, RecordSet,
    TargetHealth,
};

impl SimBackend {
    fn read<'a, T: Send + 'a>(
        &'a self,
        op: impl FnOnce(&World) -> Result<T, CloudError> + Send + 'a,
    ) -> CloudFuture<'a, T> {
        Box::pin(std::future::ready(self.with_world(false, |w| op(w))))
    }

    fn write<'a, T: Send + 'a>(
        &'a self,
        op: impl FnOnce(&mut World) -> Result<T, CloudError> + Send + 'a,
    ) -> CloudFuture<'a, T> {
        Box::pin(self.act(op))
    }
}

impl FailoverApi for SimBackend {
    fn get_health_check_status<'a>(
        &'a self,
        health_check_id: &'a str,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        self.read(move |w| route53::get_health_check_status(w, health_check_id))
    }

    fn set_health_check_inverted<'a>(
        &'a self,
        health_check_id: &'a str,
        inverted: bool,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        self.write(move |w| route53::set_health_check_inverted(w, health_check_id, inverted))
    }

    fn describe_alarms<'a>(
        &'a self,
        region: &'a str,
        name_prefix: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<AlarmState>> {
        self.read(move |w| cloudwatch::describe_alarms(w, region, name_prefix))
    }

    fn get_metric_data<'a>(
        &'a self,
        query: &'a MetricQuery,
        start_ms: u64,
        end_ms: u64,
    ) -> CloudFuture<'a, Vec<Datapoint>> {
        self.read(move |w| cloudwatch::get_metric_data(w, query, start_ms, end_ms))
    }

    fn describe_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        self.read(move |w| aurora::describe(w, global_cluster_id))
    }

    fn switchover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        self.write(move |w| aurora::switchover(w, global_cluster_id, target_db_cluster_arn))
    }

    fn failover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
        allow_data_loss: bool,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        self.write(move |w| {
            aurora::failover(w, global_cluster_id, target_db_cluster_arn, allow_data_loss)
        })
    }

    fn describe_target_health<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
    ) -> CloudFuture<'a, Vec<TargetHealth>> {
        self.read(move |w| autoscaling::describe_target_health(w, region, target_group_arn))
    }

    fn deregister_targets<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
        target_ids: &'a [String],
    ) -> CloudFuture<'a, ()> {
        self.write(move |w| {
            autoscaling::deregister_targets(w, region, target_group_arn, target_ids)
        })
    }

    fn describe_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, GroupCapacity> {
        self.read(move |w| autoscaling::describe_group(w, region, name))
    }

    fn update_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
        min_size: Option<u32>,
        max_size: Option<u32>,
        desired_capacity: Option<u32>,
    ) -> CloudFuture<'a, GroupCapacity> {
        self.write(move |w| {
            autoscaling::update_group(w, region, name, min_size, max_size, desired_capacity)
        })
    }

    fn list_resource_record_sets<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Vec<RecordSet>> {
        self.read(move |w| dns::list_resource_record_sets(w, hosted_zone_id, name))
    }

    fn set_record_weight<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
        record_type: &'a str,
        set_identifier: &'a str,
        weight: u8,
    ) -> CloudFuture<'a, ChangeInfo> {
        self.write(move |w| {
            dns::set_record_weight(w, hosted_zone_id, name, record_type, set_identifier, weight)
        })
    }

    fn get_change<'a>(&'a self, change_id: &'a str) -> CloudFuture<'a, ChangeInfo> {
        self.read(move |w| dns::get_change(w, change_id))
    }

    fn test_dns_answer<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        record_name: &'a str,
        record_type: &'a str,
    ) -> CloudFuture<'a, DnsAnswer> {
        self.read(move |w| dns::test_dns_answer(w, hosted_zone_id, record_name, record_type))
    }

    fn publish<'a>(
        &'a self,
        region: &'a str,
        topic_arn: &'a str,
        subject: &'a str,
        message: &'a str,
    ) -> CloudFuture<'a, String> {
        self.write(move |w| app::publish(w, region, topic_arn, subject, message))
    }

    fn probe<'a>(
        &'a self,
        from_region: &'a str,
        url: &'a str,
        search_string: Option<&'a str>,
    ) -> CloudFuture<'a, ProbeResult> {
        Box::pin(async move {
            let (result, timeout_ms) = self.with_world(false, |w| {
                Ok((
                    app::probe(w, from_region, url, search_string)?,
                    w.config.probe_timeout_ms,
                ))
            })?;
            // An endpoint that does not answer costs the probe its whole timeout.
            if let (Some(clock), None) = (&self.clock, result.status) {
                clock
                    .sleep(std::time::Duration::from_millis(timeout_ms))
                    .await;
            }
            Ok(result)
        })
    }
}
