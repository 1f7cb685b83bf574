//! Score files as developers write them: the upstream samples load, broken files are
//! refused with every problem and its path.

use wharf_core::score::{Problem, load};

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/score/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn every_upstream_sample_loads() {
    for name in [
        "spec-score-full.yaml",
        "spec-deprecated-files-and-volumes.yaml",
        "k8s-init-sample.yaml",
        "compose-02-environment.yaml",
        "compose-03-files.yaml",
        "compose-05-volume-mounts.yaml",
        "compose-06-workload-one.yaml",
        "compose-06-workload-two.yaml",
        "compose-08-workload-a.yaml",
        "compose-08-workload-b.yaml",
    ] {
        if let Err(problems) = load(&sample(name)) {
            panic!("{name}: {problems:#?}");
        }
    }
}

#[test]
fn the_full_sample_keeps_every_field() {
    let (w, notes) = load(&sample("spec-score-full.yaml")).unwrap();
    assert!(notes.0.is_empty());
    assert_eq!(w.name(), "example-workload-name123");
    assert_eq!(w.metadata["extra-key"], "extra-value");
    let ports = &w.service.as_ref().unwrap().ports;
    assert_eq!(ports["port-one"].target_port, Some(10000));
    assert_eq!(ports["port-two2"].target_port, None);
    let one = &w.containers["container-one1"];
    assert_eq!(
        one.command.as_deref(),
        Some(&["/bin/sh".to_string(), "-c".to_string()][..])
    );
    assert_eq!(one.files["/my/file"].mode.as_deref(), Some("0600"));
    assert_eq!(
        one.files["/my/other/binaryfile"].binary_content.as_deref(),
        Some("ADBgwpA=")
    );
    assert_eq!(
        one.volumes["/mnt/something"].path.as_deref(),
        Some("/sub/path")
    );
    assert_eq!(w.containers["container-two2"].image, ".");
}

#[test]
fn deprecated_lists_are_upgraded_to_maps_with_a_note() {
    let (w, notes) = load(&sample("spec-deprecated-files-and-volumes.yaml")).unwrap();
    let main = &w.containers["main"];
    assert_eq!(
        main.files["/mnt/some-path"].content.as_deref(),
        Some("my content here")
    );
    assert_eq!(main.volumes["/mnt/vol"].source, "some-volume");
    let paths: Vec<&str> = notes.0.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/containers/main/files", "/containers/main/volumes"]
    );
}

fn problems(text: &str) -> Vec<Problem> {
    load(text).expect_err("a broken file loads")
}

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

const HEAD: &str = "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\n";

#[test]
fn schema_problems_are_all_reported_with_their_paths() {
    let found = problems(&format!(
        "{HEAD}containers:\n  main:\n    image: nginx\n    variables:\n      PORT: 3000\n      \
         DEBUG: true\nservice:\n  ports:\n    www:\n      port: 70000\n"
    ));
    assert_eq!(
        paths(&found),
        [
            "/containers/main/variables/DEBUG",
            "/containers/main/variables/PORT",
            "/service/ports/www/port"
        ],
        "{found:#?}"
    );
    let found = problems("apiVersion: score.dev/v1b1\nmetadata:\n  name: a\n");
    assert!(
        found.iter().any(|p| p.path == "/metadata/name"),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.path.is_empty() && p.message.contains("containers")),
        "{found:#?}"
    );
    let found = problems(&format!(
        "{HEAD}containers:\n  main:\n    image: nginx\nresources:\n"
    ));
    assert_eq!(paths(&found), ["/resources"], "{found:#?}");
    let found = problems(&format!(
        "{HEAD}containers:\n  main:\n    image: nginx\ncolour: red\n"
    ));
    assert!(found[0].message.contains("colour"), "{found:#?}");
}

