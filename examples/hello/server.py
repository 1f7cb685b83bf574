"""The example workload: answers GET / with what Wharf injected (never the secret itself)."""

import http.server
import os
import re
import sys

PORT = int(os.environ.get("PORT", "8080"))
# Loopback on the process target; every address in a Kubernetes pod, where the Service and
# the kubelet's probes reach it on the pod's address.
HOST = "0.0.0.0" if "KUBERNETES_SERVICE_HOST" in os.environ else "127.0.0.1"
GREETING = os.environ.get("GREETING", "Hello")
MOTD = os.environ.get("MESSAGE_OF_THE_DAY", "")
SECRET = os.environ.get("SESSION_SECRET", "")
# The version: the first argument, else the tag of the image the process target says the
# command stands for when it is a version number (WHARF_IMAGE=registry.example/hello:2@sha256:...
# is version 2), else 1.
IMAGE = os.environ.get("WHARF_IMAGE", "").split("@")[0]
TAG = IMAGE.rsplit(":", 1)[1] if ":" in IMAGE.rsplit("/", 1)[-1] else ""
if not re.fullmatch(r"v?[0-9]+(\.[0-9]+)*", TAG):
    TAG = ""
VERSION = sys.argv[1] if len(sys.argv) > 1 else (TAG or "1")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            body = "ok\n"
        else:
            body = (
                f"{GREETING} (version {VERSION})\n"
                f"message of the day: {MOTD}\n"
                f"session secret: {len(SECRET)} characters, injected and not shown\n"
            )
        data = body.encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


print(f"listening on {HOST}:{PORT}", flush=True)
http.server.ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
