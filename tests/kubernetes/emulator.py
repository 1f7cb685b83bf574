"""A Kubernetes API emulator for Wharf's end-to-end test of the kubernetes target.

It is kmock's KubernetesEmulator (PyPI `kmock`, an in-memory, Kubernetes-shaped HTTP
server), with what it lacks to serve a client that deploys the way kubectl and Wharf do,
and a small stand-in for the controllers:

- paths of cluster-scoped collections (`/api/v1/namespaces`, `/api/v1/namespaces/NAME`)
  are parsed as such (kmock 0.8 reads `namespaces` as the start of a namespaced path);
- a server-side apply (`PATCH` with `application/apply-patch+yaml`) of a missing object
  creates it, as the API server does;
- lists honour `labelSelector` (`k=v`, `k!=v`, `k`, `!k`, comma-separated);
- a workload's `metadata.generation` goes up when its spec changes;
- a deleted namespace takes its objects with it;
- errors carry the API server's reasons (`NotFound`, `AlreadyExists`);
- the controllers: every Deployment and StatefulSet gets one Pod per replica with the
  workload's selector labels; a pod whose image is under `registry.invalid/` waits in
  `ImagePullBackOff` (with the kubelet's message naming the image), any other runs and is
  ready; the workload's status (observedGeneration, replicas, updated, ready and
  available replicas) follows its pods.

What it does NOT check, and a real API server does: schemas and defaulting of objects,
field ownership and conflicts of server-side apply (an apply is a recursive merge here),
resourceVersion and optimistic concurrency, authentication and RBAC (any token is
accepted), admission, and the real controllers' behaviour (rolling updates, the previous
ReplicaSet serving while a new one fails). Those are covered by the request-level tests,
by kubernetes-validate and by the live suite.

Every request is appended to the file given with `--log` as one JSON line (method, path,
query, content type, body), so the test can check what the client sent.

Usage: python emulator.py --port PORT --log FILE
"""

import argparse
import asyncio
import json
import signal

import aiohttp.web
import kmock
from kmock._internal import apps, parsing
from kmock._internal.k8s import KubernetesError

PULL_FAILS = "registry.invalid/"
WORKLOADS = ("deployments", "statefulsets")


