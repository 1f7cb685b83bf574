# A workload that tries, from inside its container directory, everything a tenant must not
# do on the process target, and serves what happened as JSON. It runs normally otherwise:
# it writes its own files and answers HTTP.
import http.server
import json
import os

data = os.environ["DATA_DIR"]
server_pid = int(os.environ["SERVER_PID"])
victim_dir = os.environ.get("VICTIM_DIR", "")
victim_pid = int(os.environ.get("VICTIM_PID", "0"))
results = {}


def attempt(name, action):
    try:
        action()
        results[name] = "allowed"
    except Exception as e:  # the kind of refusal is what the test looks at
        results[name] = f"{type(e).__name__}: {e}"


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read(64)


attempt("read the sealing key", lambda: read(f"{data}/secret.key"))
attempt("read the database", lambda: read(f"{data}/wharf.db", "rb"))
attempt("list the data directory", lambda: os.listdir(data))
attempt("read the key by a relative path", lambda: read(os.path.relpath(f"{data}/secret.key")))
attempt("read the server's environment", lambda: read(f"/proc/{server_pid}/environ", "rb"))
attempt("read the parent's environment", lambda: read(f"/proc/{os.getppid()}/environ", "rb"))
attempt("read the server's memory map", lambda: read(f"/proc/{server_pid}/maps"))
attempt("signal the server", lambda: os.kill(server_pid, 0))
if victim_dir:
    attempt("read another environment's file", lambda: read(f"{victim_dir}/secret.txt"))
    attempt("list another environment's directory", lambda: os.listdir(victim_dir))
    attempt("write into another environment", lambda: open(f"{victim_dir}/planted", "w").write("x"))
if victim_pid:
    attempt("signal another workload", lambda: os.kill(victim_pid, 0))
attempt("write /tmp", lambda: open("/tmp/wharf-tenant-was-here", "w").write("x"))


def own():
    with open("own.txt", "w") as f:
        f.write("mine")
    with open(os.path.join(os.environ["TMPDIR"], "scratch"), "w") as f:
        f.write("mine too")
    assert read("own.txt") == "mine"


attempt("write its own directory", own)
results["uid"] = os.getuid()
results["environment"] = sorted(os.environ)
with open("secret.txt", "w") as f:
    f.write("only mine")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"results": results, "cwd": os.getcwd(), "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
