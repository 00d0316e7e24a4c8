//! Run coordination between drflow daemons on DynamoDB: the run leases
//! ([`DynamoDbLeaseStore`], a [`LeaseStore`]) and the shared copy of the journal
//! ([`DynamoDbLog`], a [`SharedLog`]), both in one table.
//!
//! The table is the `dynamodb.global_table` step's `drflow-state-<env_suffix>`: a hash key only,
//! the string attribute `pk`. Two kinds of item share it, told apart by the key's prefix:
//!
//! | item | `pk` | other attributes |
//! |---|---|---|
//! | lease | `lease#<key>` | `run_id` (S, empty once released), `pid` (N), `proc_start` (S, when known), `hostname` (S), `acquired_at`, `heartbeat_at`, `expires_at` (N, seconds since the Unix epoch, fractional), `token` (N) |
//! | event | `event#<run_id>#<seq, zero-padded to 10 digits>` | `run_id` (S), `seq` (N), `body` (S, the event's JSON) |
//!
//! A released lease keeps its item (with an empty `run_id`), so the next grant's fencing token
//! goes on from the last one instead of starting again at 1: a token must never be handed out
//! twice, or a writer fenced out long ago could pass the check again. For the same reason
//! neither kind of item carries the table's TTL attribute: DynamoDB must never expire a lease
//! item, and events go only when their run is deleted ([`SharedLog::delete_run`]).
//!
//! Every decision here rests on DynamoDB's conditional writes: a lease is granted only if its
//! token is still the one read, an event is written only if its key is new and every fencing
//! lease still carries the writer's token. DynamoDB evaluates a condition against the replica
//! in the region the request went to, and serializes conditional writes to an item within that
//! region only. Between the regions of a global table (multi-Region eventual consistency, the
//! default) writes replicate asynchronously, and concurrent writes to the same item are settled
//! by "last writer wins" (AWS DynamoDB Developer Guide, "How DynamoDB global tables work",
//! section "Conflict resolution":
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html>).
//! Two daemons that each wrote to their own region's replica could therefore both be granted
//! the same lease, and one grant would silently overwrite the other after replication. So both
//! daemons must point these stores at the SAME region's replica; the other region's replica
//! is a copy for when that region is lost, and then both must move to the surviving one
//! together.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_types::request_id::RequestId;
use drflow_engine::{
    Fence, Holder, HolderIdentity, LeaseFuture, LeaseGrant, LeaseStore, LeaseWallClock, LockError,
    SharedClock, SharedEvent, SharedLog, SharedLogError, Timestamp, holder_is_gone,
};

use super::clients::Clients;
use super::error::Call;
use crate::backend::{CloudError, ErrorKind};

const SVC: &str = "dynamodb";

/// The table's only key attribute.
const PK: &str = "pk";

/// The most items DynamoDB takes in one `TransactWriteItems`.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// The largest item DynamoDB stores (400 KB).
const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The most data one `TransactWriteItems` may write (4 MB), less room for the fences' checks.
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;

/// The most requests DynamoDB takes in one `BatchWriteItem`.
const MAX_BATCH_WRITE: usize = 25;

/// How often a `BatchWriteItem`'s unprocessed deletes are sent again before giving up.
const BATCH_RETRIES: u32 = 8;

/// AWS's code for a write whose condition did not hold.
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// AWS's code for a transaction refused as a whole; its reasons say which item refused it.
const TRANSACTION_CANCELED: &str = "TransactionCanceledException";

/// The code of a cancellation reason for an item whose condition did not hold.
const REASON_CONDITION_FAILED: &str = "ConditionalCheckFailed";

fn lease_pk(key: &str) -> String {
    format!("lease#{key}")
}

fn event_pk(run_id: &str, seq: i64) -> String {
    format!("event#{run_id}#{seq:010}")
}

