//! Deployments through the API: bad Score input is refused with every problem and
//! nothing is stored.

use super::*;

/// Each broken file, with the paths its problems must name.
const BROKEN: &[(&str, &[&str])] = &[
    (
        "bad-types.yaml",
        &[
            "/metadata/name",
            "/containers/web/variables/PORT",
            "/service/ports/http/port",
        ],
    ),
    ("missing-containers.yaml", &[""]),
    (
        "unknown-resource.yaml",
        &[
            "/containers/web/variables/DB_HOST",
            "/containers/web/variables/NAME",
            "/containers/web/variables/EMPTY",
        ],
    ),
    ("not-yaml.yaml", &[""]),
    (
        "wrong-version.json",
        &["/apiVersion", "/containers/web/files/0/target"],
    ),
];

fn broken(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/broken")
            .join(name),
    )
    .unwrap()
}

#[tokio::test]
async fn bad_score_input_is_a_400_with_every_problem_and_nothing_is_stored() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    api.send("POST", "/api/v1/apps", admin, Some(json!({ "id": "shop" })))
        .await;
    api.send(
        "POST",
        "/api/v1/apps/shop/envs",
        admin,
        Some(json!({ "id": "dev", "env_type": "development" })),
    )
    .await;
    let good = matrix::score_set("web", "serve")["workloads"][0].clone();
    for (file, paths) in BROKEN {
        let text = broken(file);
        for (path, body) in [
            ("/api/v1/apps/shop/sets", json!({ "workloads": [text] })),
            (
                "/api/v1/apps/shop/envs/dev/deployments",
                json!({ "workloads": [good, text] }),
            ),
        ] {
            let (status, problem) = api.send("POST", path, admin, Some(body)).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{file} to {path}: {problem}"
            );
            let found: Vec<&str> = problem["problems"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: no problems listed: {problem}"))
                .iter()
                .map(|p| p["path"].as_str().unwrap())
                .collect();
            let index = if path.ends_with("/sets") { 0 } else { 1 };
            for expected in *paths {
                let full = format!("/workloads/{index}{expected}");
                assert!(
                    found.contains(&full.as_str()),
                    "{file} to {path}: {full} is not among the problems {problem:#}"
                );
            }
            for p in problem["problems"].as_array().unwrap() {
                assert!(
                    !p["message"].as_str().unwrap().is_empty(),
                    "every problem says what is wrong: {problem}"
                );
            }
        }
    }
    let (_, sets) = api.send("GET", "/api/v1/apps/shop/sets", admin, None).await;
    assert_eq!(
        sets,
        json!([]),
        "no set was stored, not even the good workload's"
    );
    let (_, deployments) = api
        .send("GET", "/api/v1/apps/shop/envs/dev/deployments", admin, None)
        .await;
    assert_eq!(deployments, json!([]), "no deployment was queued");
}
