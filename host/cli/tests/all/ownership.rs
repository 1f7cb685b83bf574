//! Drivers own what they create, tried as app `evil`'s developer would, against the real
//! systems: asking for a victim's resource by name, for the server's admin role, for what
//! ops made by hand. Each attempt is refused with a clear error, and the victim's
//! resource, its credentials and its data are checked unchanged in the system itself,
//! also after `evil`'s environment is deleted.

use crate::drivers::{EMPTY_SHA256, Moto, Postgres, PowerDns, http, passable};
use crate::serve::{Server, start};
use crate::support::{Client, post};
use crate::tenancy::developer;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A workload `web` that sleeps, with one resource `r` of `res_type` (class `class`, and
/// `params`), and its variables.
fn workload(res_type: &str, class: &str, params: Value, variables: Value) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("score.yaml");
    let mut resource = json!({ "type": res_type, "class": class });
    if !params.is_null() {
        resource["params"] = params;
    }
    let doc = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web" },
        "containers": { "main": {
            "image": "busybox",
            "command": ["sh", "-c", "exec sleep 600"],
            "variables": variables,
        } },
        "resources": { "res": resource },
    });
    std::fs::write(&file, doc.to_string()).unwrap();
    file
}

/// `dev` deploys `file` to `app/env` (creating the environment); the client's output,
/// and whether it succeeded.
fn deploy(dev: &Client, app: &str, env: &str, file: &Path) -> (bool, String) {
    let _ = dev.run(&["envs", "create", app, env, "--type", "development"]);
    let out = dev.run(&[
        "deploy",
        "-f",
        file.to_str().unwrap(),
        "--app",
        app,
        "--env",
        env,
        "--follow",
    ]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An output of the environment's only resource.
fn output(dev: &Client, app: &str, env: &str, key: &str) -> String {
    let status = dev.json(&["status", app, env]);
    status["resources"][0]["outputs"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no output {key}: {status}"))
        .to_string()
}

/// The admin, a victim's developer and an attacker's, on a new server.
fn tenants(server: &Server) -> (Client, Client, Client) {
    let admin = Client::new(server);
    let victim = developer(&admin, server, "victim");
    let evil = developer(&admin, server, "evil");
    (admin, victim, evil)
}

/// An attempt that must fail: refused with a message that has `says`.
fn refused(attempt: (bool, String), says: &str) {
    let (ok, text) = attempt;
    assert!(!ok, "succeeded:\n{text}");
    assert!(text.contains(says), "no {says:?} in:\n{text}");
}

/// Two definitions of `res_type` with `driver` and `inputs`: class `default` lets
/// workloads choose the name, class `strict` does not.
fn definitions(server: &Server, res_type: &str, driver: &str, inputs: Value) {
    post(server, "/api/v1/resource-types", json!({ "id": res_type }));
    for (class, allow) in [
        ("default", json!(["name", "address"])),
        ("strict", Value::Null),
    ] {
        let mut body = json!({ "id": format!("{res_type}-{class}"), "type": res_type,
            "driver": driver, "driver_inputs": inputs, "criteria": [{ "class": class }] });
        if !allow.is_null() {
            body["allow_params"] = allow;
        }
        post(server, "/api/v1/resource-definitions", body);
    }
}

#[test]
#[ignore = "needs PostgreSQL: apt-get install postgresql (.ci/run does)"]
fn postgres_never_hands_over_another_resources_database_or_the_admin_role() {
    let pg = Postgres::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let (admin, victim, evil) = tenants(&server);
    let address = format!("127.0.0.1:{}", pg.port);
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "pg", "plugin": "postgres",
                "config": { "values": { "host": "127.0.0.1", "port": pg.port },
                            "secrets": { "password": pg.password } },
                "grants": { "sockets": [address] } }),
    );
    definitions(&server, "postgres", "pg", json!({}));
    let vars = json!({ "URL": "${resources.res.url}" });

    // The victim's database, with data in it.
    let (ok, text) = deploy(
        &victim,
        "victim",
        "dev",
        &workload("postgres", "default", Value::Null, vars.clone()),
    );
    assert!(ok, "{text}");
    let db = output(&victim, "victim", "dev", "name");
    pg.sql(
        &db,
        "CREATE TABLE orders (n int); INSERT INTO orders VALUES (42)",
    );
    let role_password = |role: &str| {
        pg.sql(
            "postgres",
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"),
        )
    };
    let (victim_password, admin_password) = (role_password(&db), role_password("postgres"));

    // Asking for the victim's database, the admin role, a role that owns nothing here:
    // refused before anything changes.
    refused(
        deploy(
            &evil,
            "evil",
            "dev",
            &workload(
                "postgres",
                "default",
                json!({ "name": "postgres" }),
                vars.clone(),
            ),
        ),
        "privileged role",
    );
    refused(
        deploy(
            &evil,
            "evil",
            "dev",
            &workload("postgres", "default", json!({ "name": db }), vars.clone()),
        ),
        "is not resource evil/dev/postgres.default#web.res's",
    );
    // Where ops did not let names through, the name never reaches the driver.
    refused(
        deploy(
            &evil,
            "evil",
            "qa",
            &workload("postgres", "strict", json!({ "name": db }), vars.clone()),
        ),
        "params.name: resource definition postgres-strict does not let workloads set it",
    );

    // Deleting evil's environments touches nothing of the victim's, nor the admin.
    admin.ok(&["envs", "delete", "evil", "dev"]);
    admin.ok(&["envs", "delete", "evil", "qa"]);
    assert_eq!(role_password(&db), victim_password, "the victim's password");
    assert_eq!(
        role_password("postgres"),
        admin_password,
        "the admin's password"
    );
    assert_eq!(
        pg.sql(&db, "SELECT n FROM orders"),
        "42",
        "the victim's data"
    );
    assert_eq!(
        pg.sql(
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'")
        ),
        db
    );

    names_that_read_alike_are_still_two_names(&admin, &pg, &vars);
    assert!(server.stop().success());
}