#[test]
fn placeholders_must_name_what_exists() {
    let found = problems(&format!(
        "{HEAD}  team: shop\ncontainers:\n  main:\n    image: nginx\n    variables:\n      \
         A: ${{resources.db.host}}\n      B: ${{resources.nope.host}}\n      C: ${{foo.bar}}\n      \
         D: ${{}}\n      E: ${{metadata.team}}\n      F: ${{metadata.owner}}\n      G: ${{resources.db}}\n      \
         H: $${{literal}}\nresources:\n  db:\n    type: postgres\n    params:\n      \
         peer: ${{resources.other.url}}\n"
    ));
    let by_path: Vec<(&str, &str)> = found
        .iter()
        .map(|p| (p.path.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        paths(&found),
        [
            "/containers/main/variables/B",
            "/containers/main/variables/C",
            "/containers/main/variables/D",
            "/containers/main/variables/F",
            "/containers/main/variables/G",
            "/resources/db/params/peer",
        ],
        "{by_path:#?}"
    );
    assert!(
        by_path[0]
            .1
            .contains("there is no resource \"nope\" in this workload (declared: db)")
    );
    assert!(by_path[1].1.contains("unknown root \"foo\""));
    assert!(by_path[2].1.contains("empty placeholder"));
    assert!(by_path[3].1.contains("metadata has no key \"owner\""));
    assert!(by_path[4].1.contains("name one of the resource's outputs"));
}

#[test]
fn before_must_name_other_containers_without_cycles() {
    let found = problems(&format!(
        "{HEAD}containers:\n  aa:\n    image: x\n    before:\n      bb: {{ready: started}}\n  \
         bb:\n    image: x\n    before:\n      aa: {{ready: complete}}\n  cc:\n    image: x\n    \
         before:\n      cc: {{ready: started}}\n      zz: {{ready: started}}\n"
    ));
    let messages: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "/containers/cc/before/cc: a container cannot start before itself",
            "/containers/cc/before/zz: there is no container \"zz\" in this workload",
            "/containers: `before` forms a cycle: aa -> bb -> aa",
        ]
    );
}

#[test]
fn text_that_is_not_yaml_says_where() {
    let found = problems("apiVersion: [unclosed\n");
    assert!(found[0].message.contains("line"), "{found:#?}");
    assert!(problems("").iter().any(|p| p.message.contains("empty")));
}

mod graph {
    use super::*;
    use wharf_core::graph::{
        DefinitionRef, GraphError, Implicit, Unresolved, build, build_with, definition_inputs,
        match_definitions,
    };
    use wharf_core::score::Workload;

    fn workload(text: &str) -> Workload {
        load(text).unwrap_or_else(|p| panic!("{p:#?}")).0
    }

    #[test]
    fn a_resource_shared_by_id_is_one_node() {
        let one = workload(&sample("compose-06-workload-one.yaml"));
        let two = workload(&sample("compose-06-workload-two.yaml"));
        let graph = build(&[two, one]).unwrap();
        let uids: Vec<&str> = graph.nodes.keys().map(String::as_str).collect();
        assert_eq!(
            uids,
            [
                "redis.default#main-cache",
                "redis.default#workload-two.cache-c"
            ]
        );
        let shared = &graph.nodes["redis.default#main-cache"];
        assert_eq!(shared.source_workload, "workload-one", "the first by name");
        assert_eq!(
            shared.declared_by,
            [
                ("workload-one".to_string(), "cache-a".to_string()),
                ("workload-two".to_string(), "cache-b".to_string())
            ]
        );
        assert_eq!(graph.levels.len(), 1, "no dependencies: one level");
    }

    fn web(resources: &str) -> Workload {
        workload(&format!(
            "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  main:\n    \
             image: nginx\nresources:\n{resources}"
        ))
    }

    #[test]
    fn params_that_refer_to_other_resources_order_provisioning() {
        let w = web(
            "  dns:\n    type: dns\n  route:\n    type: route\n    params:\n      \
             host: ${resources.dns.host}\n      backend: ${resources.db.host}\n  db:\n    \
             type: postgres\n  cache:\n    type: redis\n",
        );
        let graph = build(&[w]).unwrap();
        assert_eq!(
            graph.levels,
            [
                vec![
                    "dns.default#web.dns".to_string(),
                    "postgres.default#web.db".to_string(),
                    "redis.default#web.cache".to_string()
                ],
                vec!["route.default#web.route".to_string()],
            ]
        );
        assert_eq!(graph.order().last(), Some(&"route.default#web.route"));
    }

    #[test]
    fn cycles_and_conflicting_shared_params_are_errors_that_name_them() {
        let w = web(
            "  aa:\n    type: thing\n    params:\n      x: ${resources.bb.out}\n  bb:\n    \
             type: thing\n    params:\n      y: ${resources.aa.out}\n",
        );
        assert_eq!(
            build(&[w]).unwrap_err(),
            GraphError::Cycle(vec![
                "thing.default#web.aa".into(),
                "thing.default#web.bb".into(),
                "thing.default#web.aa".into()
            ])
        );
        let a = web("  db:\n    type: postgres\n    id: shared\n    params:\n      size: 1\n");
        let mut b = web("  db:\n    type: postgres\n    id: shared\n    params:\n      size: 2\n");
        b.metadata.insert("name".into(), "worker".into());
        let err = build(&[a, b]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource postgres.default#shared: declared by web.db and worker.db with different \
             params; a shared resource has one definition (give one of them a different id, or \
             the same params)"
        );
    }

