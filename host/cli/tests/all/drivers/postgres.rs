//! The postgres driver against a PostgreSQL server of its own: a database and a role
//! for the workload, kept with their credentials across deployments, made once the
//! server is back, refused with a wrong password or without the grant, and dropped with
//! the environment.

use super::{Postgres, deploy, wait_until_succeeded};
use crate::serve::{Server, start};
use crate::support::{Client, post};
use serde_json::json;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The postgres driver installed as `pg` (granted the server) and as `pg-ungranted`
/// (pointed at `bystander_port`, granted only the server), with definitions of classes
/// `default`, `wrong` (a wrong admin password) and `ungranted`.
fn postgres_platform(server: &Server, pg: &Postgres, bystander_port: u16) {
    let address = format!("127.0.0.1:{}", pg.port);
    for (id, port, grants) in [
        ("pg", pg.port, json!({ "sockets": [address] })),
        // Granted another address: the connection to the listener is what is refused.
        (
            "pg-ungranted",
            bystander_port,
            json!({ "sockets": [address] }),
        ),
    ] {
        post(
            server,
            "/api/v1/plugin-installations",
            json!({ "id": id, "plugin": "postgres",
                    "config": { "values": { "host": "127.0.0.1", "port": port } },
                    "grants": grants }),
        );
    }
    post(
        server,
        "/api/v1/resource-types",
        json!({ "id": "postgres" }),
    );
    for (id, driver, class, password) in [
        ("postgres", "pg", "default", pg.password.as_str()),
        ("postgres-wrong", "pg", "wrong", "not-the-password"),
        (
            "postgres-ungranted",
            "pg-ungranted",
            "ungranted",
            pg.password.as_str(),
        ),
    ] {
        post(
            server,
            "/api/v1/resource-definitions",
            json!({ "id": id, "type": "postgres", "driver": driver,
                    "driver_inputs": { "secrets": { "password": password } },
                    "criteria": [{ "class": class }] }),
        );
    }
}