/// Names that read alike are still two names: apps `a-b` and `a` with environments `c`
/// and `b-c` get two databases.
fn names_that_read_alike_are_still_two_names(admin: &Client, pg: &Postgres, vars: &Value) {
    for (app, env) in [("a-b", "c"), ("a", "b-c")] {
        admin.ok(&["apps", "create", app]);
        let (ok, text) = deploy(
            admin,
            app,
            env,
            &workload("postgres", "default", Value::Null, vars.clone()),
        );
        assert!(ok, "{text}");
    }
    let (one, other) = (
        output(admin, "a-b", "c", "name"),
        output(admin, "a", "b-c", "name"),
    );
    assert_ne!(one, other);
    assert_eq!(
        pg.sql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname IN ('{one}', '{other}')")
        ),
        "2"
    );
}

#[test]
#[ignore = "needs PowerDNS: apt-get install pdns-server pdns-backend-sqlite3 bind9-dnsutils sqlite3 (.ci/run does)"]
fn the_dns_driver_never_rewrites_a_record_it_did_not_make() {
    let pdns = PowerDns::start();
    pdns.create_zone("example.test");
    // A record ops made by hand.
    let (status, text) = http(
        "PATCH",
        &format!("{}/api/v1/servers/localhost/zones/example.test.", pdns.api),
        &[("x-api-key", &pdns.key), ("content-type", "application/json")],
        &json!({ "rrsets": [{ "name": "www.example.test.", "type": "A", "ttl": 60,
            "changetype": "REPLACE", "records": [{ "content": "192.0.2.80", "disabled": false }] }] })
        .to_string(),
    )
    .unwrap();
    assert_eq!(status, 204, "{text}");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let (admin, victim, evil) = tenants(&server);
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "pdns", "plugin": "dns", "config": { "values": { "api_url": pdns.api } },
                "grants": { "http": [pdns.api] } }),
    );
    definitions(
        &server,
        "dns",
        "pdns",
        json!({ "values": { "zone": "example.test" }, "secrets": { "api_key": pdns.key } }),
    );
    let vars = json!({ "HOST": "${resources.res.host}" });
    let (ok, text) = deploy(
        &victim,
        "victim",
        "dev",
        &workload(
            "dns",
            "default",
            json!({ "address": "192.0.2.10" }),
            vars.clone(),
        ),
    );
    assert!(ok, "{text}");
    let host = output(&victim, "victim", "dev", "host");
    let label = host.trim_end_matches(".example.test").to_string();

    for name in [label.as_str(), "www"] {
        refused(
            deploy(
                &evil,
                "evil",
                "dev",
                &workload(
                    "dns",
                    "default",
                    json!({ "name": name, "address": "203.0.113.66" }),
                    vars.clone(),
                ),
            ),
            "is not resource evil/dev/dns.default#web.res's",
        );
    }
    admin.ok(&["envs", "delete", "evil", "dev"]);
    assert_eq!(pdns.dig(&host), "192.0.2.10", "the victim's record");
    assert_eq!(pdns.dig("www.example.test"), "192.0.2.80", "ops' record");
    assert_eq!(pdns.rrsets("example.test", "www.example.test"), 1);
    // The victim's own deletion removes its record, and only it.
    admin.ok(&["envs", "delete", "victim", "dev"]);
    assert_eq!(pdns.dig(&host), "");
    assert_eq!(pdns.dig("www.example.test"), "192.0.2.80");
    assert!(server.stop().success());
}

