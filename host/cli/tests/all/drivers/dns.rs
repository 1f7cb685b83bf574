//! The dns driver against a real PowerDNS: a record made, kept, changed while the server
//! is down, refused with a wrong key or without the grant, and deleted with the set or
//! the environment that used it.

use super::{PowerDns, deploy_shop, http, output, wait_until_succeeded};
use crate::serve::{Server, start};
use crate::support::{Client, post};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A workload `web` that prints the host name of its resource `dns`.
fn workload(resources: Value) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("score.yaml");
    let doc = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web" },
        "containers": { "main": {
            "image": "busybox",
            "command": ["sh", "-c", "echo host=$HOST; exec sleep 600"],
            "variables": { "HOST": "${resources.dns.host}" },
        } },
        "resources": resources,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    file
}

/// The dns driver installed as `pdns` for the server's API (granted to reach it when
/// `granted`), and resource type `dns` with a definition for zone example.test.
fn dns_platform(server: &Server, pdns: &PowerDns, granted: bool) {
    let mut installation = json!({ "id": "pdns", "plugin": "dns",
                                   "config": { "values": { "api_url": pdns.api } } });
    if granted {
        installation["grants"] = json!({ "http": [pdns.api] });
    }
    post(server, "/api/v1/plugin-installations", installation);
    post(server, "/api/v1/resource-types", json!({ "id": "dns" }));
    post(
        server,
        "/api/v1/resource-definitions",
        json!({ "id": "dns", "type": "dns", "driver": "pdns",
                "driver_inputs": { "values": { "zone": "example.test" },
                                   "secrets": { "api_key": pdns.key } },
                "criteria": [{}] }),
    );
}

#[test]
#[ignore = "needs PowerDNS: apt-get install pdns-server pdns-backend-sqlite3 bind9-dnsutils sqlite3 (.ci/run does)"]
fn the_dns_driver_manages_a_record_in_a_real_powerdns() {
    let mut pdns = PowerDns::start();
    pdns.create_zone("example.test");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    dns_platform(&server, &pdns, true);
    wharf.ok(&["apps", "create", "shop"]);
    wharf.ok(&["envs", "create", "shop", "dev", "--type", "development"]);
    let file = workload(json!({ "dns": { "type": "dns", "params": { "address": "192.0.2.10" } } }));

    let host = a_record_the_workload_gets_and_that_resolves(&wharf, &pdns, &file);
    deployed_again_it_is_the_same_record_once(&wharf, &pdns, &file, &host);
    changed_while_the_server_is_down_it_is_retried_until_it_is_back(&wharf, &mut pdns, &host);
    a_wrong_key_fails_for_good_saying_so(&server, &wharf);
    deleted_once_a_set_serves_without_it(&wharf, &pdns, &file, &host);

    // Deleting the environment deletes the record.
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    assert_eq!(pdns.dig(&host), "");
    assert_eq!(pdns.rrsets("example.test", &host), 0);
    assert!(server.stop().success());
}

/// Deployed to dev: the record resolves to the address asked for, and the workload got
/// its host name. Returns the host name.
fn a_record_the_workload_gets_and_that_resolves(
    wharf: &Client,
    pdns: &PowerDns,
    file: &Path,
) -> String {
    wharf.ok(&deploy_shop(file, "dev"));
    let host = output(wharf, "dev", "host");
    assert!(host.ends_with(".example.test"), "{host}");
    assert_eq!(pdns.dig(&host), "192.0.2.10", "the record resolves");
    let logs = wharf.ok(&["logs", "shop", "dev", "web"]);
    assert!(
        logs.contains(&format!("host={host}")),
        "the workload got it: {logs}"
    );
    host
}

/// Again: the same record, once.
fn deployed_again_it_is_the_same_record_once(
    wharf: &Client,
    pdns: &PowerDns,
    file: &Path,
    host: &str,
) {
    wharf.ok(&deploy_shop(file, "dev"));
    let again = wharf.json(&["status", "shop", "dev"]);
    assert_eq!(again["resources"][0]["outputs"]["host"], host);
    assert_eq!(pdns.rrsets("example.test", host), 1);
}

