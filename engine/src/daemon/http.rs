//! `/healthz` and `/metrics` on a loopback port: a minimal HTTP/1.1 responder on tokio's
//! `TcpListener`. Two fixed GET paths for a local scraper do not justify turning on hyper's
//! server feature, which would rebuild the AWS SDK's whole HTTP stack (docs/decisions.md).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::metrics::Metrics;

/// What `/healthz` says, set by the daemon's loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Taking events.
    Ok,
    /// Starting (resuming runs) or stopping: up, but not taking events.
    Starting,
    /// Not taking events: why.
    Failing(String),
    /// Stopping after a signal.
    Stopping,
    /// The HA deployment's second daemon: healthy, waiting for the lease another daemon holds
    /// (who holds it).
    Standby(String),
}

/// The server's shared view of the daemon.
#[derive(Debug)]
pub struct Status {
    /// The counters `/metrics` shows.
    pub metrics: Metrics,
    health: std::sync::Mutex<Health>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            metrics: Metrics::default(),
            health: std::sync::Mutex::new(Health::Starting),
        }
    }
}

impl Status {
    /// Sets what `/healthz` says.
    pub fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = health;
    }

    /// What `/healthz` says.
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Binds `addr`, which must be a loopback address. Errors: not loopback, or the bind failed
/// (in use, no permission), in words.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: /healthz and /metrics are served on 127.0.0.1 (or ::1) only"
        ));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Serves `/healthz` and `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, status: Arc<Status>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: let some close rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let status = status.clone();
        tokio::spawn(async move {
            // A client that connects and says nothing does not keep its descriptor for ever.
            let _ = tokio::time::timeout(READ_TIMEOUT, answer(stream, &status)).await;
        });
    }
}

/// How long a client may take to send its request and read the answer.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest request head read, in bytes.
const MAX_HEAD: usize = 8 * 1024;

async fn answer(mut stream: TcpStream, status: &Status) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (code, kind, body) = respond(method, path, status);
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The status code, content type and body for one request.
pub fn respond(method: &str, path: &str, status: &Status) -> (u16, &'static str, String) {
    const JSON: &str = "application/json";
    if method != "GET" && method != "HEAD" {
        return (405, "text/plain", "only GET\n".into());
    }
    match path {
        "/healthz" => {
            let (code, state, reason) = match status.health() {
                Health::Ok => (200, "ok", None),
                Health::Starting => (503, "starting", None),
                Health::Stopping => (503, "stopping", None),
                Health::Failing(why) => (503, "failing", Some(why)),
                // Up and ready to take over: a load balancer or systemd must not restart it.
                Health::Standby(leader) => (200, "standby", Some(leader)),
            };
            let body = serde_json::json!({
                "status": state,
                "reason": reason,
                "runs_in_progress": status.metrics.runs_in_progress(),
            });
            (code, JSON, format!("{body}\n"))
        }
        "/metrics" => (200, "text/plain; version=0.0.4", status.metrics.render()),
        _ => (
            404,
            "text/plain",
            "not found: try /healthz or /metrics\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_follows_the_loop_and_metrics_render() {
        let s = Status::default();
        assert_eq!(respond("GET", "/healthz", &s).0, 503);
        s.set_health(Health::Ok);
        let (code, _, body) = respond("GET", "/healthz", &s);
        assert_eq!(code, 200);
        assert!(body.contains("\"status\":\"ok\""), "{body}");
        s.set_health(Health::Failing("the queue cannot be read".into()));
        let (code, _, body) = respond("GET", "/healthz", &s);
        assert_eq!(code, 503);
        assert!(body.contains("the queue cannot be read"), "{body}");
        // A standby daemon is healthy: nothing should restart it.
        s.set_health(Health::Standby("pid 7 on host-a".into()));
        let (code, _, body) = respond("GET", "/healthz", &s);
        assert_eq!(code, 200);
        assert!(body.contains("\"status\":\"standby\""), "{body}");
        assert!(body.contains("pid 7 on host-a"), "{body}");
        s.metrics.received("queue");
        let (code, kind, body) = respond("GET", "/metrics", &s);
        assert_eq!((code, kind), (200, "text/plain; version=0.0.4"));
        assert!(body.contains("drflow_daemon_events_received_total{source=\"queue\"} 1"));
        assert_eq!(respond("GET", "/nope", &s).0, 404);
        assert_eq!(respond("POST", "/metrics", &s).0, 405);
    }

    #[tokio::test]
    async fn refuses_anything_but_loopback_and_answers_over_tcp() {
        let err = bind("0.0.0.0:0".parse().unwrap()).await.unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(Status::default());
        status.set_health(Health::Ok);
        let server = tokio::spawn(serve(listener, status));
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("\"status\":\"ok\""), "{reply}");
        server.abort();
    }
}
