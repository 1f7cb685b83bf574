"""Deploys the hello example with a client generated from Wharf's OpenAPI document.

Usage: deploy_hello.py SERVER TOKEN EXAMPLE_DIR

The package `wharf_api_client` is what openapi-python-client generated from the document
the server serves; nothing here speaks HTTP to the API by hand. Sets up what the example's
platform.yaml names (installations, resource types, definitions; those that exist are
kept), creates the app `hello` and its environment `dev` (type development), deploys
score.yaml (its files inlined, as the CLI sends them), waits for the deployment, reads the
environment's status, and fetches the page the workload serves. Prints one JSON object:
the deployment's id and status, the endpoint and the page.
"""

import json
import pathlib
import sys
import time
import urllib.request

import yaml
from wharf_api_client import AuthenticatedClient
from wharf_api_client.api.apps import create_app
from wharf_api_client.api.deployments import (
    create_deployment,
    get_deployment,
    get_environment_status,
)
from wharf_api_client.api.environments import create_environment
from wharf_api_client.api.plugins import create_installation
from wharf_api_client.api.resources import (
    create_resource_definition,
    create_resource_type,
)
from wharf_api_client.models import (
    DefinitionRequest,
    NewApp,
    NewDeployment,
    NewEnv,
    NewInstallation,
    ResourceTypeView,
)


def expect(response, *statuses):
    """The parsed body of a response whose status is one of `statuses`."""
    if response.status_code not in statuses:
        sys.exit(f"unexpected {response.status_code}: {response.content.decode()}")
    return response.parsed


def inline_files(score, directory):
    """`files.*.source` replaced by the file's content, relative to the Score file."""
    for container in score.get("containers", {}).values():
        for entry in (container.get("files") or {}).values():
            if "source" in entry:
                entry["content"] = (directory / entry.pop("source")).read_text()
    return score


def main():
    server, token, example = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    client = AuthenticatedClient(base_url=server, token=token, timeout=30)
    platform = yaml.safe_load((example / "platform.yaml").read_text())

    for installation in platform["installations"]:
        body = NewInstallation.from_dict(installation)
        expect(create_installation.sync_detailed(client=client, body=body), 201, 409)
    for resource_type in platform["resource_types"]:
        body = ResourceTypeView.from_dict(resource_type)
        expect(create_resource_type.sync_detailed(client=client, body=body), 201, 409)
    for definition in platform["resource_definitions"]:
        body = DefinitionRequest.from_dict(definition)
        expect(create_resource_definition.sync_detailed(client=client, body=body), 201, 409)

    expect(create_app.sync_detailed(client=client, body=NewApp(id="hello")), 201)
    env = NewEnv(id="dev", env_type="development")
    expect(create_environment.sync_detailed("hello", client=client, body=env), 201)

    score = inline_files(yaml.safe_load((example / "score.yaml").read_text()), example)
    body = NewDeployment.from_dict({"workloads": [score], "comment": "generated client"})
    deployment = expect(
        create_deployment.sync_detailed("hello", "dev", client=client, body=body), 202
    )
    deadline = time.monotonic() + 180
    while deployment.status not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() > deadline:
            sys.exit(f"deployment {deployment.id} still {deployment.status} after 180s")
        time.sleep(0.5)
        deployment = expect(
            get_deployment.sync_detailed("hello", "dev", deployment.id, client=client), 200
        )
    if deployment.status != "succeeded":
        sys.exit(f"deployment {deployment.id} {deployment.status}: {deployment.to_dict()}")

    status = expect(get_environment_status.sync_detailed("hello", "dev", client=client), 200)
    endpoint = status.to_dict()["workloads"][0]["endpoints"][0]
    with urllib.request.urlopen(endpoint, timeout=10) as answer:
        page = answer.read().decode()
    print(
        json.dumps(
            {
                "deployment": deployment.id,
                "status": deployment.status,
                "endpoint": endpoint,
                "page": page,
            }
        )
    )


if __name__ == "__main__":
    main()
