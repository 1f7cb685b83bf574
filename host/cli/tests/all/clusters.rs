//! Clusters as ops manage them with `wharf clusters`, and what must never happen to their
//! credentials: no response, audit entry, deployment event or log line carries them, and
//! the database holds them sealed. The cluster's API server is a loopback port nothing
//! listens on, so connecting fails, and the failure is reported in words.

use crate::serve::{Server, start_with};
use crate::support::Client;
use std::path::Path;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLW5ldmVyLXNob3du.sig";
const KEY_MARK: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A kubeconfig for `api` whose user has a client certificate and key inline.
fn kubeconfig(api: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster:\n    \
         server: {api}\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    \
         client-key-data: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n",
        base64("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        base64(&format!(
            "-----BEGIN PRIVATE KEY-----\n{KEY_MARK}\n-----END PRIVATE KEY-----\n"
        )),
    )
}

/// A URL on loopback where nothing listens.
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// A server (logging at debug) with the clusters `dev-k8s` (a token) and `cert-k8s` (a
/// kubeconfig), both at `api`; what the CLI printed.
fn two_clusters(dir: &Path, api: &str) -> (Server, Client, String) {
    let server = start_with(dir, &[("WHARF_LOG", "debug")]);
    let wharf = Client::new(&server);
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.join("kubeconfig"), kubeconfig(api)).unwrap();
    let mut printed = wharf.ok(&[
        "clusters",
        "create",
        "dev-k8s",
        "--api-server",
        api,
        "--token-file",
        dir.join("token").to_str().unwrap(),
    ]);
    printed += &wharf.ok(&[
        "clusters",
        "create",
        "cert-k8s",
        "--kubeconfig",
        dir.join("kubeconfig").to_str().unwrap(),
    ]);
    (server, wharf, printed)
}

#[test]
fn cluster_credentials_never_leave_the_server() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let api = nowhere();
    let (server, wharf, mut seen) = two_clusters(dir, &api);
    let listed = wharf.json(&["clusters", "list"]);
    assert_eq!(listed[0]["id"], "cert-k8s");
    assert_eq!(listed[0]["credentials"], "client-certificate");
    assert_eq!(listed[0]["source"], "kubeconfig");
    assert_eq!(listed[1]["credentials"], "token");
    seen += &listed.to_string();
    seen += &wharf.ok(&["clusters", "get", "dev-k8s", "-o", "json"]);
    let check = wharf.fails(&["clusters", "check", "dev-k8s"]);
    assert!(
        check.contains(&format!("cluster dev-k8s ({api})")),
        "{check}"
    );
    seen += &check;

    // An environment type on it; a deployment fails connecting, saying where.
    let target = r#"{"kind": "kubernetes", "cluster": "dev-k8s"}"#;
    wharf.ok(&["env-types", "create", "k8s", "--target", target]);
    wharf.ok(&["apps", "create", "shop"]);
    wharf.ok(&["envs", "create", "shop", "dev", "--type", "k8s"]);
    let score = dir.join("score.yaml");
    std::fs::write(
        &score,
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  \
                            main:\n    image: nginx:1.27\n",
    )
    .unwrap();
    let out = wharf.run(&[
        "deploy",
        "-f",
        score.to_str().unwrap(),
        "--app",
        "shop",
        "--env",
        "dev",
        "--follow",
    ]);
    let followed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{followed}");
    assert!(
        followed.contains("cluster dev-k8s") && followed.contains("namespace shop-dev"),
        "{followed}"
    );
    seen += &followed;
    seen += &wharf.ok(&["deployments", "get", "shop", "dev", "1", "-o", "json"]);
    seen += &wharf.ok(&["audit", "-o", "json"]);

    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains("deployment"),
        "the server logged at debug: {log}"
    );
    for (what, text) in [("the answers", &seen), ("the server's log", &log)] {
        assert!(!text.contains(TOKEN), "the token is in {what}");
        assert!(!text.contains(KEY_MARK), "the key is in {what}");
        assert!(
            !text.contains("c2VjcmV0LXRva2Vu"),
            "a part of the token is in {what}"
        );
    }
    let mut stored = Vec::new();
    for file in ["wharf.db", "wharf.db-wal"] {
        stored.extend(std::fs::read(dir.join(file)).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored);
    assert!(
        !stored.contains(TOKEN) && !stored.contains(KEY_MARK),
        "the database holds them in clear"
    );
}

#[test]
fn bad_clusters_are_refused_with_what_to_fix_and_a_used_one_stays() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (_server, wharf, _) = two_clusters(dir, &nowhere());
    let exec = kubeconfig("https://k8s.example.com")
        .replace("client-certificate-data", "exec: {command: sh}\n    x");
    std::fs::write(dir.join("exec"), exec).unwrap();
    let refused = wharf.fails(&[
        "clusters",
        "create",
        "bad",
        "--kubeconfig",
        dir.join("exec").to_str().unwrap(),
    ]);
    assert!(refused.contains("exec: not accepted"), "{refused}");
    let remote = wharf.fails(&[
        "clusters",
        "create",
        "bad",
        "--api-server",
        "http://k8s.example.com",
        "--token-file",
        dir.join("token").to_str().unwrap(),
    ]);
    assert!(
        remote.contains("/server") && remote.contains("http:// only to a loopback address"),
        "{remote}"
    );
    let taken = wharf.fails(&[
        "clusters",
        "create",
        "dev-k8s",
        "--api-server",
        "https://k8s.example.com",
        "--token-file",
        dir.join("token").to_str().unwrap(),
    ]);
    assert!(taken.contains("cluster dev-k8s"), "{taken}");
    assert_eq!(
        wharf.json(&["clusters", "list"]).as_array().unwrap().len(),
        2,
        "nothing stored"
    );

    let unknown = wharf.fails(&[
        "env-types",
        "create",
        "other",
        "--target",
        r#"{"kind": "kubernetes", "cluster": "nope"}"#,
    ]);
    assert!(
        unknown.contains("/target/cluster") && unknown.contains("wharf clusters create"),
        "{unknown}"
    );
    wharf.ok(&[
        "env-types",
        "create",
        "k8s",
        "--target",
        r#"{"kind": "kubernetes", "cluster": "dev-k8s"}"#,
    ]);
    let used = wharf.fails(&["clusters", "delete", "dev-k8s"]);
    assert!(
        used.contains("is the target of environment types k8s"),
        "{used}"
    );
    wharf.ok(&["clusters", "delete", "cert-k8s"]);
    assert_eq!(
        wharf.json(&["clusters", "list"]).as_array().unwrap().len(),
        1
    );
}
