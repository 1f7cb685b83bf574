"""The shop example: answers GET / by querying its database (through psql), and keeps a
receipt of each visit in its bucket (through curl's SigV4 signing)."""

import http.server
import os
import subprocess

PORT = int(os.environ.get("PORT", "8080"))
DATABASE_URL = os.environ["DATABASE_URL"]
HOST = os.environ.get("PUBLIC_HOST", "")
BUCKET = os.environ.get("BUCKET", "")
S3 = os.environ.get("S3_ENDPOINT", "")


def sql(statement):
    out = subprocess.run(
        ["psql", DATABASE_URL, "-v", "ON_ERROR_STOP=1", "-qtAc", statement],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def receipt(n):
    subprocess.run(
        ["curl", "-sf", "--aws-sigv4", f"aws:amz:{os.environ.get('S3_REGION', 'us-east-1')}:s3",
         "--user", f"{os.environ['S3_KEY']}:{os.environ['S3_SECRET']}", "-X", "PUT",
         "-H", "content-type: text/plain", "--data-binary", f"visit {n}",
         f"{S3}/{BUCKET}/visits/{n}"],
        capture_output=True, text=True, check=True,
    )


sql("CREATE TABLE IF NOT EXISTS visits (at timestamptz NOT NULL DEFAULT now())")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200
        if self.path == "/healthz":
            body = "ok\n"
        else:
            try:
                count = sql("INSERT INTO visits DEFAULT VALUES; SELECT count(*) FROM visits")
                receipt(count)
                body = (
                    f"Welcome to the shop at {HOST}\n"
                    f"visits so far (from the database): {count}\n"
                    f"receipts in bucket {BUCKET}\n"
                )
            except subprocess.CalledProcessError as e:
                status = 503
                body = f"{e.cmd[0]} {e.cmd[-1]} failed (exit {e.returncode}): {e.stderr or ''}\n"
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        print(f"{self.command} {self.path}", flush=True)


print(f"listening on 127.0.0.1:{PORT}", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
