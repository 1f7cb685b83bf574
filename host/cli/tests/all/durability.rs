//! Crash safety: writes acknowledged before a `kill -9` are there after a restart, and the
//! server starts cleanly on what the crash left.

use crate::serve::start;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn acknowledged_writes_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path());
    let token = server.token.clone().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, token) = (server.addr.clone(), token.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("w{w}-{i}");
                    match crate::serve::raw_request(
                        &addr,
                        "POST",
                        "/api/v1/apps",
                        Some(&token),
                        &format!(r#"{{"id":"{id}"}}"#),
                    ) {
                        Some((201, _)) => acknowledged.lock().unwrap().push(id),
                        Some((status, body)) => panic!("write {id}: {status} {body}"),
                        None => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 200 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // kill -9 while the writers are mid-flight.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let server = start(data.path());
    assert!(server.token.is_none(), "a restart is not a new Wharf");
    assert_eq!(server.request("GET", "/readyz", None, "").0, 200);
    let (status, body) = server.request("GET", "/api/v1/apps?limit=1000", Some(&token), "");
    assert_eq!(status, 200, "{body}");
    let apps: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let stored: std::collections::HashSet<&str> =
        apps.iter().map(|a| a["id"].as_str().unwrap()).collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    eprintln!(
        "{} writes acknowledged before kill -9, {} stored after the restart, none lost",
        acknowledged.len(),
        apps.len()
    );
    // The audit log saw the same writes (it is written in the same transactions).
    let (_, audit) = server.request(
        "GET",
        "/api/v1/audit?action=apps.create&limit=1000",
        Some(&token),
        "",
    );
    let events: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
    assert_eq!(events.len(), apps.len());
    assert!(server.stop().success());
}
