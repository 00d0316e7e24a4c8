#!/bin/bash
# drflow user data: serves the trading health endpoint on Amazon Linux 2.
#
# GET https://<instance>:__APP_PORT__/health/trading answers 200 with
#   {"status":"ok","quote_timestamp":...,"quote_age_seconds":...,"db":"connected",...}
# only while the application is really working: a fresh quote (younger than
# __MAX_QUOTE_AGE__ s) AND a reachable database writer. Otherwise 503 with
# "status":"degraded" and the reason. The ALB target group and the Route 53 health
# check (HTTPS_STR_MATCH on "status":"ok") both probe this path, so a region whose
# database or market data is gone fails over even while its instances are up.
#
# Placeholders (__X__) are filled in by drflow's compute.launch_template step.
set -euo pipefail

REGION="__REGION__"
ROLE="__ROLE__"
DB_ENDPOINT="__DB_ENDPOINT__"
TABLE="__TABLE_NAME__"
NAMESPACE="__METRIC_NAMESPACE__"
APP_PORT="__APP_PORT__"
MAX_QUOTE_AGE="__MAX_QUOTE_AGE__"

yum install -y -q python3 openssl
install -d -m 0755 /opt/trading /var/lib/trading

# TLS between the ALB and the instance: a self-signed certificate is enough, the ALB does
# not validate target certificates, and traffic stays encrypted in transit end to end.
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=trading-${ROLE,,}" \
  -keyout /opt/trading/key.pem -out /opt/trading/cert.pem

cat > /opt/trading/health.py <<'PY'
"""Trading health endpoint: real application state, not just "the process is up"."""
import json, os, socket, ssl, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB_ENDPOINT = os.environ["DB_ENDPOINT"]
MAX_QUOTE_AGE = float(os.environ["MAX_QUOTE_AGE"])
QUOTE_FILE = "/var/lib/trading/last_quote"

def db_connected():
    """A TCP connection to the writer endpoint on 5432 within 2 s."""
    try:
        with socket.create_connection((DB_ENDPOINT, 5432), timeout=2):
            return True
    except OSError:
        return False

def last_quote():
    """The timestamp the trading engine wrote with its last processed quote."""
    try:
        with open(QUOTE_FILE) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None

def quote_loop():
    """Stands in for the trading engine's market-data loop: a quote counts as processed
    only when the database is reachable, so a stale quote means trading has stopped."""
    while True:
        if db_connected():
            tmp = QUOTE_FILE + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(time.time()))
            os.replace(tmp, QUOTE_FILE)
        time.sleep(5)

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/health/trading":
            self.send_error(404)
            return
        now = time.time()
        quote = last_quote()
        age = None if quote is None else round(now - quote, 1)
        db = db_connected()
        fresh = age is not None and age <= MAX_QUOTE_AGE
        body = {
            "status": "ok" if (db and fresh) else "degraded",
            "region": os.environ["REGION"],
            "role": os.environ["ROLE"],
            "quote_timestamp": quote,
            "quote_age_seconds": age,
            "db": "connected" if db else "unreachable",
            "checked_at": now,
        }
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(200 if body["status"] == "ok" else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

threading.Thread(target=quote_loop, daemon=True).start()
server = ThreadingHTTPServer(("0.0.0.0", int(os.environ["APP_PORT"])), Health)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.load_cert_chain("/opt/trading/cert.pem", "/opt/trading/key.pem")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY

cat > /etc/systemd/system/trading-health.service <<UNIT
[Unit]
Description=Trading health endpoint (/health/trading)
After=network-online.target

[Service]
Environment=REGION=${REGION} ROLE=${ROLE} DB_ENDPOINT=${DB_ENDPOINT} TABLE=${TABLE}
Environment=NAMESPACE=${NAMESPACE} APP_PORT=${APP_PORT} MAX_QUOTE_AGE=${MAX_QUOTE_AGE}
ExecStart=/usr/bin/python3 /opt/trading/health.py
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable --now trading-health.service
