//! The s3 driver against moto: a bucket the workload writes to with the credentials it
//! was given, adopted when deployed again, not reached without the grant, kept while it
//! holds objects unless the definition forces its deletion, and made once the store is
//! back after an outage.

use super::{Moto, deploy};
use crate::serve::{Server, start};
use crate::support::{Client, post};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Definition `id` of type `s3` for class `class`, with `driver`; `force` deletes a
/// bucket with what it holds.
fn definition(id: &str, driver: &str, class: &str, force: bool) -> Value {
    json!({ "id": id, "type": "s3", "driver": driver,
            "driver_inputs": { "values": { "force": force },
                               "secrets": { "access_key_id": "wharf", "secret_access_key": "s3cr3t" } },
            "criteria": [{ "class": class }] })
}

/// The s3 driver installed as `store` (granted moto) and `store-ungranted`, with a
/// definition for each: classes `default` and `ungranted`.
fn s3_platform(server: &Server, moto: &Moto) {
    for (id, grants) in [
        ("store", json!({ "http": [moto.url] })),
        ("store-ungranted", json!({})),
    ] {
        post(
            server,
            "/api/v1/plugin-installations",
            json!({ "id": id, "plugin": "s3", "config": { "values": { "endpoint": moto.url } },
                    "grants": grants }),
        );
    }
    post(server, "/api/v1/resource-types", json!({ "id": "s3" }));
    post(
        server,
        "/api/v1/resource-definitions",
        definition("s3", "store", "default", false),
    );
    post(
        server,
        "/api/v1/resource-definitions",
        definition("s3-ungranted", "store-ungranted", "ungranted", false),
    );
}

/// A workload that puts an object `greeting` into its bucket of class `class`, with the
/// credentials it was given, and says so.
fn uploader(class: &str) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("score.yaml");
    let doc = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web" },
        "containers": { "main": {
            "image": "busybox",
            "command": ["sh", "-c",
                "curl -sf --aws-sigv4 aws:amz:$REGION:s3 --user \"$KEY:$SECRET\" -X PUT -H content-type:text/plain \
                 --data-binary written-by-the-workload \"$ENDPOINT/$BUCKET/greeting\" \
                 && echo uploaded; exec sleep 600"],
            "variables": {
                "ENDPOINT": "${resources.files.endpoint}", "BUCKET": "${resources.files.bucket}",
                "REGION": "${resources.files.region}", "KEY": "${resources.files.access_key_id}",
                "SECRET": "${resources.files.secret_access_key}",
            },
        } },
        "resources": { "files": { "type": "s3", "class": class } },
    });
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

#[test]
#[ignore = "needs moto: python3 -m venv target/moto-venv && target/moto-venv/bin/pip install moto[server] (.ci/run does)"]
fn the_s3_driver_makes_a_bucket_the_workload_writes_to() {
    let mut moto = Moto::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    s3_platform(&server, &moto);
    wharf.ok(&["apps", "create", "shop"]);
    for env in ["dev", "qa"] {
        wharf.ok(&["envs", "create", "shop", env, "--type", "development"]);
    }
    let plain = uploader("default");

    let bucket = a_bucket_the_workload_writes_to_with_its_credentials(&wharf, &moto, &plain);
    assert!(deploy(&wharf, "dev", &plain).status.success(), "again");
    assert_eq!(moto.buckets(), [bucket.as_str()], "one bucket, adopted");
    not_granted_nothing_is_reached(&wharf, &moto);
    kept_while_it_holds_an_object_unless_the_definition_says_force(&server, &wharf, &moto, &bucket);
    made_once_the_store_is_back(&wharf, &mut moto, &plain);
    assert!(server.stop().success());
}

/// Deployed to dev: a bucket, its credentials secret outputs, and the workload's object
/// in it. Returns the bucket's name.
fn a_bucket_the_workload_writes_to_with_its_credentials(
    wharf: &Client,
    moto: &Moto,
    plain: &Path,
) -> String {
    let out = deploy(wharf, "dev", plain);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = wharf.json(&["status", "shop", "dev"]);
    let bucket = status["resources"][0]["outputs"]["bucket"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string();
    assert_eq!(
        status["resources"][0]["secret_outputs"],
        json!(["access_key_id", "secret_access_key"])
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let object = loop {
        let got = moto.object(&bucket, "greeting");
        if let Some(text) = got {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the workload wrote nothing: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        object,
        "written-by-the-workload",
        "{}",
        wharf.ok(&["logs", "shop", "dev"])
    );
    bucket
}

/// Not granted: nothing reached.
fn not_granted_nothing_is_reached(wharf: &Client, moto: &Moto) {
    let out = deploy(wharf, "qa", &uploader("ungranted"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("not granted: http to {}", moto.url)),
        "{text}"
    );
    assert_eq!(moto.buckets().len(), 1);
}

/// A bucket with an object is not deleted unless the definition says force.
fn kept_while_it_holds_an_object_unless_the_definition_says_force(
    server: &Server,
    wharf: &Client,
    moto: &Moto,
    bucket: &str,
) {
    let out = wharf.run(&["envs", "delete", "shop", "dev"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("is not empty"),
        "{text}"
    );
    assert_eq!(moto.buckets(), [bucket]);
    let (status, body) = server.request(
        "PUT",
        "/api/v1/resource-definitions/s3",
        server.token.as_deref(),
        &definition("s3", "store", "default", true).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    assert!(moto.buckets().is_empty(), "deleted with what it held");
}

/// Server down: retried, and done once it is back.
fn made_once_the_store_is_back(wharf: &Client, moto: &mut Moto, plain: &Path) {
    moto.stop();
    wharf.ok(&["envs", "create", "shop", "later", "--type", "development"]);
    let out = std::thread::scope(|s| {
        let deploying = s.spawn(|| deploy(wharf, "later", plain));
        std::thread::sleep(Duration::from_millis(300));
        moto.launch();
        deploying.join().unwrap()
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("retrying"), "{text}");
    assert_eq!(moto.buckets().len(), 1, "made once it was back");
}