#[test]
fn the_volume_driver_never_adopts_a_directory_it_did_not_make() {
    let base = tempfile::tempdir().unwrap();
    passable(base.path());
    let foreign = base.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("keep.txt"), "ops' file").unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let (admin, victim, evil) = tenants(&server);
    let base_path = base.path().to_str().unwrap();
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "vol", "plugin": "volume", "config": { "values": { "base": base_path } },
                "grants": { "directories": [base_path] } }),
    );
    definitions(&server, "volume", "vol", json!({}));
    let vars = json!({ "DIR": "${resources.res.path}" });
    let (ok, text) = deploy(
        &victim,
        "victim",
        "dev",
        &workload("volume", "default", Value::Null, vars.clone()),
    );
    assert!(ok, "{text}");
    let dir = PathBuf::from(output(&victim, "victim", "dev", "path"));
    std::fs::write(dir.join("data.txt"), "the victim's").unwrap();
    let name = dir.file_name().unwrap().to_str().unwrap().to_string();

    for asked in [name.as_str(), "foreign"] {
        refused(
            deploy(
                &evil,
                "evil",
                "dev",
                &workload("volume", "default", json!({ "name": asked }), vars.clone()),
            ),
            "is not resource evil/dev/volume.default#web.res's",
        );
    }
    admin.ok(&["envs", "delete", "evil", "dev"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("data.txt")).unwrap(),
        "the victim's"
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("keep.txt")).unwrap(),
        "ops' file"
    );
    admin.ok(&["envs", "delete", "victim", "dev"]);
    assert!(!dir.exists(), "the victim's own deletion removes it");
    assert!(foreign.join("keep.txt").exists());
    assert!(server.stop().success());
}