/// An event's size as DynamoDB counts it (attribute names and values in UTF-8 bytes, a number
/// at most 21 bytes), to keep within its item and transaction limits.
fn event_size(e: &SharedEvent) -> usize {
    PK.len()
        + event_pk(&e.run_id, e.seq).len()
        + "run_id".len()
        + e.run_id.len()
        + "seq".len()
        + 21
        + "body".len()
        + e.body.len()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A failed call: the seam's error, with what AWS answered beyond its message.
#[derive(Debug)]
struct Failure {
    error: CloudError,
    /// The AWS error code, when AWS answered one.
    code: Option<String>,
    /// A cancelled transaction's reason codes, one per item in the order sent (`None` for an
    /// item that did not cancel it).
    reasons: Vec<String>,
}

impl Failure {
    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// No cancellation reasons: for every operation but `TransactWriteItems`.
fn no_reasons<E>(_: &E) -> Vec<String> {
    Vec::new()
}

fn transaction_reasons(e: &TransactWriteItemsError) -> Vec<String> {
    match e {
        TransactWriteItemsError::TransactionCanceledException(t) => t
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// One SDK call through [`Clients::call`] (logged, recorded, its error mapped), keeping the AWS
/// error code and a transaction's reasons: the mapped error has them only as text, and a lost
/// condition is an answer here, not a failure.
async fn call<T, E>(
    c: &Clients,
    region: &str,
    operation: &'static str,
    reasons_of: fn(&E) -> Vec<String>,
    fut: impl Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send,
) -> Result<T, Failure>
where
    T: RequestId + Send,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut code = None;
    let mut reasons = Vec::new();
    let result = c
        .call(Call::new(region, SVC, operation), async {
            let out = fut.await;
            if let Err(SdkError::ServiceError(se)) = &out {
                code = se.err().code().map(str::to_owned);
                reasons = reasons_of(se.err());
            }
            out
        })
        .await;
    result.map_err(|error| Failure {
        error,
        code,
        reasons,
    })
}

/// What to add to a message about a table that is not there.
fn table_hint(f: &Failure) -> &'static str {
    if f.error.kind == ErrorKind::NotFound {
        ". hint: the table is the `dynamodb.global_table` step's `drflow-state-<env>` table; \
         provision it (or point drflow at the region that has its replica)"
    } else {
        ""
    }
}

// ---------------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------------

/// Run leases in a DynamoDB table (see the module docs for the item and why every daemon must
/// use the same region), with the semantics of [`drflow_engine::FileLeaseStore`]: a lease whose
/// holder is gone ([`holder_is_gone`]) is taken over, a grant's fencing token is one more than
/// the key's last, and a renewal or release by an older grant is refused.
///
/// Errors other than [`LockError::Held`] and [`LockError::Lost`] are [`LockError::Store`], whose
/// message names the table, the region and what AWS said.
#[derive(Debug)]
pub struct DynamoDbLeaseStore {
    clients: Clients,
    region: String,
    table: String,
    me: HolderIdentity,
    clock: SharedClock,
}

/// One lease item as read.
#[derive(Debug)]
struct LeaseItem {
    holder: Holder,
    proc_start: Option<String>,
    /// The `token` attribute exactly as stored, for the condition of the next grant.
    stored_token: Option<String>,
}

impl DynamoDbLeaseStore {
    /// Leases in `table` of `region`, reached through `clients`, held as this process
    /// ([`HolderIdentity::current`]) and judged on wall time ([`LeaseWallClock`]). Nothing is
    /// contacted until a lease is asked for.
    pub fn new(clients: Clients, region: &str, table: &str) -> DynamoDbLeaseStore {
        DynamoDbLeaseStore {
            clients,
            region: region.to_owned(),
            table: table.to_owned(),
            me: HolderIdentity::current(),
            clock: Arc::new(LeaseWallClock),
        }
    }

    /// Holds leases as `me` instead of this process (tests: two "hosts" in one process).
    pub fn with_identity(mut self, me: HolderIdentity) -> DynamoDbLeaseStore {
        self.me = me;
        self
    }

    /// Judges expiry and stamps leases on `clock` (milliseconds since the Unix epoch; the
    /// [`drflow_engine::LeaseOptions::clock`]).
    pub fn with_clock(mut self, clock: SharedClock) -> DynamoDbLeaseStore {
        self.clock = clock;
        self
    }

    fn now(&self) -> Timestamp {
        self.clock.now_ms() as f64 / 1000.0
    }

    fn store_error(&self, doing: &str, f: &Failure) -> LockError {
        LockError::Store(format!(
            "{doing} in the DynamoDB table `{}` ({}): {}{}",
            self.table,
            self.region,
            f.error.message,
            table_hint(f)
        ))
    }

    fn malformed(&self, key: &str, why: &str) -> LockError {
        LockError::Store(format!(
            "the lease item `{}` in the DynamoDB table `{}` ({}) is malformed: {why}",
            lease_pk(key),
            self.table,
            self.region
        ))
    }

    /// The lease item of `key`, read strongly consistent: a lease decided on a stale copy would
    /// be no lease.
    async fn read(&self, key: &str) -> Result<Option<LeaseItem>, LockError> {
        let rc = self.clients.region(&self.region).await;
        let out = call(
            &self.clients,
            &self.region,
            "GetItem",
            no_reasons,
            rc.dynamodb
                .get_item()
                .table_name(&self.table)
                .key(PK, s(lease_pk(key)))
                .consistent_read(true)
                .send(),
        )
        .await
        .map_err(|f| self.store_error("reading the lease", &f))?;
        out.item().map(|item| self.parse(key, item)).transpose()
    }

    fn parse(
        &self,
        key: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<LeaseItem, LockError> {
        let text = |name: &str| -> Result<Option<String>, LockError> {
            match item.get(name) {
                None => Ok(None),
                Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
                Some(_) => Err(self.malformed(key, &format!("`{name}` is not a string"))),
            }
        };
        let number = |name: &str| -> Result<Option<String>, LockError> {
            match item.get(name) {
                None => Ok(None),
                Some(AttributeValue::N(v)) => Ok(Some(v.clone())),
                Some(_) => Err(self.malformed(key, &format!("`{name}` is not a number"))),
            }
        };
        let time = |name: &str| -> Result<Timestamp, LockError> {
            number(name)?.map_or(Ok(0.0), |v| {
                v.parse::<f64>()
                    .map_err(|_| self.malformed(key, &format!("`{name}` is {v}")))
            })
        };
        let stored_token = number("token")?;
        let token = match &stored_token {
            None => 0,
            // A negative token (planted by hand) counts as none.
            Some(v) => v
                .parse::<u64>()
                .or_else(|_| v.parse::<i64>().map(|t| t.max(0) as u64))
                .map_err(|_| self.malformed(key, &format!("`token` is {v}")))?,
        };
        let pid = match number("pid")? {
            None => 0,
            Some(v) => v
                .parse::<u32>()
                .map_err(|_| self.malformed(key, &format!("`pid` is {v}")))?,
        };
        Ok(LeaseItem {
            holder: Holder {
                key: key.to_owned(),
                run_id: text("run_id")?.unwrap_or_default(),
                pid,
                hostname: text("hostname")?.unwrap_or_default(),
                acquired_at: time("acquired_at")?,
                heartbeat_at: time("heartbeat_at")?,
                expires_at: time("expires_at")?,
                token,
            },
            proc_start: text("proc_start")?,
            stored_token,
        })
    }

    /// Writes a grant of `key` with `token`, only if the key's `token` attribute is still `seen`
    /// as stored (`None`: there is none). `Ok(false)` when it is not: another process got there
    /// first.
    async fn put_grant(
        &self,
        key: &str,
        run_id: &str,
        ttl: Duration,
        t: Timestamp,
        token: u64,
        seen: Option<&str>,
    ) -> Result<bool, LockError> {
        let mut item = HashMap::from([
            (PK.to_owned(), s(lease_pk(key))),
            ("run_id".to_owned(), s(run_id)),
            ("pid".to_owned(), n(self.me.pid)),
            ("hostname".to_owned(), s(&self.me.hostname)),
            ("acquired_at".to_owned(), n(t)),
            ("heartbeat_at".to_owned(), n(t)),
            ("expires_at".to_owned(), n(t + ttl.as_secs_f64())),
            ("token".to_owned(), n(token)),
        ]);
        if let Some(start) = &self.me.proc_start {
            item.insert("proc_start".to_owned(), s(start));
        }
        let rc = self.clients.region(&self.region).await;
        let req = rc
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_names("#token", "token");
        let req = match seen {
            // Also holds when there is no item at all.
            None => req.condition_expression("attribute_not_exists(#token)"),
            Some(seen) => req
                .condition_expression("#token = :seen")
                .expression_attribute_values(":seen", AttributeValue::N(seen.to_owned())),
        };
        let out = call(
            &self.clients,
            &self.region,
            "PutItem",
            no_reasons,
            req.send(),
        )
        .await;
        match out {
            Ok(_) => Ok(true),
            Err(f) if f.is(CONDITION_FAILED) => Ok(false),
            Err(f) => Err(self.store_error("writing the lease", &f)),
        }
    }

    async fn acquire_now(
        &self,
        key: &str,
        run_id: &str,
        ttl: Duration,
    ) -> Result<LeaseGrant, LockError> {
        // A lost race is read again: the winner is usually alive, and reported as the holder;
        // a release that slipped in between is worth one more try.
        for _ in 0..2 {
            let seen = self.read(key).await?;
            let t = self.now();
            let mut took_over = None;
            let mut last = 0;
            let mut stored_token = None;
            if let Some(LeaseItem {
                holder,
                proc_start,
                stored_token: stored,
            }) = seen
            {
                last = holder.token;
                stored_token = stored;
                if !holder.run_id.is_empty() {
                    if !holder_is_gone(&holder, proc_start.as_deref(), &self.me, t) {
                        return Err(LockError::Held {
                            holder: Box::new(holder),
                        });
                    }
                    took_over = Some(holder);
                }
            }
            let token = last + 1;
            if self
                .put_grant(key, run_id, ttl, t, token, stored_token.as_deref())
                .await?
            {
                return Ok(LeaseGrant {
                    key: key.to_owned(),
                    run_id: run_id.to_owned(),
                    token,
                    took_over,
                });
            }
        }
        match self.read(key).await? {
            Some(item) if !item.holder.run_id.is_empty() => Err(LockError::Held {
                holder: Box::new(item.holder),
            }),
            _ => Err(LockError::Store(format!(
                "the lease `{key}` in the DynamoDB table `{}` ({}) kept changing while it was \
                 being taken; try again",
                self.table, self.region
            ))),
        }
    }

    /// Sets the attributes in `sets` on the lease item of `grant`, only while it is still that
    /// grant's. `Ok(false)` when it is not.
    async fn update_own(
        &self,
        grant: &LeaseGrant,
        sets: [(&'static str, AttributeValue); 2],
        doing: &str,
    ) -> Result<bool, LockError> {
        let rc = self.clients.region(&self.region).await;
        // Placeholders for every name: DynamoDB refuses a reserved word in an expression, and
        // refuses a placeholder the expressions do not use.
        let mut req = rc
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key(PK, s(lease_pk(&grant.key)))
            .condition_expression("#token = :mine AND #run = :run")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#run", "run_id")
            .expression_attribute_values(":mine", n(grant.token))
            .expression_attribute_values(":run", s(&grant.run_id));
        let mut update = Vec::new();
        for (i, (name, value)) in sets.into_iter().enumerate() {
            update.push(format!("#set{i} = :set{i}"));
            req = req
                .expression_attribute_names(format!("#set{i}"), name)
                .expression_attribute_values(format!(":set{i}"), value);
        }
        let req = req.update_expression(format!("SET {}", update.join(", ")));
        match call(
            &self.clients,
            &self.region,
            "UpdateItem",
            no_reasons,
            req.send(),
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(f) if f.is(CONDITION_FAILED) => Ok(false),
            Err(f) => Err(self.store_error(doing, &f)),
        }
    }
}

impl LeaseStore for DynamoDbLeaseStore {
    /// Takes `key` for `run_id` for `ttl`: a consistent read, then a write conditioned on the
    /// token read, so of two processes racing for a free key exactly one wins and the other is
    /// told [`LockError::Held`] with the winner.
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        run_id: &'a str,
        ttl: Duration,
    ) -> LeaseFuture<'a, LeaseGrant> {
        Box::pin(self.acquire_now(key, run_id, ttl))
    }

    /// Moves the heartbeat to now and the expiry to `ttl` from now; [`LockError::Lost`] when the
    /// item no longer carries this grant's token and run.
    fn renew<'a>(&'a self, grant: &'a LeaseGrant, ttl: Duration) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            let t = self.now();
            let ours = self
                .update_own(
                    grant,
                    [
                        ("heartbeat_at", n(t)),
                        ("expires_at", n(t + ttl.as_secs_f64())),
                    ],
                    "renewing the lease",
                )
                .await?;
            if ours {
                Ok(())
            } else {
                Err(LockError::Lost {
                    key: grant.key.clone(),
                })
            }
        })
    }

    /// Empties the item's `run_id` and expiry, keeping the item and its token (see the module
    /// docs). Nothing happens when the lease is no longer this grant's.
    fn release<'a>(&'a self, grant: &'a LeaseGrant) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            self.update_own(
                grant,
                [("run_id", s("")), ("expires_at", n(0))],
                "releasing the lease",
            )
            .await
            .map(|_| ())
        })
    }

    /// The holder of `key`, alive or not, read strongly consistent; `None` when no run holds it.
    fn inspect<'a>(&'a self, key: &'a str) -> LeaseFuture<'a, Option<Holder>> {
        Box::pin(async move {
            Ok(self
                .read(key)
                .await?
                .map(|item| item.holder)
                .filter(|h| !h.run_id.is_empty()))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The shared journal
// ---------------------------------------------------------------------------------------------

/// What a caller of [`DynamoDbLog`] waits on.
type Reply<T> = std::sync::mpsc::SyncSender<Result<T, SharedLogError>>;

/// One call of the [`SharedLog`] trait, sent to the log's thread.
enum Request {
    Append {
        events: Vec<SharedEvent>,
        fences: Vec<Fence>,
        reply: Reply<()>,
    },
    Read {
        run_id: Option<String>,
        reply: Reply<Vec<SharedEvent>>,
    },
    DeleteRun {
        run_id: String,
        reply: Reply<()>,
    },
}

/// A journal's shared copy in a DynamoDB table (see the module docs for the item and why every
/// daemon must use the same region).
///
/// [`SharedLog`] is synchronous, and is called from inside tokio runtimes, current-thread ones
/// and `LocalSet`s among them, where blocking on the caller's own runtime would deadlock or
/// panic. So the log has a thread of its own, with its own current-thread runtime and its own
/// [`Clients`] (SDK clients keep connections tied to the runtime that opened them), and each
/// call is a request to that thread that the caller waits for. The thread stops when the log is
/// dropped.
///
/// Errors: [`SharedLogError::Fenced`] and [`SharedLogError::Conflict`] as the trait says; any
/// other failure is [`SharedLogError::Store`], naming the table, the region and what AWS said.
#[derive(Debug)]
pub struct DynamoDbLog {
    region: String,
    table: String,
    /// `None` only while dropping: closing it is what stops the thread.
    requests: Option<tokio::sync::mpsc::UnboundedSender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Append { events, .. } => write!(f, "Append({} events)", events.len()),
            Request::Read { run_id, .. } => write!(f, "Read({run_id:?})"),
            Request::DeleteRun { run_id, .. } => write!(f, "DeleteRun({run_id})"),
        }
    }
}

impl DynamoDbLog {
    /// A log in `table` of `region`, reached with the settings of `clients` (the thread builds
    /// clients of its own from them). Starts the thread; nothing is contacted until a call.
    /// Errors: the thread or its runtime could not be started.
    pub fn new(clients: &Clients, region: &str, table: &str) -> Result<DynamoDbLog, String> {
        let worker = Worker {
            clients: Clients::new(clients.settings().clone()),
            region: region.to_owned(),
            table: table.to_owned(),
        };
        // The requests go over tokio's channel rather than std's: its `send` needs no runtime
        // on the caller's side, and the thread's `recv` keeps its runtime running between
        // calls, so the HTTP client's connection tasks see a connection the far end closed
        // instead of handing out a dead one.
        let (requests, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (started_tx, started) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
        let thread = std::thread::Builder::new()
            .name("drflow-dynamodb-log".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = started_tx.send(Ok(()));
                        rt
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    while let Some(request) = incoming.recv().await {
                        worker.handle(request).await;
                    }
                });
            })
            .map_err(|e| format!("could not start the DynamoDB log's thread: {e}"))?;
        match started.recv() {
            Ok(Ok(())) => Ok(DynamoDbLog {
                region: region.to_owned(),
                table: table.to_owned(),
                requests: Some(requests),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(format!("could not start the DynamoDB log's runtime: {e}"))
            }
            Err(_) => {
                let _ = thread.join();
                Err("the DynamoDB log's thread stopped while starting".to_owned())
            }
        }
    }

    /// Sends a request to the thread and waits for its answer.
    fn ask<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, SharedLogError> {
        let gone = || {
            SharedLogError::Store(format!(
                "{}: the thread that talks to DynamoDB has stopped (it panicked)",
                self.describe()
            ))
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(request(reply))
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl Drop for DynamoDbLog {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the request in hand is answered.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SharedLog for DynamoDbLog {
    /// `dynamodb://<table> (<region>)`.
    fn describe(&self) -> String {
        format!("dynamodb://{} ({})", self.table, self.region)
    }

    /// One `TransactWriteItems` of at most 100 items and 4 MB: a `ConditionCheck` per fence
    /// (its lease item still has the fence's token) and a `Put` per event (its key is new). More
    /// events than fit in one transaction go in several, each repeating the fences; a failure in
    /// a later one leaves the earlier ones written (a prefix, as the trait allows). No call for
    /// no events. An event over DynamoDB's item limit (400 KB) is a [`SharedLogError::Store`]
    /// before anything of the call is written.
    fn append(&self, events: &[SharedEvent], fences: &[Fence]) -> Result<(), SharedLogError> {
        if events.is_empty() {
            return Ok(());
        }
        self.ask(|reply| Request::Append {
            events: events.to_vec(),
            fences: fences.to_vec(),
            reply,
        })
    }

    /// A strongly consistent `Scan` of the event items (of `run_id`, or of every run), every
    /// page of it, ordered by run then sequence. A scan reads the whole table, leases and other
    /// runs included: its cost grows with the table, which retention ([`SharedLog::delete_run`])
    /// keeps small.
    fn read(&self, run_id: Option<&str>) -> Result<Vec<SharedEvent>, SharedLogError> {
        self.ask(|reply| Request::Read {
            run_id: run_id.map(str::to_owned),
            reply,
        })
    }

    /// Reads the run's events, then deletes them with `BatchWriteItem`, 25 at a time.
    fn delete_run(&self, run_id: &str) -> Result<(), SharedLogError> {
        self.ask(|reply| Request::DeleteRun {
            run_id: run_id.to_owned(),
            reply,
        })
    }
}

/// The log's thread: its clients and where the table is.
struct Worker {
    clients: Clients,
    region: String,
    table: String,
}

impl Worker {
    async fn handle(&self, request: Request) {
        // A caller that gave up waiting (it cannot, today) just does not get the answer.
        match request {
            Request::Append {
                events,
                fences,
                reply,
            } => {
                let _ = reply.send(self.append(&events, &fences).await);
            }
            Request::Read { run_id, reply } => {
                let _ = reply.send(self.read(run_id.as_deref()).await);
            }
            Request::DeleteRun { run_id, reply } => {
                let _ = reply.send(self.delete_run(&run_id).await);
            }
        }
    }

    fn store_error(&self, doing: &str, message: &str) -> SharedLogError {
        SharedLogError::Store(format!(
            "{doing} the shared journal dynamodb://{} ({}): {message}",
            self.table, self.region
        ))
    }

    fn failed(&self, doing: &str, f: &Failure) -> SharedLogError {
        self.store_error(doing, &format!("{}{}", f.error.message, table_hint(f)))
    }

    async fn append(&self, events: &[SharedEvent], fences: &[Fence]) -> Result<(), SharedLogError> {
        if events.is_empty() {
            return Ok(());
        }
        // One transaction may touch an item once: the same fence twice is checked once, and of
        // two tokens of one lease the lower is stale for certain (tokens only grow).
        let mut checks: Vec<&Fence> = Vec::new();
        for f in fences {
            match checks.iter_mut().find(|c| c.key == f.key) {
                None => checks.push(f),
                Some(c) if c.token == f.token => {}
                Some(c) => {
                    let stale = if c.token < f.token { *c } else { f };
                    return Err(SharedLogError::Fenced {
                        key: stale.key.clone(),
                        token: stale.token,
                    });
                }
            }
        }
        let mut keys = HashSet::new();
        if let Some(e) = events.iter().find(|e| !keys.insert((&e.run_id, e.seq))) {
            return Err(SharedLogError::Conflict {
                run_id: e.run_id.clone(),
                seq: e.seq,
            });
        }
        let room = MAX_TRANSACTION_ITEMS.saturating_sub(checks.len());
        if room == 0 {
            return Err(self.store_error(
                "writing to",
                &format!(
                    "{} fences leave no room for an event in a transaction of at most {} items",
                    checks.len(),
                    MAX_TRANSACTION_ITEMS
                ),
            ));
        }
        if let Some(e) = events.iter().find(|e| event_size(e) > MAX_ITEM_BYTES) {
            return Err(self.store_error(
                "writing to",
                &format!(
                    "event {} of run {} is {} bytes as an item, and DynamoDB holds items of at \
                     most {} bytes",
                    e.seq,
                    e.run_id,
                    event_size(e),
                    MAX_ITEM_BYTES
                ),
            ));
        }
        // A transaction is bounded by its item count and by its total size.
        let mut rest = events;
        while !rest.is_empty() {
            let mut take = 0;
            let mut bytes = 0;
            while take < rest.len().min(room)
                && bytes + event_size(&rest[take]) <= MAX_TRANSACTION_BYTES
            {
                bytes += event_size(&rest[take]);
                take += 1;
            }
            let (chunk, later) = rest.split_at(take);
            self.append_chunk(chunk, &checks).await?;
            rest = later;
        }
        Ok(())
    }

    async fn append_chunk(
        &self,
        events: &[SharedEvent],
        fences: &[&Fence],
    ) -> Result<(), SharedLogError> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| {
            self.store_error(
                "writing to",
                &format!("the request could not be built: {e}"),
            )
        };
        let mut items = Vec::with_capacity(fences.len() + events.len());
        for f in fences {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(PK, s(lease_pk(&f.key)))
                .condition_expression("#token = :t")
                .expression_attribute_names("#token", "token")
                .expression_attribute_values(":t", n(f.token))
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        for e in events {
            let put = Put::builder()
                .table_name(&self.table)
                .item(PK, s(event_pk(&e.run_id, e.seq)))
                .item("run_id", s(&e.run_id))
                .item("seq", n(e.seq))
                .item("body", s(&e.body))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let rc = self.clients.region(&self.region).await;
        let out = call(
            &self.clients,
            &self.region,
            "TransactWriteItems",
            transaction_reasons,
            rc.dynamodb
                .transact_write_items()
                .set_transact_items(Some(items))
                .send(),
        )
        .await;
        let f = match out {
            Ok(_) => return Ok(()),
            Err(f) => f,
        };
        if !f.is(TRANSACTION_CANCELED) {
            return Err(self.failed("writing to", &f));
        }
        if f.reasons.is_empty() {
            return self.why_cancelled(events, fences, &f).await;
        }
        // The fences come first, so a lost lease is reported before a conflict it explains.
        // Any other reason (another write to one of the items at the same moment, throttling)
        // wrote nothing either, and trying again may work: a store error.
        let failed = f.reasons.iter().position(|r| r == REASON_CONDITION_FAILED);
        match failed {
            Some(i) if i < fences.len() => Err(SharedLogError::Fenced {
                key: fences[i].key.clone(),
                token: fences[i].token,
            }),
            Some(i) if i - fences.len() < events.len() => {
                let e = &events[i - fences.len()];
                Err(SharedLogError::Conflict {
                    run_id: e.run_id.clone(),
                    seq: e.seq,
                })
            }
            _ => Err(self.failed("writing to", &f)),
        }
    }

    /// Why a transaction was cancelled when the answer did not say: a fence whose lease has
    /// another token now, else an event already written, else the answer as it came.
    async fn why_cancelled(
        &self,
        events: &[SharedEvent],
        fences: &[&Fence],
        f: &Failure,
    ) -> Result<(), SharedLogError> {
        for fence in fences {
            let item = self.get(&lease_pk(&fence.key)).await?;
            let token = item.as_ref().and_then(|i| match i.get("token") {
                Some(AttributeValue::N(v)) => v.parse::<u64>().ok(),
                _ => None,
            });
            if token != Some(fence.token) {
                return Err(SharedLogError::Fenced {
                    key: fence.key.clone(),
                    token: fence.token,
                });
            }
        }
        for e in events {
            if self.get(&event_pk(&e.run_id, e.seq)).await?.is_some() {
                return Err(SharedLogError::Conflict {
                    run_id: e.run_id.clone(),
                    seq: e.seq,
                });
            }
        }
        Err(self.failed("writing to", f))
    }

    /// The item with key `pk`, read strongly consistent.
    async fn get(
        &self,
        pk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, SharedLogError> {
        let rc = self.clients.region(&self.region).await;
        let out = call(
            &self.clients,
            &self.region,
            "GetItem",
            no_reasons,
            rc.dynamodb
                .get_item()
                .table_name(&self.table)
                .key(PK, s(pk))
                .consistent_read(true)
                .send(),
        )
        .await
        .map_err(|f| self.failed("reading", &f))?;
        Ok(out.item)
    }

    async fn read(&self, run_id: Option<&str>) -> Result<Vec<SharedEvent>, SharedLogError> {
        // `event#a#` is also the start of the keys of a run named `a#b`: the prefix narrows the
        // scan, the `run_id` attribute decides.
        let prefix = match run_id {
            Some(id) => format!("event#{id}#"),
            None => "event#".to_owned(),
        };
        let rc = self.clients.region(&self.region).await;
        let mut events = Vec::new();
        let mut start = None;
        loop {
            let out = call(
                &self.clients,
                &self.region,
                "Scan",
                no_reasons,
                rc.dynamodb
                    .scan()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .filter_expression("begins_with(#pk, :p)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(":p", s(&prefix))
                    .set_exclusive_start_key(start)
                    .send(),
            )
            .await
            .map_err(|f| self.failed("reading", &f))?;
            for item in out.items() {
                let event = self.parse_event(item)?;
                if run_id.is_none_or(|id| id == event.run_id) {
                    events.push(event);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        events.sort_by(|a, b| (&a.run_id, a.seq).cmp(&(&b.run_id, b.seq)));
        Ok(events)
    }

    fn parse_event(
        &self,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<SharedEvent, SharedLogError> {
        let pk = match item.get(PK) {
            Some(AttributeValue::S(v)) => v.as_str(),
            _ => "?",
        };
        let bad = |why: &str| self.store_error("reading", &format!("the event item `{pk}` {why}"));
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(bad(&format!("has no string `{name}`"))),
        };
        let seq = match item.get("seq") {
            Some(AttributeValue::N(v)) => v
                .parse::<i64>()
                .map_err(|_| bad(&format!("has `seq` {v}, not a whole number")))?,
            _ => return Err(bad("has no number `seq`")),
        };
        Ok(SharedEvent {
            run_id: text("run_id")?,
            seq,
            body: text("body")?,
        })
    }

    async fn delete_run(&self, run_id: &str) -> Result<(), SharedLogError> {
        let events = self.read(Some(run_id)).await?;
        let rc = self.clients.region(&self.region).await;
        for chunk in events.chunks(MAX_BATCH_WRITE) {
            let mut pending = Vec::with_capacity(chunk.len());
            for e in chunk {
                let delete = DeleteRequest::builder()
                    .key(PK, s(event_pk(&e.run_id, e.seq)))
                    .build()
                    .map_err(|b| {
                        self.store_error(
                            "deleting from",
                            &format!("the request could not be built: {b}"),
                        )
                    })?;
                pending.push(WriteRequest::builder().delete_request(delete).build());
            }
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_RETRIES {
                    return Err(self.store_error(
                        "deleting from",
                        &format!(
                            "DynamoDB left {} deletes of run {run_id} unprocessed after {} tries \
                             (throttled); run the deletion again",
                            pending.len(),
                            BATCH_RETRIES
                        ),
                    ));
                }
                if attempt > 0 {
                    // Unprocessed items mean throttling: back off before sending them again.
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                attempt += 1;
                let out = call(
                    &self.clients,
                    &self.region,
                    "BatchWriteItem",
                    no_reasons,
                    rc.dynamodb
                        .batch_write_item()
                        .request_items(&self.table, pending)
                        .send(),
                )
                .await
                .map_err(|f| self.failed("deleting from", &f))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{moto_clients, unique};
    use super::*;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    use drflow_engine::VirtualClock;

    const REGION: &str = "eu-south-1";
    const TTL: Duration = Duration::from_secs(30);

    /// A fresh table shaped like the `dynamodb.global_table` step's `drflow-state-<env>`.
    async fn table(c: &Clients) -> String {
        let name = unique("drflow-state");
        let rc = c.region(REGION).await;
        rc.dynamodb
            .create_table()
            .table_name(&name)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PK)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(PK)
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
        name
    }

    /// A holder on another host than this one, so expiry (not a process check) decides.
    fn on_host(host: &str) -> HolderIdentity {
        HolderIdentity {
            pid: 4242,
            proc_start: None,
            hostname: host.to_owned(),
        }
    }

    fn store(c: &Clients, table: &str, host: &str, clock: &SharedClock) -> DynamoDbLeaseStore {
        DynamoDbLeaseStore::new(c.clone(), REGION, table)
            .with_identity(on_host(host))
            .with_clock(clock.clone())
    }

    fn virtual_clock() -> SharedClock {
        Arc::new(VirtualClock::new(1_700_000_000_000))
    }

    /// Moves the virtual clocks made on this runtime ahead by `by`, and lets time run on. The
    /// runtime is paused only for the jump: paused throughout, it would jump to the SDK's
    /// timeouts while a request waits for moto.
    async fn advance(by: Duration) {
        tokio::time::pause();
        tokio::time::advance(by).await;
        tokio::time::resume();
    }

    fn ev(run: &str, seq: i64) -> SharedEvent {
        SharedEvent {
            run_id: run.to_owned(),
            seq,
            body: format!("{{\"run\":\"{run}\",\"seq\":{seq}}}"),
        }
    }

    fn seqs(events: &[SharedEvent]) -> Vec<(String, i64)> {
        events.iter().map(|e| (e.run_id.clone(), e.seq)).collect()
    }

    #[tokio::test]
    async fn racing_stores_exactly_one_wins_and_the_other_is_told_who() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        let clock = virtual_clock();
        let a = store(&c, &t, "host-a", &clock);
        let b = store(&c, &t, "host-b", &clock);
        for i in 0..20 {
            let key = format!("lock/k{i}");
            let (ra, rb) =
                tokio::join!(a.acquire(&key, "run-a", TTL), b.acquire(&key, "run-b", TTL));
            let (grant, lost, winner_host) = match (ra, rb) {
                (Ok(g), Err(e)) => (g, e, "host-a"),
                (Err(e), Ok(g)) => (g, e, "host-b"),
                other => panic!("round {i}: expected exactly one winner, got {other:?}"),
            };
            assert_eq!(grant.token, 1);
            assert_eq!(grant.took_over, None);
            match lost {
                LockError::Held { holder } => {
                    assert_eq!(holder.run_id, grant.run_id, "round {i}");
                    assert_eq!(holder.hostname, winner_host, "round {i}");
                    assert_eq!(holder.token, 1);
                }
                other => panic!("round {i}: expected Held, got {other}"),
            }
        }
        // The race was real: in some round both read a free key, and the conditional write
        // is what refused the loser.
        let lost_writes = c
            .calls()
            .iter()
            .filter(|r| r.operation == "PutItem" && r.failed)
            .count();
        assert!(lost_writes > 0, "no round raced past the read");
    }

    #[tokio::test]
    async fn tokens_only_grow_and_a_release_keeps_the_token() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        let clock = virtual_clock();
        let s = store(&c, &t, "host-a", &clock);
        assert_eq!(s.inspect("k").await.unwrap(), None);
        let first = s.acquire("k", "run-a", TTL).await.unwrap();
        assert_eq!(first.token, 1);
        let held = s.inspect("k").await.unwrap().expect("held");
        assert_eq!(
            (
                held.run_id.as_str(),
                held.hostname.as_str(),
                held.pid,
                held.token
            ),
            ("run-a", "host-a", 4242, 1)
        );
        assert_eq!(held.expires_at, held.acquired_at + 30.0);
        s.release(&first).await.unwrap();
        assert_eq!(s.inspect("k").await.unwrap(), None);
        // The item stays, emptied, with its token.
        let kept = s.read("k").await.unwrap().expect("the item is kept");
        assert_eq!((kept.holder.run_id.as_str(), kept.holder.token), ("", 1));
        assert_eq!(kept.holder.expires_at, 0.0);

        let second = s.acquire("k", "run-a", TTL).await.unwrap();
        assert_eq!(second.token, 2);
        // Nothing was taken over: the lease was free.
        assert_eq!(second.took_over, None);
        // The older grant of the same run can neither renew nor release the new one.
        assert!(matches!(
            s.renew(&first, TTL).await,
            Err(LockError::Lost { .. })
        ));
        s.release(&first).await.unwrap();
        assert_eq!(s.inspect("k").await.unwrap().map(|h| h.token), Some(2));
        s.renew(&second, TTL).await.unwrap();
        s.release(&second).await.unwrap();
        assert_eq!(s.acquire("k", "run-b", TTL).await.unwrap().token, 3);
    }

    #[tokio::test]
    async fn a_lease_from_another_host_is_taken_over_only_after_expiry() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        let clock = virtual_clock();
        let a = store(&c, &t, "host-a", &clock);
        let b = store(&c, &t, "host-b", &clock);
        let old = a.acquire("run/r1", "run-a", TTL).await.unwrap();
        advance(Duration::from_secs(20)).await;
        a.renew(&old, TTL).await.unwrap();
        // 20 s after the renewal: 40 s after the grant, but not expired.
        advance(Duration::from_secs(20)).await;
        match b.acquire("run/r1", "run-b", TTL).await {
            Err(LockError::Held { holder }) => assert_eq!(holder.run_id, "run-a"),
            other => panic!("expected Held, got {other:?}"),
        }
        advance(Duration::from_secs(11)).await;
        let new = b.acquire("run/r1", "run-b", TTL).await.unwrap();
        assert_eq!(new.token, 2);
        let gone = new.took_over.as_ref().expect("took the old lease over");
        assert_eq!(
            (gone.run_id.as_str(), gone.hostname.as_str(), gone.token),
            ("run-a", "host-a", 1)
        );
        // The old holder wakes up: its lease is gone, and its release changes nothing.
        assert!(matches!(
            a.renew(&old, TTL).await,
            Err(LockError::Lost { key }) if key == "run/r1"
        ));
        a.release(&old).await.unwrap();
        assert_eq!(
            a.inspect("run/r1").await.unwrap().map(|h| h.run_id),
            Some("run-b".to_owned())
        );
    }

    #[tokio::test]
    async fn a_missing_table_is_a_store_error_naming_table_and_region() {
        let Some(c) = moto_clients() else { return };
        let s = DynamoDbLeaseStore::new(c.clone(), REGION, "drflow-state-nowhere");
        let err = s.inspect("k").await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::Store(_)), "{text}");
        assert!(
            text.contains("drflow-state-nowhere") && text.contains(REGION),
            "{text}"
        );
        let log = DynamoDbLog::new(&c, REGION, "drflow-state-nowhere").unwrap();
        let err = log.read(None).unwrap_err();
        assert!(matches!(err, SharedLogError::Store(_)), "{err}");
        assert!(
            err.to_string()
                .contains("dynamodb://drflow-state-nowhere (eu-south-1)"),
            "{err}"
        );
    }

    /// Every call below blocks this test's only thread: the log must not need it.
    #[tokio::test(flavor = "current_thread")]
    async fn the_log_reads_back_in_order_and_never_writes_a_sequence_number_twice() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        let log = DynamoDbLog::new(&c, REGION, &t).unwrap();
        assert_eq!(log.describe(), format!("dynamodb://{t} (eu-south-1)"));
        assert_eq!(log.read(None).unwrap(), vec![]);
        log.append(&[], &[]).unwrap();
        log.append(&[ev("r2", 1), ev("r1", 1), ev("r1", 2)], &[])
            .unwrap();
        log.append(&[ev("r2", 2), ev("r1", 3), ev("r1#x", 1)], &[])
            .unwrap();
        let all = log.read(None).unwrap();
        assert_eq!(
            seqs(&all),
            [
                ("r1", 1),
                ("r1", 2),
                ("r1", 3),
                ("r1#x", 1),
                ("r2", 1),
                ("r2", 2)
            ]
            .map(|(r, s)| (r.to_owned(), s))
        );
        assert_eq!(all[0], ev("r1", 1));
        // A run whose id starts another's (`r1` and `r1#x`) reads only its own.
        assert_eq!(
            seqs(&log.read(Some("r1")).unwrap()),
            [("r1", 1), ("r1", 2), ("r1", 3)].map(|(r, s)| (r.to_owned(), s))
        );

        let err = log.append(&[ev("r1", 4), ev("r1", 2)], &[]).unwrap_err();
        match &err {
            SharedLogError::Conflict { run_id, seq } => {
                assert_eq!((run_id.as_str(), *seq), ("r1", 2))
            }
            other => panic!("expected Conflict, got {other}"),
        }
        // All or nothing: 4 was not written either.
        assert_eq!(log.read(Some("r1")).unwrap().len(), 3);
        // The same sequence number twice in one call is a conflict too (DynamoDB refuses a
        // transaction that touches an item twice).
        assert!(matches!(
            log.append(&[ev("r1", 4), ev("r1", 4)], &[]),
            Err(SharedLogError::Conflict { seq: 4, .. })
        ));

        // Inside a `LocalSet` on this same thread, as the daemon's runs are.
        tokio::task::LocalSet::new()
            .run_until(async { log.append(&[ev("r3", 1)], &[]) })
            .await
            .unwrap();

        log.delete_run("r1").unwrap();
        assert_eq!(
            seqs(&log.read(None).unwrap()),
            [("r1#x", 1), ("r2", 1), ("r2", 2), ("r3", 1)].map(|(r, s)| (r.to_owned(), s))
        );
        log.delete_run("r1").unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stale_fence_writes_nothing() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        let clock = virtual_clock();
        let a = store(&c, &t, "host-a", &clock);
        let b = store(&c, &t, "host-b", &clock);
        let log = DynamoDbLog::new(&c, REGION, &t).unwrap();
        let old = a.acquire("run/r1", "r1", TTL).await.unwrap();
        let lock = a.acquire("lock/failover", "r1", TTL).await.unwrap();
        let fences = |run: &LeaseGrant| {
            [
                Fence {
                    key: "lock/failover".into(),
                    token: lock.token,
                },
                Fence {
                    key: run.key.clone(),
                    token: run.token,
                },
            ]
        };
        log.append(&[ev("r1", 1)], &fences(&old)).unwrap();
        // host-a stops renewing; host-b takes the run over once its lease expired.
        advance(Duration::from_secs(31)).await;
        let new = b.acquire("run/r1", "r1", TTL).await.unwrap();
        let err = log.append(&[ev("r1", 2)], &fences(&old)).unwrap_err();
        match &err {
            SharedLogError::Fenced { key, token } => {
                assert_eq!((key.as_str(), *token), ("run/r1", 1))
            }
            other => panic!("expected Fenced, got {other}"),
        }
        assert_eq!(seqs(&log.read(None).unwrap()), [("r1".to_owned(), 1)]);
        // A fence on a lease no one ever took is stale too.
        assert!(matches!(
            log.append(
                &[ev("r1", 2)],
                &[Fence {
                    key: "run/none".into(),
                    token: 1
                }]
            ),
            Err(SharedLogError::Fenced { .. })
        ));
        // The new holder writes on.
        log.append(&[ev("r1", 2)], &fences(&new)).unwrap();
        assert_eq!(log.read(Some("r1")).unwrap().len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn more_events_than_one_transaction_holds_are_written_in_several() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        let clock = virtual_clock();
        let a = store(&c, &t, "host-a", &clock);
        let grant = a.acquire("run/big", "big", TTL).await.unwrap();
        let log = DynamoDbLog::new(&c, REGION, &t).unwrap();
        let events: Vec<_> = (1..=250).map(|i| ev("big", i)).collect();
        let fence = [Fence {
            key: grant.key.clone(),
            token: grant.token,
        }];
        log.append(&events, &fence).unwrap();
        log.append(&[ev("small", 1)], &[]).unwrap();
        assert_eq!(log.read(Some("big")).unwrap(), events);
        log.delete_run("big").unwrap();
        assert_eq!(seqs(&log.read(None).unwrap()), [("small".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn big_events_go_in_transactions_of_at_most_4_mb_and_too_big_ones_in_none() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        // The log's own clients are its thread's: drive its worker here to count the calls.
        let worker = Worker {
            clients: c.clone(),
            region: REGION.to_owned(),
            table: t.clone(),
        };
        let big = |seq: i64, kb: usize| SharedEvent {
            run_id: "r".into(),
            seq,
            body: "x".repeat(kb * 1024),
        };
        // 30 events of 300 KB: 9 MB, in three transactions at least.
        let events: Vec<_> = (1..=30).map(|i| big(i, 300)).collect();
        worker.append(&events, &[]).await.unwrap();
        let transactions = c
            .calls()
            .iter()
            .filter(|r| r.operation == "TransactWriteItems" && !r.failed)
            .count();
        assert!((3..=4).contains(&transactions), "{transactions}");
        assert_eq!(worker.read(Some("r")).await.unwrap(), events);
        // A scan page holds 1 MB at most: the read followed the pages.
        let scans = c.calls().iter().filter(|r| r.operation == "Scan").count();
        assert!(scans > 1, "{scans}");
        let err = worker
            .append(&[big(31, 1), big(32, 401)], &[])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SharedLogError::Store(m) if m.contains("event 32 of run r")),
            "{err}"
        );
        assert_eq!(worker.read(Some("r")).await.unwrap().len(), 30);
    }

    /// When a cancelled transaction comes without its reasons, reads tell a lost lease from an
    /// event already written.
    #[tokio::test]
    async fn without_reasons_a_cancelled_transaction_is_explained_by_reading() {
        let Some(c) = moto_clients() else { return };
        let t = table(&c).await;
        let clock = virtual_clock();
        let grant = store(&c, &t, "host-a", &clock)
            .acquire("run/r1", "r1", TTL)
            .await
            .unwrap();
        let worker = Worker {
            clients: c.clone(),
            region: REGION.to_owned(),
            table: t.clone(),
        };
        worker.append(&[ev("r1", 1)], &[]).await.unwrap();
        let cancelled = Failure {
            error: CloudError::new(ErrorKind::InvalidInput, "cancelled"),
            code: Some(TRANSACTION_CANCELED.to_owned()),
            reasons: vec![],
        };
        let good = Fence {
            key: "run/r1".into(),
            token: grant.token,
        };
        let stale = Fence {
            key: "run/r1".into(),
            token: grant.token - 1,
        };
        assert!(matches!(
            worker
                .why_cancelled(&[ev("r1", 2)], &[&stale], &cancelled)
                .await,
            Err(SharedLogError::Fenced { token: 0, .. })
        ));
        assert!(matches!(
            worker
                .why_cancelled(&[ev("r1", 2), ev("r1", 1)], &[&good], &cancelled)
                .await,
            Err(SharedLogError::Conflict { seq: 1, .. })
        ));
        assert!(matches!(
            worker
                .why_cancelled(&[ev("r1", 2)], &[&good], &cancelled)
                .await,
            Err(SharedLogError::Store(_))
        ));
    }
}