    #[test]
    fn every_node_gets_a_definition_or_the_failures_are_all_named() {
        let w = web("  db:\n    type: postgres\n  cache:\n    type: redis\n    class: large\n");
        let mut graph = build(&[w]).unwrap();
        let crit = |t: &str| serde_json::from_str(t).unwrap();
        let definitions = vec![
            DefinitionRef {
                id: "pg".into(),
                res_type: "postgres".into(),
                criteria: vec![crit("{}")],
                inputs: serde_json::json!({}),
            },
            DefinitionRef {
                id: "pg-prod".into(),
                res_type: "postgres".into(),
                criteria: vec![crit(r#"{"env_type": "production"}"#)],
                inputs: serde_json::json!({}),
            },
            DefinitionRef {
                id: "redis".into(),
                res_type: "redis".into(),
                criteria: vec![crit("{}")],
                inputs: serde_json::json!({}),
            },
        ];
        let chosen = match_definitions(&mut graph, &definitions, "shop", "prod", "production");
        let errors = chosen.unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].to_string().contains("(class large)"),
            "{}",
            errors[0]
        );
        let mut with_large = definitions.clone();
        with_large.push(DefinitionRef {
            id: "redis-large".into(),
            res_type: "redis".into(),
            criteria: vec![crit(r#"{"class": "large"}"#)],
            inputs: serde_json::json!({}),
        });
        let chosen =
            match_definitions(&mut graph, &with_large, "shop", "prod", "production").unwrap();
        assert_eq!(chosen["postgres.default#web.db"], "pg-prod");
        assert_eq!(chosen["redis.large#web.cache"], "redis-large");
    }

    fn definition(id: &str, res_type: &str, inputs: serde_json::Value) -> DefinitionRef {
        DefinitionRef {
            id: id.into(),
            res_type: res_type.into(),
            criteria: vec![serde_json::from_str("{}").unwrap()],
            inputs,
        }
    }

    #[test]
    fn definitions_that_refer_to_other_resources_add_them_to_the_graph() {
        let w = web("  db:\n    type: postgres\n  other:\n    type: postgres\n");
        let mut graph = build_with(
            &[w],
            &[Implicit {
                res_type: "namespace".into(),
                class: None,
                id: "env".into(),
                params: None,
            }],
        )
        .unwrap();
        let definitions = [
            definition(
                "pg",
                "postgres",
                serde_json::json!({
                    "values": { "host": "${resources.postgres-instance#shared.outputs.host}" },
                    "secrets": { "admin": "${resources.postgres-instance.large#shared.outputs.password}" }
                }),
            ),
            definition(
                "instance",
                "postgres-instance",
                serde_json::json!({
                    "values": { "namespace": "${resources.namespace#env.outputs.name}" }
                }),
            ),
            definition("ns", "namespace", serde_json::json!({})),
            DefinitionRef {
                criteria: vec![serde_json::from_str(r#"{"class": "large"}"#).unwrap()],
                ..definition(
                    "instance-large",
                    "postgres-instance",
                    serde_json::json!({
                        "values": { "namespace": "${resources.namespace#env.outputs.name}" }
                    }),
                )
            },
        ];
        let chosen = match_definitions(&mut graph, &definitions, "shop", "dev", "development")
            .unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(chosen.len(), 5, "{chosen:#?}");
        assert_eq!(chosen["postgres-instance.default#shared"], "instance");
        assert_eq!(chosen["postgres-instance.large#shared"], "instance-large");
        assert_eq!(
            graph.levels,
            [
                vec!["namespace.default#env".to_string()],
                vec![
                    "postgres-instance.default#shared".to_string(),
                    "postgres-instance.large#shared".to_string()
                ],
                vec![
                    "postgres.default#web.db".to_string(),
                    "postgres.default#web.other".to_string()
                ],
            ],
            "the instances are shared by the two databases, after the namespace"
        );
        let inputs = definition_inputs(&definitions[0].inputs, "web.db").unwrap();
        assert_eq!(
            inputs.rewritten["values"]["host"],
            "${resources.postgres-instance\\.default#shared.host}"
        );
        let same_id = definition_inputs(
            &serde_json::json!({ "values": { "h": "$$x ${resources.dns.outputs.host}" } }),
            "web.db",
        )
        .unwrap();
        assert_eq!(
            same_id.uses.into_iter().collect::<Vec<_>>(),
            ["dns.default#web.db"],
            "without an id, the referring resource's own"
        );
        assert_eq!(
            same_id.rewritten["values"]["h"], "$$x ${resources.dns\\.default#web\\.db.host}",
            "literal dollars stay escaped"
        );
    }

    #[test]
    fn definition_references_in_a_cycle_or_of_the_wrong_shape_are_named() {
        let w = web("  db:\n    type: aa\n");
        let mut graph = build(&[w]).unwrap();
        let definitions = [
            definition(
                "a",
                "aa",
                serde_json::json!({ "values": { "x": "${resources.bb#one.outputs.y}" } }),
            ),
            definition(
                "b",
                "bb",
                serde_json::json!({ "values": { "x": "${resources.aa#web.db.outputs.y}" } }),
            ),
        ];
        let errors =
            match_definitions(&mut graph, &definitions, "shop", "dev", "development").unwrap_err();
        assert!(
            matches!(&errors[..], [Unresolved::Graph(GraphError::Cycle(c))] if c.len() == 3),
            "{errors:#?}"
        );
        let mut graph = build(&[web("  db:\n    type: aa\n")]).unwrap();
        let bad = [definition(
            "a",
            "aa",
            serde_json::json!({ "values": { "x": "${metadata.name}" } }),
        )];
        let errors = match_definitions(&mut graph, &bad, "shop", "dev", "development").unwrap_err();
        assert_eq!(errors[0].object(), "aa.default#web.db");
        assert!(
            errors[0]
                .to_string()
                .contains("a definition can only refer to resources"),
            "{}",
            errors[0]
        );
    }
}

mod resolve {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;
    use wharf_core::score::resolve::{Outputs, Part, Scope};

    fn outputs(uid: &str, values: serde_json::Value, secrets: serde_json::Value) -> Outputs {
        Outputs {
            uid: uid.into(),
            values: values.as_object().unwrap().clone(),
            secrets: secrets.as_object().unwrap().clone(),
            objects: Vec::new(),
        }
    }

    #[test]
    fn variables_resolve_with_secrets_kept_apart() {
        let (w, _) = load(&sample("k8s-init-sample.yaml")).unwrap();
        let db = outputs(
            "postgres.default#hello-world.db",
            json!({ "name": "app", "username": "app", "host": "127.0.0.1", "port": 5432 }),
            json!({ "password": "s3cret" }),
        );
        let scope = Scope {
            metadata: &w.metadata,
            resources: BTreeMap::from([("db".to_string(), &db)]),
        };
        let vars = &w.containers["hello-world"].variables;
        let port = scope.resolve(&vars["DB_PORT"]).unwrap();
        assert_eq!(port.plain().as_deref(), Some("5432"), "numbers become text");
        let password = scope.resolve(&vars["DB_PASSWORD"]).unwrap();
        assert!(password.is_secret());
        assert_eq!(password.plain(), None, "a secret never becomes plain text");
        assert_eq!(
            password.parts,
            [Part::Secret {
                resource: "postgres.default#hello-world.db".into(),
                key: "password".into(),
                value: "s3cret".into()
            }]
        );
        let url = scope
            .resolve("postgres://${resources.db.username}:${resources.db.password}@x")
            .unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@x");
        assert_eq!(url.expose(), "postgres://app:s3cret@x");
        let missing = scope.resolve("${resources.db.schema}").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "${resources.db.schema}: resource db (postgres.default#hello-world.db) has no output \
             \"schema\"; it has: host, name, password, port, username"
        );
        let annotation = scope.resolve("${metadata.annotations.tags}").unwrap();
        assert_eq!(
            annotation.plain().unwrap(),
            "nodejs,http,website,javascript,postgres"
        );
    }

    #[test]
    fn escapes_metadata_volumes_and_typed_params() {
        let (w, _) = load(&sample("compose-02-environment.yaml")).unwrap();
        let env = outputs(
            "environment.default#hello-world.env",
            json!({ "NAME": "World" }),
            json!({}),
        );
        let scope = Scope {
            metadata: &w.metadata,
            resources: BTreeMap::from([("env".to_string(), &env)]),
        };
        let vars = &w.containers["hello"].variables;
        let text = |k: &str| scope.resolve(&vars[k]).unwrap().plain().unwrap();
        assert_eq!(text("ESCAPED"), "$_${fizzbuzz}");
        assert_eq!(text("WORKLOAD_NAME"), "hello-world");
        assert_eq!(text("NAME"), "World");
        assert_eq!(
            scope
                .volume_source("${resources.env}")
                .unwrap()
                .plain()
                .unwrap(),
            "environment.default#hello-world.env"
        );
        let params = scope
            .params(&json!({ "port": 8080, "host": "${resources.env.NAME}", "url": "http://${resources.env.NAME}:1" }))
            .unwrap();
        assert_eq!(
            params,
            json!({ "port": 8080, "host": "World", "url": "http://World:1" })
        );
        let n = outputs("n", json!({ "port": 5432 }), json!({}));
        let scope = Scope {
            metadata: &w.metadata,
            resources: BTreeMap::from([("db".to_string(), &n)]),
        };
        assert_eq!(
            scope.params(&json!("${resources.db.port}")).unwrap(),
            json!(5432),
            "a whole placeholder keeps its type"
        );
    }
}

mod sets {
    use super::*;
    use serde_json::json;
    use wharf_core::set::Set;

    fn web(extra: &str) -> wharf_core::score::Workload {
        load(&format!(
            "apiVersion: score.dev/v1b1\nmetadata:\n  name: web\n{extra}containers:\n  main:\n    \
             image: nginx\n    command: [serve]\n"
        ))
        .unwrap()
        .0
    }

    #[test]
    fn the_id_is_the_content_whatever_the_key_order() {
        let a = Set::new(vec![web("  team: a\n  owner: b\n")]).unwrap();
        let b = Set::new(vec![web("  owner: b\n  team: a\n")]).unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 64);
        let c = Set::new(vec![web("  owner: c\n  team: a\n")]).unwrap();
        assert_ne!(a.id(), c.id());
        let twice = Set::new(vec![web(""), web("")]).unwrap_err();
        assert_eq!(twice[0].path, "/workloads/1/metadata/name");
    }

    #[test]
    fn a_delta_makes_a_new_set_and_the_diff_goes_back() {
        let before = Set::new(vec![web("")]).unwrap();
        let delta: json_patch::Patch = serde_json::from_value(json!([
            { "op": "replace", "path": "/workloads/web/containers/main/command/0", "value": "serve-v2" }
        ]))
        .unwrap();
        let after = before.apply(&delta).unwrap();
        assert_eq!(
            after.workloads["web"].containers["main"]
                .command
                .as_ref()
                .unwrap()[0],
            "serve-v2"
        );
        assert_ne!(after.id(), before.id());
        let back = after.diff(&before);
        assert_eq!(after.apply(&back).unwrap().id(), before.id());
    }

    #[test]
    fn a_bad_delta_names_the_operation_or_the_invalid_result() {
        let set = Set::new(vec![web("")]).unwrap();
        let missing: json_patch::Patch = serde_json::from_value(json!([
            { "op": "remove", "path": "/workloads/api" }
        ]))
        .unwrap();
        let found = set.apply(&missing).unwrap_err();
        assert_eq!(found[0].path, "/workloads/api");
        assert!(found[0].message.contains("operation 0"), "{found:?}");
        let invalid: json_patch::Patch = serde_json::from_value(json!([
            { "op": "add", "path": "/workloads/web/containers/main/variables", "value": { "PORT": 8080 } }
        ]))
        .unwrap();
        let found = set.apply(&invalid).unwrap_err();
        assert_eq!(
            found[0].path, "/workloads/web/containers/main/variables/PORT",
            "{found:?}"
        );
    }

    #[test]
    fn a_delta_that_copies_a_path_into_itself_is_stopped_by_the_size_it_would_reach() {
        let set = Set::new(vec![web("")]).unwrap();
        // Each copy doubles the annotations: 2^60 bytes if nothing stopped it.
        let mut ops =
            vec![json!({ "op": "add", "path": "/workloads/web/metadata/x", "value": ["a"] })];
        for _ in 0..60 {
            ops.push(json!({ "op": "copy", "from": "/workloads/web/metadata/x",
                             "path": "/workloads/web/metadata/x/0" }));
        }
        let bomb: json_patch::Patch = serde_json::from_value(json!(ops)).unwrap();
        let found = set.apply(&bomb).unwrap_err();
        assert!(found[0].message.contains("larger than 4 MiB"), "{found:?}");
        assert_eq!(found[0].path, "/workloads/web/metadata/x/0");
        let many: json_patch::Patch = serde_json::from_value(json!(vec![
            json!({ "op": "test", "path": "/workloads", "value": {} });
            1001
        ]))
        .unwrap();
        let found = set.apply(&many).unwrap_err();
        assert!(found[0].message.contains("at most 1000"), "{found:?}");
    }
}