def parse_path(path):
    """kmock's parser, with cluster-scoped collections read as such."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "api" and parts[2] == "namespaces" and len(parts) <= 4:
        # /api/v1/namespaces and /api/v1/namespaces/NAME: the Namespace collection.
        name = parts[3] if len(parts) == 4 else None
        return parsing.ParsedPath("", parts[1], "namespaces", None, name, None)
    return ORIGINAL_PARSE_PATH(path)


ORIGINAL_PARSE_PATH = parsing.parse_path
parsing.parse_path = parse_path


def selected(labels, selector):
    """Whether `labels` match a label selector of equality and existence terms."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class Emulator(kmock.KubernetesEmulator):
    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.log_path = None
        self.specs = {}

    async def _handle(self, request):
        self.record(request)
        if request.resource is not None and request.action == kmock.action.UPDATE:
            content_type = request.headers.get("Content-Type", "")
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                missing = key not in self._objects or self._objects[key].deleted
                if missing and "apply-patch" in content_type and isinstance(request.data, dict):
                    created = json.loads(json.dumps(request.data))
                    if request.namespace is not None:
                        created.setdefault("metadata", {})["namespace"] = request.namespace
                    if key in self._objects:
                        self._objects[key].create(created)
                    else:
                        self._objects[key] = created
        if request.resource is not None and request.action == kmock.action.DELETE:
            if request.resource.plural == "namespaces" and request.name is not None:
                async with self._lock:
                    for (resource, namespace, name), obj in list(self._objects.items()):
                        if namespace == request.name and not obj.deleted:
                            obj.delete()
        response = await super()._handle(request)
        if request.resource is not None and request.resource.plural in WORKLOADS:
            async with self._lock:
                self.bump_generations()
        return response

    async def _render_error(self, exc):
        # The reasons the API server gives (clients read `NotFound` as "absent"), without
        # kmock's traceback.
        if isinstance(exc, KubernetesError):
            reason = {404: "NotFound", 409: "AlreadyExists"}.get(exc.status, exc.reason)
            return aiohttp.web.json_response({
                "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "code": exc.status, "reason": reason, "message": exc.message or repr(exc),
            }, status=exc.status)
        return await super()._render_error(exc)

    def record(self, request):
        if self.log_path is None:
            return
        entry = {
            "method": str(request.method.value if hasattr(request.method, "value") else request.method).upper(),
            "path": request.url.path,
            "query": dict(request.params),
            "content_type": request.headers.get("Content-Type", ""),
            "body": request.data if isinstance(request.data, (dict, list)) else None,
        }
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    async def _serve_list(self, request):
        listed = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        listed["items"] = [
            item
            for item in listed["items"]
            if selected(item.get("metadata", {}).get("labels") or {}, selector)
        ]
        return listed

    def bump_generations(self):
        for key, obj in list(self._objects.items()):
            if key[0].plural not in WORKLOADS or obj.deleted:
                continue
            spec = json.dumps(obj.raw.get("spec"), sort_keys=True)
            if self.specs.get(key) != spec:
                self.specs[key] = spec
                generation = (obj.raw.get("metadata", {}).get("generation") or 0) + 1
                obj.patch({"metadata": {"generation": generation}})

    def control(self):
        """One pass of the controllers: pods for each workload, and its status."""
        pods = kmock.resource("", "v1", "pods")
        live = {k: o for k, o in self._objects.items() if not o.deleted}
        for (resource, namespace, name), obj in live.items():
            if resource.plural not in WORKLOADS:
                continue
            raw = obj.raw
            spec = raw.get("spec") or {}
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            replicas = spec.get("replicas", 1)
            generation = raw.get("metadata", {}).get("generation", 1)
            containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
            failing = any(c.get("image", "").startswith(PULL_FAILS) for c in containers)
            wanted = {f"{name}-g{generation}-{i}" for i in range(replicas)}
            for (r, ns, pod), p in live.items():
                if r == pods and ns == namespace and pod.startswith(f"{name}-g") and pod not in wanted:
                    p.delete()
            for pod in sorted(wanted):
                key = (pods, namespace, pod)
                if key in self._objects and not self._objects[key].deleted:
                    continue
                statuses = []
                for c in containers:
                    image = c.get("image", "")
                    if image.startswith(PULL_FAILS):
                        state = {"waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}"',
                        }}
                    else:
                        state = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
                    statuses.append({
                        "name": c.get("name", ""), "image": image, "imageID": "",
                        "ready": not image.startswith(PULL_FAILS), "restartCount": 0,
                        "state": state,
                    })
                self._objects[key] = {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod, "namespace": namespace, "labels": dict(labels)},
                    "spec": {"containers": [
                        {"name": c.get("name", ""), "image": c.get("image", "")} for c in containers
                    ]},
                    "status": {
                        "phase": "Pending" if failing else "Running",
                        "conditions": [{"type": "Ready", "status": "False" if failing else "True"}],
                        "containerStatuses": statuses,
                    },
                }
            ready = 0 if failing else replicas
            status = {
                "observedGeneration": generation, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [{"type": "Progressing", "status": "True",
                                "reason": "ReplicaSetUpdated" if failing else "NewReplicaSetAvailable"}],
            }
            if raw.get("status") != status:
                obj.patch({"status": status})
        for (resource, namespace, name), obj in live.items():
            if resource != pods:
                continue
            owner = name.rsplit("-g", 1)[0]
            if not any(r.plural in WORKLOADS and ns == namespace and n == owner
                       for (r, ns, n) in live):
                obj.delete()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Emulator() as k8s, apps.Server(k8s, port=args.port):
        k8s.log_path = args.log
        k8s.resources.load_bundled()
        print(f"listening on 127.0.0.1:{args.port}", flush=True)
        while not stop.is_set():
            async with k8s._lock:
                k8s.control()
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except asyncio.TimeoutError:
                pass


if __name__ == "__main__":
    asyncio.run(main())
