//! Reading the alarm queue for `drflow daemon`: SQS long polling (`ReceiveMessage` with
//! `WaitTimeSeconds`), and `DeleteMessage` once the daemon has journaled what a message said.
//! A message not deleted comes back after its visibility timeout: delivery is at least once,
//! and the daemon's intake drops the copies.

use aws_sdk_sqs::types::MessageSystemAttributeName;

use super::clients::Clients;
use super::error::Call;
use crate::backend::CloudError;

const SVC: &str = "sqs";

/// One message received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// `MessageId`.
    pub message_id: String,
    /// `ReceiptHandle`: what [`delete`] needs.
    pub receipt: String,
    /// `Body`: the EventBridge event, as JSON text (or whatever a sender put there).
    pub body: String,
    /// `SentTimestamp` (ms since the Unix epoch), when SQS says it.
    pub sent_at_ms: Option<u64>,
}

/// `ReceiveMessage` on `url` in `region`: waits up to `wait_s` seconds (20 at most, SQS's long
/// polling) for up to `max` messages (10 at most), hiding each for `visibility_s` seconds.
/// Errors: the SDK's, mapped to the seam's kinds (`access_denied`, `unavailable`, …).
pub async fn receive(
    c: &Clients,
    region: &str,
    url: &str,
    wait_s: i32,
    max: i32,
    visibility_s: i32,
) -> Result<Vec<QueueMessage>, CloudError> {
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, SVC, "ReceiveMessage"),
            rc.sqs
                .receive_message()
                .queue_url(url)
                .wait_time_seconds(wait_s.clamp(0, 20))
                .max_number_of_messages(max.clamp(1, 10))
                .visibility_timeout(visibility_s)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send(),
        )
        .await?;
    Ok(out
        .messages()
        .iter()
        .map(|m| QueueMessage {
            message_id: m.message_id().unwrap_or_default().to_string(),
            receipt: m.receipt_handle().unwrap_or_default().to_string(),
            body: m.body().unwrap_or_default().to_string(),
            sent_at_ms: m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse().ok()),
        })
        .collect())
}

/// `DeleteMessage` of one received message.
pub async fn delete(c: &Clients, region: &str, url: &str, receipt: &str) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    c.call(
        Call::new(region, SVC, "DeleteMessage"),
        rc.sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send(),
    )
    .await
    .map(|_| ())
}
