#!/usr/bin/env python3
"""A webhook receiver for Wharf's tests (Python 3 standard library only).

    receiver.py PORT_FILE LOG_FILE SECRET [--port N] [--status CODE]

Listens on 127.0.0.1 (port N, or one the system picks), writes the port to PORT_FILE once
it listens, and for each POST checks the `wharf-signature` header (HMAC-SHA256 with
SECRET over "<t>.<body>", t at most 300 s away from now), appends one JSON line to
LOG_FILE:

    {"valid": true, "id": ..., "type": ..., "subject": ..., "data": ..., "headers": {...}}

and answers CODE (204 by default; give 500 to play a receiver that fails). A test can stop
it and start it again with --port to play a receiver that comes back.
"""

import argparse
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECS = 300


def verify(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """Whether `header` (t=<unix seconds>,v1=<hex>[,v1=...]) signs `body` with `secret`."""
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > TOLERANCE_SECS:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


class Handler(BaseHTTPRequestHandler):
    server_version = "wharf-test-receiver"

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        config = self.server.config
        valid = verify(
            config["secret"], self.headers.get("wharf-signature", ""), body, time.time()
        )
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            event = {}
        record = {
            "valid": valid,
            "id": event.get("id"),
            "type": event.get("type"),
            "subject": event.get("subject"),
            "data": event.get("data"),
            "headers": {name.lower(): value for name, value in self.headers.items()},
        }
        with config["lock"]:
            with open(config["log"], "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
                log.flush()
        self.send_response(config["status"])
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description="A webhook receiver for Wharf's tests.")
    parser.add_argument("port_file", help="where to write the port it listens on")
    parser.add_argument("log_file", help="where to append one JSON line per request")
    parser.add_argument("secret", help="the webhook's signing secret")
    parser.add_argument("--port", type=int, default=0, help="listen on this port (0: any)")
    parser.add_argument("--status", type=int, default=204, help="the status to answer")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.config = {
        "secret": args.secret.encode(),
        "log": args.log_file,
        "status": args.status,
        "lock": threading.Lock(),
    }
    # Written whole, then renamed: a test that polls the file never reads half a number.
    partial = args.port_file + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.replace(partial, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