/// A workload that records a visit in its database of class `class` and says so, with
/// a hash of the URL it was given (the credentials, never shown).
fn visitor(class: &str) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("score.yaml");
    let doc = json!({
        "apiVersion": "score.dev/v1b1",
        "metadata": { "name": "web" },
        "containers": { "main": {
            "image": "busybox",
            "command": ["sh", "-c",
                "echo \"url-hash $(printf %s \"$DATABASE_URL\" | sha256sum | cut -c1-16)\"; \
                 psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -qc \
                 'CREATE TABLE IF NOT EXISTS visits (n int); INSERT INTO visits VALUES (1)' \
                 && echo \"visit recorded as $DB_USER\"; exec sleep 600"],
            "variables": { "DATABASE_URL": "${resources.db.url}", "DB_USER": "${resources.db.username}",
                           "RUN": "1" },
        } },
        "resources": { "db": { "type": "postgres", "class": class } },
    });
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// dev's logs once they have `needle` `times` times.
fn logs_with(wharf: &Client, needle: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = wharf.ok(&["logs", "shop", "dev", "web"]);
        if logs.matches(needle).count() >= times {
            return logs;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{logs}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs PostgreSQL: apt-get install postgresql (.ci/run does)"]
fn the_postgres_driver_gives_the_workload_a_database_of_its_own() {
    let pg = Postgres::start();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let wharf = Client::new(&server);
    // A listener nothing is granted to: it must see no connection.
    let bystander = TcpListener::bind("127.0.0.1:0").unwrap();
    bystander.set_nonblocking(true).unwrap();
    let bystander_port = bystander.local_addr().unwrap().port();
    postgres_platform(&server, &pg, bystander_port);
    wharf.ok(&["apps", "create", "shop"]);
    for env in ["dev", "qa", "none"] {
        wharf.ok(&["envs", "create", "shop", env, "--type", "development"]);
    }

    let db = a_database_the_workload_owns_and_writes_to(&wharf, &pg);
    let db = db.as_str();
    redeployed_it_keeps_the_database_and_its_credentials(&wharf, &pg, db);
    changed_while_the_server_is_down_it_is_done_once_it_is_back(&wharf, &pg);
    a_wrong_admin_password_is_a_permanent_error_that_says_so(&wharf);
    not_granted_it_is_refused_before_a_connection_is_made(&wharf, &bystander);
    deleting_the_environment_drops_the_database_and_the_role(&wharf, &pg, db);
    assert!(server.stop().success());
}

/// Deployed to dev: a database named after the resource, owned by its role, where the
/// workload recorded a visit. Returns its name.
fn a_database_the_workload_owns_and_writes_to(wharf: &Client, pg: &Postgres) -> String {
    assert!(deploy(wharf, "dev", &visitor("default")).status.success());
    let status = wharf.json(&["status", "shop", "dev"]);
    let db = status["resources"][0]["outputs"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"))
        .to_string();
    assert!(db.starts_with("shop_dev_web_db_"), "{db}");
    logs_with(wharf, &format!("visit recorded as {db}"), 1);
    assert_eq!(pg.sql(&db, "SELECT count(*) FROM visits"), "1");
    assert_eq!(
        pg.sql(
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'")
        ),
        db,
        "the role owns its database"
    );
    db
}

/// Redeploy (the workload restarted by a changed variable): the same database and
/// credentials.
fn redeployed_it_keeps_the_database_and_its_credentials(wharf: &Client, pg: &Postgres, db: &str) {
    let delta = json!([{ "op": "replace", "path": "/workloads/web/containers/main/variables/RUN",
                         "value": "2" }])
    .to_string();
    assert!(
        wharf
            .run(&[
                "deploy", "--delta", &delta, "--app", "shop", "--env", "dev", "--follow"
            ])
            .status
            .success()
    );
    let logs = logs_with(wharf, &format!("visit recorded as {db}"), 2);
    let hashes: std::collections::BTreeSet<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("url-hash "))
        .collect();
    assert_eq!(hashes.len(), 1, "the credentials did not change: {logs}");
    assert_eq!(pg.sql(db, "SELECT count(*) FROM visits"), "2");
    assert_eq!(
        pg.sql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")
        ),
        "1"
    );
}

/// Server down: retryable, then done once it is back.
fn changed_while_the_server_is_down_it_is_done_once_it_is_back(wharf: &Client, pg: &Postgres) {
    pg.stop();
    let delta = json!([{ "op": "replace", "path": "/workloads/web/containers/main/variables/RUN",
                         "value": "3" }])
    .to_string();
    wharf.ok(&["deploy", "--delta", &delta, "--app", "shop", "--env", "dev"]);
    std::thread::sleep(Duration::from_millis(600));
    pg.launch();
    wait_until_succeeded(wharf, "dev", "3");
}

/// A wrong admin password: a permanent error that says so.
fn a_wrong_admin_password_is_a_permanent_error_that_says_so(wharf: &Client) {
    let out = deploy(wharf, "qa", &visitor("wrong"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("authentication failed"),
        "{text}"
    );
    let d = wharf.json(&["deployments", "get", "shop", "qa", "1"]);
    assert!(
        d["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PermissionDenied"),
        "{d}"
    );
}

/// Not granted: refused before a connection is made.
fn not_granted_it_is_refused_before_a_connection_is_made(wharf: &Client, bystander: &TcpListener) {
    let bystander_port = bystander.local_addr().unwrap().port();
    let out = deploy(wharf, "none", &visitor("ungranted"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!(
            "not granted: tcp connect to 127.0.0.1:{bystander_port}"
        )),
        "{text}"
    );
    assert!(
        bystander.accept().is_err(),
        "the ungranted listener saw no connection"
    );
}

/// Deleting the environment drops the database and the role.
fn deleting_the_environment_drops_the_database_and_the_role(
    wharf: &Client,
    pg: &Postgres,
    db: &str,
) {
    wharf.ok(&["envs", "delete", "shop", "dev"]);
    assert_eq!(
        pg.sql(
            "postgres",
            &format!(
                "SELECT (SELECT count(*) FROM pg_database WHERE datname = '{db}') + \
                    (SELECT count(*) FROM pg_roles WHERE rolname = '{db}')"
            )
        ),
        "0"
    );
}
