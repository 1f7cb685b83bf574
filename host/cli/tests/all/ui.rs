//! The web UI in a real browser: `wharf serve`, app `hello` with environment `dev` made
//! through the API, a viewer of the app, and `tests/browser/ui.mjs` (Debian's chromium
//! driven by playwright-core, every page checked by axe-core) doing what a developer does:
//! sign in, deploy and watch it live, look at the environment, tail the logs, roll back,
//! sign out; and what must fail: a viewer's deployment, a form without its CSRF token.
//!
//! With WHARF_SCREENSHOTS=DIR the script saves its screenshots there (`docs/screenshots`
//! holds the ones the README shows).

use crate::serve::start;
use crate::support::Client;
use std::path::Path;
use std::process::Command;

/// The hello example answering as `version`, its server starting 4 s late (so that its
/// deployment runs long enough to be watched).
fn hello(dir: &Path, file: &str, version: &str) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let score = std::fs::read_to_string(example.join("score.yaml"))
        .unwrap()
        .replace(
            r#"command: ["python3", "/app/server.py"]"#,
            &format!(r#"command: ["python3", "/app/server.py", "{version}"]"#),
        );
    assert!(
        score.contains(&format!("server.py\", \"{version}\"")),
        "the example's command changed"
    );
    std::fs::write(dir.join(file), score).unwrap();
    let server = std::fs::read_to_string(example.join("server.py")).unwrap();
    std::fs::write(
        dir.join("server.py"),
        format!("import time\ntime.sleep(4)\n{server}"),
    )
    .unwrap();
}

#[test]
#[ignore = "needs chromium and tests/browser's npm packages: apt-get install chromium && npm ci --prefix tests/browser (.ci/run does)"]
fn the_web_ui_in_a_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/browser/ui.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: npm ci --prefix tests/browser (.ci/run does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is not installed: apt-get install chromium (.ci/run does)"
    );
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let admin = Client::new(&server);
    admin.ok(&[
        "platform",
        "apply",
        "-f",
        root.join("examples/hello/platform.yaml").to_str().unwrap(),
    ]);
    admin.ok(&["apps", "create", "hello"]);
    admin.ok(&["envs", "create", "hello", "dev", "--type", "development"]);
    admin.ok(&["apps", "create", "other"]);
    admin.ok(&["envs", "create", "other", "dev", "--type", "development"]);
    admin.ok(&["users", "create", "viewer@example.com"]);
    for (role, scope) in [("member", "org"), ("viewer", "app:hello")] {
        admin.ok(&[
            "role-bindings",
            "grant",
            "viewer@example.com",
            role,
            "--scope",
            scope,
        ]);
    }
    let viewer = admin.json(&[
        "tokens",
        "create",
        "viewer@example.com",
        "--expires-in-days",
        "1",
    ]);
    hello(work.path(), "v1.yaml", "1");
    hello(work.path(), "v2.yaml", "2");
    let out = Command::new("node")
        .arg(&script)
        .env("WHARF_URL", format!("http://{}", server.addr))
        .env("WHARF_BIN", env!("CARGO_BIN_EXE_wharf"))
        .env("WHARF_ADMIN_TOKEN", server.token.as_deref().unwrap())
        .env("WHARF_VIEWER_TOKEN", viewer["token"].as_str().unwrap())
        .env("WHARF_WORK", work.path())
        .output()
        .expect("run node (apt-get install nodejs)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{said}");
    assert!(out.status.success(), "the browser test failed:\n{said}");
    assert!(said.contains("all browser checks passed"), "{said}");
}
