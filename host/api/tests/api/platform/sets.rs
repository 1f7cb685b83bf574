//! Sets of workloads: content-addressed, changed by deltas, and refused whole with every
//! problem listed.

use super::*;

#[tokio::test]
async fn sets_are_content_addressed_and_deltas_make_new_ones() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    assert_eq!(
        api.send(
            "POST",
            &format!("{V1}/apps"),
            admin,
            Some(json!({ "id": "shop" }))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let sets = format!("{V1}/apps/shop/sets");
    let yaml = "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    \
                image: busybox\n    command: [serve]\n";
    let (status, first) = api
        .send("POST", &sets, admin, Some(json!({ "workloads": [yaml] })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    // The same workloads as JSON: the same set.
    let (status, again) = api
        .send(
            "POST",
            &sets,
            admin,
            Some(crate::matrix::score_set("web", "serve")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);

    let delta = json!([{ "op": "replace", "path": "/workloads/web/containers/main/command/0", "value": "serve-v2" }]);
    let (status, second) = api
        .send("POST", &format!("{sets}/{id}/deltas"), admin, Some(delta))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_str().unwrap();
    assert_ne!(second_id, id);
    assert_eq!(
        second["workloads"]["web"]["containers"]["main"]["command"],
        json!(["serve-v2"])
    );
    let (_, diff) = api
        .send(
            "GET",
            &format!("{sets}/{id}/diff?to={second_id}"),
            admin,
            None,
        )
        .await;
    assert_eq!(
        diff,
        json!([{ "op": "replace", "path": "/workloads/web/containers/main/command/0", "value": "serve-v2" }])
    );
    let (_, listed) = api.send("GET", &sets, admin, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn broken_score_files_list_every_problem_and_store_nothing() {
    let api = api().await;
    let admin = Some(api.admin.as_str());
    api.send(
        "POST",
        &format!("{V1}/apps"),
        admin,
        Some(json!({ "id": "shop" })),
    )
    .await;
    let sets = format!("{V1}/apps/shop/sets");
    let broken = [
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    image: x\n    \
         variables:\n      PORT: 3000\n",
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: api\ncontainers:\n  main:\n    image: x\n    \
         variables:\n      DB: ${resources.db.host}\n",
        "not: [valid\n",
    ];
    let good =
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: ok\ncontainers:\n  main:\n    image: x\n";
    let (status, problem) = api
        .send(
            "POST",
            &sets,
            admin,
            Some(json!({ "workloads": [good, broken[0], broken[1], broken[2]] })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let paths: Vec<&str> = problem["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/workloads/1/containers/main/variables/PORT",
            "/workloads/2/containers/main/variables/DB",
            "/workloads/3"
        ],
        "{problem}"
    );
    assert!(
        detail(&problem).contains("there is no resource \"db\""),
        "{problem}"
    );
    let (_, listed) = api.send("GET", &sets, admin, None).await;
    assert_eq!(listed, json!([]), "nothing stored");
    let (status, problem) = api
        .send(
            "POST",
            &sets,
            admin,
            Some(json!({ "workloads": [good, good] })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&problem).contains("already in the set"), "{problem}");
}