#[test]
#[ignore = "needs moto: python3 -m venv target/moto-venv && target/moto-venv/bin/pip install moto[server] (.ci/run does)"]
fn the_s3_driver_gives_each_bucket_its_own_key_and_never_another_bucket() {
    let moto = Moto::start();
    let (admin_key, admin_secret) = moto.enforce_iam();
    // A bucket ops made by hand, with the admin's key.
    let out = std::process::Command::new("curl")
        .args(["-sSf", "-X", "PUT", "-H", EMPTY_SHA256])
        .args(["--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{admin_key}:{admin_secret}"))
        .arg(format!("{}/ops-archive", moto.url))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let (admin, victim, evil) = tenants(&server);
    post(
        &server,
        "/api/v1/plugin-installations",
        json!({ "id": "store", "plugin": "s3",
                "config": { "values": { "endpoint": moto.url, "force": true },
                            "secrets": { "access_key_id": admin_key, "secret_access_key": admin_secret } },
                "grants": { "http": [moto.url] } }),
    );
    definitions(&server, "s3", "store", json!({}));
    // The workload writes into its bucket, and tries another's, with the key it got.
    let (ok, text) = deploy(
        &victim,
        "victim",
        "dev",
        &writer(Value::Null, "ops-archive"),
    );
    assert!(ok, "{text}");
    let bucket = output(&victim, "victim", "dev", "bucket");
    let logs = logs_of(&victim, "victim");
    assert!(logs.contains("own bucket: 200"), "{logs}");
    assert!(
        logs.contains("other bucket: 403"),
        "refused on a bucket not its own: {logs}"
    );

    // evil's own key: its bucket only.
    let (ok, text) = deploy(&evil, "evil", "dev", &writer(Value::Null, &bucket));
    assert!(ok, "{text}");
    let evil_bucket = output(&evil, "evil", "dev", "bucket");
    let logs = logs_of(&evil, "evil");
    assert!(logs.contains("own bucket: 200"), "{logs}");
    assert!(
        logs.contains("other bucket: 403"),
        "refused on the victim's bucket: {logs}"
    );
    // Asking for the victim's bucket, or ops' by name: refused, nothing changes.
    for name in [bucket.as_str(), "ops-archive"] {
        refused(
            deploy(
                &evil,
                "evil",
                "qa",
                &writer(json!({ "name": name }), &bucket),
            ),
            "is not resource evil/qa/s3.default#web.res's",
        );
    }

    // Deleting evil's environments deletes its bucket and its user, nothing else.
    admin.ok(&["envs", "delete", "evil", "dev"]);
    admin.ok(&["envs", "delete", "evil", "qa"]);
    let admin_key = (admin_key.as_str(), admin_secret.as_str());
    let (status, users) = moto.iam(admin_key, "Action=ListUsers");
    assert_eq!(status, 200, "{users}");
    assert!(
        !users.contains(&format!("<UserName>{evil_bucket}</UserName>")),
        "{users}"
    );
    assert!(
        users.contains(&format!("<UserName>{bucket}</UserName>")),
        "{users}"
    );
    let buckets = moto.buckets_with(admin_key);
    assert!(
        buckets.contains(&bucket) && buckets.contains(&"ops-archive".to_string()),
        "{buckets:?}"
    );
    assert!(!buckets.contains(&evil_bucket), "{buckets:?}");
    assert!(
        moto.object_with(admin_key, &bucket, &format!("from-{bucket}"))
            .is_some()
    );
    assert!(server.stop().success());
}

/// A workload of `params` that writes into its bucket, and tries `other`, with the key it
/// got; it says what each answered.
fn writer(params: Value, other: &str) -> PathBuf {
    let vars = json!({
        "ENDPOINT": "${resources.res.endpoint}", "BUCKET": "${resources.res.bucket}",
        "KEY": "${resources.res.access_key_id}", "SECRET": "${resources.res.secret_access_key}",
        "OTHER": other,
    });
    let file = workload("s3", "default", params, vars);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["containers"]["main"]["command"] = json!([
        "sh",
        "-c",
        "put() { curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 \
           --user \"$KEY:$SECRET\" -X PUT --data-binary x -H \"x-amz-content-sha256: \
           $(printf x | sha256sum | cut -d' ' -f1)\" \"$ENDPOINT/$1/from-$BUCKET\"; }; \
         echo \"own bucket: $(put $BUCKET)\"; echo \"other bucket: $(put $OTHER)\"; \
         exec sleep 600"
    ]);
    std::fs::write(&file, doc.to_string()).unwrap();
    file
}

/// The logs of `app`'s `dev` once the writer said what the other bucket answered.
fn logs_of(dev: &Client, app: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let logs = dev.ok(&["logs", app, "dev", "web"]);
        if logs.contains("other bucket:") {
            return logs;
        }
        assert!(std::time::Instant::now() < deadline, "{logs}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