/// Server down: retried until it is back.
fn changed_while_the_server_is_down_it_is_retried_until_it_is_back(
    wharf: &Client,
    pdns: &mut PowerDns,
    host: &str,
) {
    pdns.stop();
    let delta = json!([{ "op": "replace", "path": "/workloads/web/resources/dns/params/address",
                         "value": "192.0.2.20" }])
    .to_string();
    let queued = wharf.ok(&["deploy", "--delta", &delta, "--app", "shop", "--env", "dev"]);
    assert!(queued.contains("Deployment 3"), "{queued}");
    std::thread::sleep(Duration::from_millis(600));
    pdns.launch();
    wait_until_succeeded(wharf, "dev", "3");
    assert_eq!(pdns.dig(host), "192.0.2.20");
}

/// A wrong key fails for good, saying so.
fn a_wrong_key_fails_for_good_saying_so(server: &Server, wharf: &Client) {
    post(
        server,
        "/api/v1/resource-definitions",
        json!({ "id": "dns-wrong", "type": "dns", "driver": "pdns",
                "driver_inputs": { "values": { "zone": "example.test" },
                                   "secrets": { "api_key": "not-the-key" } },
                "criteria": [{ "class": "wrong" }] }),
    );
    let wrong = workload(json!({ "dns": { "type": "dns", "class": "wrong" } }));
    wharf.ok(&["envs", "create", "shop", "qa", "--type", "development"]);
    let failed = wharf.fails(&deploy_shop(&wrong, "qa"));
    assert!(failed.contains("authentication failed"), "{failed}");
    let d = wharf.json(&["deployments", "get", "shop", "qa", "1"]);
    assert!(
        d["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PermissionDenied"),
        "a permanent error: {d}"
    );
}

/// A set that no longer uses it: deleted once the set serves without it, and another
/// environment's record is not.
fn deleted_once_a_set_serves_without_it(wharf: &Client, pdns: &PowerDns, file: &Path, host: &str) {
    wharf.ok(&["envs", "create", "shop", "pr-1", "--type", "development"]);
    wharf.ok(&deploy_shop(file, "pr-1"));
    let preview = output(wharf, "pr-1", "host");
    assert_ne!(preview, host);
    assert_eq!(pdns.dig(&preview), "192.0.2.10");
    let without = json!([
        { "op": "remove", "path": "/workloads/web/resources/dns" },
        { "op": "replace", "path": "/workloads/web/containers/main/variables/HOST", "value": "none" },
    ])
    .to_string();
    let out = wharf.ok(&[
        "deploy", "--delta", &without, "--app", "shop", "--env", "pr-1", "--follow",
    ]);
    assert!(
        out.contains("deprovisioned what the set no longer uses: dns.default#web.dns"),
        "{out}"
    );
    assert_eq!(pdns.dig(&preview), "", "the record is gone");
    assert_eq!(pdns.rrsets("example.test", &preview), 0);
    assert_eq!(pdns.dig(host), "192.0.2.20", "another environment's is not");
    let status = wharf.json(&["status", "shop", "pr-1"]);
    assert_eq!(status["resources"], json!([]), "{status}");
    let logs = wharf.ok(&["logs", "shop", "pr-1", "web"]);
    assert!(logs.contains("host=none"), "{logs}");
}

#[test]
#[ignore = "needs PowerDNS: apt-get install pdns-server pdns-backend-sqlite3 bind9-dnsutils sqlite3 (.ci/run does)"]
fn without_the_grant_the_dns_driver_is_not_granted_and_nothing_is_reached() {
    let pdns = PowerDns::start();
    pdns.create_zone("example.test");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    dns_platform(&server, &pdns, false);
    wharf.ok(&["apps", "create", "shop"]);
    wharf.ok(&["envs", "create", "shop", "dev", "--type", "development"]);
    let file = workload(json!({ "dns": { "type": "dns" } }));
    let failed = wharf.fails(&deploy_shop(&file, "dev"));
    assert!(
        failed.contains(&format!("not granted: http to {}", pdns.api)),
        "{failed}"
    );
    let (_, zone) = http(
        "GET",
        &format!("{}/api/v1/servers/localhost/zones/example.test.", pdns.api),
        &[("x-api-key", &pdns.key)],
        "",
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&zone).unwrap()["rrsets"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "only the zone's SOA and NS: {zone}"
    );
    assert!(server.stop().success());
}
