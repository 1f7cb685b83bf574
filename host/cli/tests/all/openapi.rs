//! The OpenAPI document as other people's tools read it: a client generated from it by
//! openapi-python-client (PyPI) sets up the hello example's platform, creates its app and
//! environment and deploys it against a running `wharf serve`. (The document itself is
//! checked by openapi-spec-validator in `.ci/schemathesis`.)

use crate::serve::start;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The generator's virtualenv, kept in target/ (`.ci/run` makes it).
const VENV: &str = "target/openapi-venv";
const INSTALL: &str = "python3 -m venv target/openapi-venv && target/openapi-venv/bin/pip \
     install openapi-python-client==0.29.1 pyyaml==6.0.4 (.ci/run does)";

#[test]
#[ignore = "needs openapi-python-client: python3 -m venv target/openapi-venv && target/openapi-venv/bin/pip install openapi-python-client==0.29.1 pyyaml==6.0.4 (.ci/run does)"]
fn a_client_generated_from_the_openapi_document_deploys_the_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(VENV).join("bin");
    assert!(
        venv.join("openapi-python-client").exists(),
        "openapi-python-client is not installed; install it with: {INSTALL}"
    );
    let data = tempfile::tempdir().unwrap();
    let server = start(&data.path().join("data"));
    let token = server
        .token
        .clone()
        .expect("a new Wharf shows its admin token");

    let (status, document) = server.request("GET", "/api/v1/openapi.json", None, "");
    assert_eq!(status, 200);
    let document_file = data.path().join("openapi.json");
    std::fs::write(&document_file, document).unwrap();
    // No formatter runs after generation (the default runs ruff, which is not needed).
    let config = data.path().join("generator.yaml");
    std::fs::write(&config, "post_hooks: []\n").unwrap();
    let package = data.path().join("client/wharf_api_client");
    let generated = Command::new(venv.join("openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(&document_file)
        .arg("--output-path")
        .arg(&package)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&generated.stdout).into_owned()
        + &String::from_utf8_lossy(&generated.stderr);
    assert!(generated.status.success(), "generation failed: {said}");
    assert!(
        !said.contains("WARNING"),
        "the generator skipped parts of the document: {said}"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/all/openapi/deploy_hello.py");
    let run = Command::new(venv.join("python"))
        .arg(script)
        .arg(format!("http://{}", server.addr))
        .arg(&token)
        .arg(root.join("examples/hello"))
        .env("PYTHONPATH", data.path().join("client"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the generated client failed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let result: Value = serde_json::from_slice(&run.stdout).expect("the script prints JSON");
    assert_eq!(result["status"], "succeeded", "{result}");
    let page = result["page"].as_str().unwrap();
    assert!(page.starts_with("Hello from hello"), "{page}");
    assert!(
        page.contains("message of the day: Ship small changes often."),
        "{page}"
    );

    // What the generated client did is what the CLI sees.
    let (status, body) = server.request(
        "GET",
        "/api/v1/apps/hello/envs/dev/deployments",
        Some(&token),
        "",
    );
    assert_eq!(status, 200);
    let deployments: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        deployments[0]["comment"], "generated client",
        "{deployments}"
    );
}
