//! Installation: what is refused and why, and the compile cache across restarts.

use crate::runtime;
use wharf_plugins::{Error, Kind, Manifest, Plugin, Runtime, RuntimeConfig};

async fn install_err(bytes: &[u8], kind: Kind) -> Error {
    let (rt, _dir) = runtime();
    match rt.install(bytes, Manifest::new("p", kind)).await {
        Ok(_) => panic!("install succeeded"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_core_module_is_named_as_such() {
    let err = install_err(b"\0asm\x01\0\0\0", Kind::Driver).await;
    assert!(matches!(err, Error::CoreModule), "{err}");
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component")
    );
}

#[tokio::test]
async fn random_bytes_are_not_wasm() {
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let err = install_err(&bytes, Kind::Policy).await;
    assert!(matches!(err, Error::NotWasm), "{err}");
    let err = install_err(b"", Kind::Policy).await;
    assert!(matches!(err, Error::NotWasm), "{err}");
}

#[tokio::test]
async fn a_truncated_component_is_invalid() {
    let bytes = wharf_artifacts::read(wharf_artifacts::TEST_POLICY);
    let err = install_err(&bytes[..bytes.len() / 2], Kind::Policy).await;
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[tokio::test]
async fn the_wrong_world_names_what_is_missing_and_what_it_is() {
    let bytes = wharf_artifacts::read(wharf_artifacts::TEST_POLICY);
    let err = install_err(&bytes, Kind::Driver).await;
    let text = err.to_string();
    assert!(
        matches!(
            err,
            Error::WrongWorld {
                kind: Kind::Driver,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("does not export `wharf:plugin/provisioner@0.2.0`"),
        "{text}"
    );
    assert!(
        text.contains("it is a policy plugin, install it as kind policy"),
        "{text}"
    );
}

#[tokio::test]
async fn a_driver_built_against_the_0_1_contract_is_told_what_to_rebuild_against() {
    // The shape of a driver built with the SDK of contract 0.1: its export names the
    // older package version.
    let bytes = wat::parse_str(
        r#"(component
            (core module $m (func (export "describe")))
            (core instance $i (instantiate $m))
            (func $describe (canon lift (core func $i "describe")))
            (instance $provisioner (export "describe" (func $describe)))
            (export "wharf:plugin/provisioner@0.1.0" (instance $provisioner)))"#,
    )
    .unwrap();
    let text = install_err(&bytes, Kind::Driver).await.to_string();
    assert!(
        text.contains(
            "it exports `wharf:plugin/provisioner@0.1.0`, an incompatible version of the \
             contract: rebuild it against wharf:plugin@0.2.0"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_policy_that_imports_the_network_is_refused() {
    // The test driver imports wasi:http; as a transformer it exports the wrong interface
    // and imports what a transformer may not.
    let bytes = wharf_artifacts::read(wharf_artifacts::TEST_DRIVER);
    let text = install_err(&bytes, Kind::Transformer).await.to_string();
    assert!(text.contains("wasi:http/outgoing-handler"), "{text}");
    assert!(
        text.contains("transformer plugins get no network"),
        "{text}"
    );
}

#[tokio::test]
async fn precompiled_code_is_never_accepted() {
    let (rt, _dir) = runtime();
    let plugin = crate::policy(&rt).await;
    let cached = std::fs::read(rt.cache_path(plugin.digest())).unwrap();
    // The cache file is a header (magic + MAC) followed by wasmtime's compiled code.
    let err = rt
        .install(&cached[40..], Manifest::new("p", Kind::Policy))
        .await
        .err()
        .expect("precompiled code installed");
    assert!(matches!(err, Error::Precompiled), "{err}");
}

#[tokio::test]
async fn a_bad_manifest_lists_every_problem() {
    let bytes = wharf_artifacts::read(wharf_artifacts::TEST_POLICY);
    let (rt, _dir) = runtime();
    let mut manifest = Manifest::new("p", Kind::Policy);
    manifest.grants.http.push("http://example.com".into());
    manifest.limits.memory_bytes = 0;
    let text = rt
        .install(&bytes, manifest)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("policy plugins get no network"), "{text}");
    assert!(text.contains("limits.memory_bytes"), "{text}");
}

#[tokio::test]
async fn a_restart_loads_from_the_cache_and_a_tampered_cache_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig::new(dir.path().join("cache"));
    let bytes = wharf_artifacts::read(wharf_artifacts::TEST_POLICY);
    let manifest = Manifest::new("p", Kind::Policy);

    let first = Runtime::new(config.clone()).unwrap();
    let plugin = first.install(&bytes, manifest.clone()).await.unwrap();
    assert_eq!((first.stats().compiles, first.stats().cache_loads), (1, 0));
    let path = first.cache_path(plugin.digest());
    drop((plugin, first));

    let second = Runtime::new(config.clone()).unwrap();
    let Plugin::Policy(policy) = second.install(&bytes, manifest.clone()).await.unwrap() else {
        panic!("not a policy")
    };
    assert_eq!(
        (second.stats().compiles, second.stats().cache_loads),
        (0, 1)
    );
    assert_eq!(policy.describe().await.unwrap().name, "test-policy");
    drop((policy, second));

    // Flip one byte of the compiled code: the MAC no longer verifies.
    let mut cached = std::fs::read(&path).unwrap();
    let last = cached.len() - 100;
    cached[last] ^= 0xff;
    std::fs::write(&path, &cached).unwrap();
    let third = Runtime::new(config.clone()).unwrap();
    let Plugin::Policy(policy) = third.install(&bytes, manifest.clone()).await.unwrap() else {
        panic!("not a policy")
    };
    assert_eq!((third.stats().compiles, third.stats().cache_loads), (1, 0));
    assert_eq!(policy.describe().await.unwrap().name, "test-policy");
    assert_ne!(
        std::fs::read(&path).unwrap(),
        cached,
        "the bad file was replaced"
    );

    // Another component's valid artifact, put under this one's name: the MAC covers the
    // component's digest, so it is refused and this one is compiled.
    let other = wharf_artifacts::read(wharf_artifacts::TEST_TRANSFORMER);
    let other_rt = Runtime::new(config.clone()).unwrap();
    let other_plugin = other_rt
        .install(&other, Manifest::new("t", Kind::Transformer))
        .await
        .unwrap();
    let other_path = other_rt.cache_path(other_plugin.digest());
    drop((other_plugin, other_rt));
    std::fs::copy(&other_path, &path).unwrap();
    let swapped = Runtime::new(config.clone()).unwrap();
    let Plugin::Policy(policy) = swapped.install(&bytes, manifest.clone()).await.unwrap() else {
        panic!("not a policy")
    };
    assert_eq!(
        (swapped.stats().compiles, swapped.stats().cache_loads),
        (1, 0)
    );
    assert_eq!(policy.describe().await.unwrap().name, "test-policy");
    drop((policy, swapped));

    // The key is readable by its owner only.
    use std::os::unix::fs::PermissionsExt;
    let key = dir.path().join("cache/cache.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A file from another host (another key) is foreign: recompiled too.
    std::fs::write(&key, [7u8; 32]).unwrap();
    let fourth = Runtime::new(config).unwrap();
    fourth.install(&bytes, manifest).await.unwrap();
    assert_eq!(
        (fourth.stats().compiles, fourth.stats().cache_loads),
        (1, 0)
    );
}

#[tokio::test]
async fn without_room_for_the_pool_the_runtime_falls_back_to_on_demand_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(dir.path().join("cache"));
    // A pool this large cannot be reserved in a 47-bit address space.
    config.max_calls = 1 << 20;
    let rt = Runtime::new(config).unwrap();
    assert!(!rt.pooling());
    let policy = match rt
        .install(
            &wharf_artifacts::read(wharf_artifacts::TEST_POLICY),
            Manifest::new("p", Kind::Policy),
        )
        .await
        .unwrap()
    {
        Plugin::Policy(p) => p,
        _ => panic!("not a policy"),
    };
    assert_eq!(policy.describe().await.unwrap().name, "test-policy");

    let (pooled, _dir) = runtime();
    assert!(pooled.pooling());
}
