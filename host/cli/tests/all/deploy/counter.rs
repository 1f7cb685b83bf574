//! A test's backend for the counting test driver: it counts what the driver was asked,
//! and can hold creates to catch a server in the middle of provisioning.

use std::time::Duration;

/// A test's counter of what the driver was asked: `create` and `delete` by resource and
/// idempotency key, and every `call`. Until `release`, it holds creates after the first
/// `hold_after`, without answering (and without counting them).
pub(crate) struct Counter {
    pub(crate) url: String,
    state: std::sync::Arc<(std::sync::Mutex<Counts>, std::sync::Condvar)>,
}

#[derive(Default, Debug)]
pub(crate) struct Counts {
    pub(crate) creates: Vec<(String, String)>,
    pub(crate) calls: Vec<(String, String)>,
    pub(crate) deletes: Vec<(String, String)>,
    held: usize,
    hold_after: Option<usize>,
    released: bool,
}

impl Counter {
    pub(crate) fn start(hold_after: Option<usize>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = std::sync::Arc::new((
            std::sync::Mutex::new(Counts {
                hold_after,
                ..Counts::default()
            }),
            std::sync::Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve_count(stream, &shared));
            }
        });
        Self { url, state }
    }

    pub(crate) fn counts<R>(&self, f: impl FnOnce(&Counts) -> R) -> R {
        f(&self.state.0.lock().unwrap())
    }

    pub(crate) fn held(&self) -> usize {
        self.counts(|c| c.held)
    }

    /// Stops holding: held requests are dropped unanswered, new ones answered.
    pub(crate) fn release(&self) {
        self.state.0.lock().unwrap().released = true;
        self.state.1.notify_all();
    }
}

fn serve_count(
    mut stream: std::net::TcpStream,
    shared: &(std::sync::Mutex<Counts>, std::sync::Condvar),
) {
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Headers until the blank line (the requests have no body).
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let (event, query) = target
        .trim_start_matches('/')
        .split_once('?')
        .unwrap_or((&target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    let entry = (param("uid"), param("key"));
    let (lock, wake) = shared;
    let mut counts = lock.lock().unwrap();
    match event {
        "create" => {
            if counts.hold_after.is_some_and(|n| counts.creates.len() >= n) && !counts.released {
                counts.held += 1;
                while !counts.released {
                    counts = wake.wait(counts).unwrap();
                }
                // Asked by a server that is gone: dropped, never answered, not counted.
                return;
            }
            counts.creates.push(entry);
        }
        "delete" => counts.deletes.push(entry),
        _ => counts.calls.push(entry),
    }
    drop(counts);
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    // Whatever the client still sends (an empty chunked body) is read before closing: a
    // socket closed with unread data is reset, and the client could miss the answer.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
}
