//! Probes: a readiness or liveness check run once, an HTTP GET or a command run as the
//! workload runs.

use super::Confinement;
use super::spec::{ContainerSpec, Probe};
use super::supervise::describe_exit;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs a probe once.
pub(super) async fn check(
    probe: &Probe,
    spec: &ContainerSpec,
    confinement: &Confinement,
) -> Result<(), String> {
    let limit = Duration::from_secs(1);
    match probe {
        Probe::Http {
            port,
            path,
            host,
            tcp_only,
            headers,
        } => {
            let attempt = async {
                let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("port {port}: {e}"))?;
                if *tcp_only {
                    return Ok(());
                }
                let mut request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: wharf-probe\r\nConnection: close\r\n"
                );
                for (k, v) in headers {
                    request.push_str(&format!("{k}: {v}\r\n"));
                }
                request.push_str("\r\n");
                stream
                    .write_all(request.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                // The whole answer is read (the server closes after it): closing a
                // connection with unread data would reset it under the server's feet.
                let mut answer = Vec::new();
                let _ = (&mut stream).take(64 << 10).read_to_end(&mut answer).await;
                let line = String::from_utf8_lossy(&answer[..answer.len().min(64)]);
                let code: u16 = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| format!("GET {path} on port {port}: not an HTTP answer"))?;
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("GET {path} on port {port} answered {code}"))
                }
            };
            tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| Err(format!("GET {path} on port {port}: no answer in 1s")))
        }
        Probe::Exec { command } => {
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..])
                .env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&spec.dir)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .kill_on_drop(true);
            // A probe runs as the workload runs: confined the same way.
            confinement.prepare(&mut cmd, &spec.reach)?;
            match tokio::time::timeout(limit, cmd.status()).await {
                Ok(Ok(s)) if s.success() => Ok(()),
                Ok(Ok(s)) => Err(format!("{:?} {}", command.join(" "), describe_exit(s))),
                Ok(Err(e)) => Err(format!("{:?}: {e}", command[0])),
                Err(_) => Err(format!("{:?} did not finish in 1s", command.join(" "))),
            }
        }
    }
}
