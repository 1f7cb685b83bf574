//! examples/shop on all three real servers at once, through `wharf up` as its README
//! runs it ([`Up`]): started, stopped and started again, then its environment deleted.

use super::{Moto, Postgres, PowerDns};
use crate::support::get;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// examples/shop as its README runs it (`wharf up examples/shop`), with platform.yaml
/// pointed at the servers started here: a visit is counted in the database, a receipt put
/// in the bucket, and the host name resolves.
#[test]
#[ignore = "needs PostgreSQL, PowerDNS and moto (.ci/run installs them)"]
fn the_shop_example_runs_on_real_servers() {
    let (pg, pdns, moto) = (Postgres::start(), PowerDns::start(), Moto::start());
    pdns.create_zone("shop.test");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("shop");
    std::fs::create_dir(&app).unwrap();
    for file in ["score.yaml", "shop.py"] {
        std::fs::copy(example.join(file), app.join(file)).unwrap();
    }
    let mut platform = std::fs::read_to_string(example.join("platform.yaml")).unwrap();
    for (from, to) in [
        ("127.0.0.1:5432", format!("127.0.0.1:{}", pg.port)),
        ("port: 5432", format!("port: {}", pg.port)),
        ("admin-secret", pg.password.clone()),
        ("http://127.0.0.1:8081", pdns.api.clone()),
        ("wharf-example-key", pdns.key.clone()),
        ("http://127.0.0.1:5000", moto.url.clone()),
    ] {
        assert!(platform.contains(from), "platform.yaml has {from}");
        platform = platform.replace(from, &to);
    }
    std::fs::write(app.join("platform.yaml"), platform).unwrap();

    let data = tempfile::tempdir().unwrap();
    let logs = || {
        let dir = data.path().join("envs/shop/dev/logs");
        std::fs::read_dir(&dir)
            .map(|files| {
                files
                    .filter_map(Result::ok)
                    .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    let visit = |url: &str, n: u32| {
        let (status, body) =
            get(url).unwrap_or_else(|| panic!("the shop answers at {url}; its log:\n{}", logs()));
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(&format!("visits so far (from the database): {n}\n")),
            "{body}"
        );
        body
    };
    let count = |sql: &str| pg.sql("postgres", sql);
    let mut up = Up::start(data.path(), &app);
    visit(&up.url, 1);
    let resources: Value =
        serde_json::from_str(&up.wharf(&["status", "shop", "dev", "-o", "json"])).unwrap();
    let db = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uid"].as_str().unwrap().starts_with("postgres"))
        .unwrap()["outputs"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let db = db.as_str();
    assert!(db.starts_with("shop_dev_shop_db_"), "{db}");
    let body = visit(&up.url, 2);
    let field = |prefix: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {body}"))
            .to_string()
    };
    let host = field("Welcome to the shop at ");
    assert!(host.ends_with(".shop.test"), "{host}");
    assert_eq!(pdns.dig(&host), "127.0.0.1");
    let bucket = field("receipts in bucket ");
    assert_eq!(moto.object(&bucket, "visits/2").as_deref(), Some("visit 2"));
    assert_eq!(
        pg.sql(db, "SELECT count(*) FROM visits"),
        "2",
        "the visits are in the shop's own database"
    );
    let status = up.wharf(&["status", "shop", "dev"]);
    assert!(
        status.contains(&format!("host={host}")) && status.contains("url=(secret)"),
        "outputs shown, secrets by name only: {status}"
    );

    // Stopped and started again: deployed again, onto the same database, record and bucket.
    up.stop();
    assert!(get(&up.url).is_none(), "stopped with Wharf");
    let up = Up::start(data.path(), &app);
    visit(&up.url, 3);
    assert_eq!(
        count(&format!(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname = '{db}') || ',' || \
             (SELECT count(*) FROM pg_roles WHERE rolname = '{db}')"
        )),
        "1,1"
    );
    let zone = "shop.test";
    assert_eq!(pdns.rrsets(zone, &host), 1);
    assert_eq!(moto.buckets(), std::slice::from_ref(&bucket));
    assert_eq!(moto.object(&bucket, "visits/3").as_deref(), Some("visit 3"));

    // Deleting the environment removes them from the servers.
    up.wharf(&["envs", "delete", "shop", "dev"]);
    assert_eq!(
        count(&format!(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname = '{db}') + \
             (SELECT count(*) FROM pg_roles WHERE rolname = '{db}')"
        )),
        "0"
    );
    assert_eq!(pdns.dig(&host), "");
    assert_eq!(pdns.rrsets(zone, &host), 0);
    assert!(moto.buckets().is_empty());
    assert!(get(&up.url).is_none(), "the workload is gone");
}

/// `wharf up DIR` running: where the app answers, and the login it printed.
struct Up {
    child: Child,
    url: String,
    server: String,
    token: String,
}

impl Up {
    fn start(data: &Path, app: &Path) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--data-dir")
            .arg(data)
            .arg("up")
            .arg(app)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        let errors = child.stderr.take().unwrap();
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(errors).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let (mut url, mut login) = (None, None);
        let mut seen = String::new();
        while url.is_none() || login.is_none() {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("wharf up said no URL and login:\n{seen}"));
            if let Some(u) = line.strip_prefix("shop answers at ") {
                url = Some(u.trim().to_string());
            }
            if let Some(l) = line.strip_prefix("Use the CLI with: wharf login --server ") {
                let (server, token) = l.split_once(" --token ").unwrap();
                login = Some((server.to_string(), token.trim().to_string()));
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        std::thread::spawn(move || for _ in lines_rx {});
        let (server, token) = login.unwrap();
        Self {
            child,
            url: url.unwrap(),
            server,
            token,
        }
    }

    /// A CLI command against it; its standard output, which must succeed.
    fn wharf(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(args)
            .env("WHARF_SERVER", &self.server)
            .env("WHARF_TOKEN", &self.token)
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wharf {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM, which must be a clean stop.
    fn stop(&mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Up {
    /// A test that fails halfway leaves no server (nor its workloads) running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}
