//! The `postgres` resource driver: a database and a role that owns it, on a PostgreSQL
//! server, spoken to in PostgreSQL's own protocol over a TCP connection the operator
//! granted the installation (`grants.sockets`), with SCRAM-SHA-256 authentication.
//!
//! Configuration (the installation's, with the definition's driver inputs over it): the
//! admin connection, `values.host` (an IP address: the sandbox resolves no names),
//! `values.port` (5432), `values.user` (`postgres`), `values.database` (`postgres`, where
//! the admin logs in) and `secrets.password`.
//!
//! Params: `name`, the database (and role) name; by default one made from the app, the
//! environment and the resource id. Outputs: `host`, `port`, `name`, `username`; secrets
//! `password` and `url` (`postgres://USER:PASSWORD@HOST:PORT/NAME`).
//!
//! The role's password is generated once and kept in the driver's state (which the host
//! seals), so a redeploy gives the same credentials. A role or database left by an
//! interrupted attempt (no state yet) is adopted: the role gets the new password, the
//! database is not created twice. Deprovisioning drops the database (disconnecting its
//! sessions) and the role.

mod wire;

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, json};
use wire::{Session, WireError};

/// The postgres driver.
pub struct Postgres;

struct Admin {
    host: String,
    port: u16,
    user: String,
    database: String,
    password: String,
}

fn admin(config: &Values) -> Result<Admin, Vec<Issue>> {
    let v = &config.values;
    let mut issues = Vec::new();
    let host = v["host"].as_str().unwrap_or_default().to_string();
    if host.parse::<std::net::IpAddr>().is_err() {
        issues.push(Issue::new(
            "/values/host",
            "required: the server's IP address, like 127.0.0.1 (names are not resolved)",
        ));
    }
    let port = match &v["port"] {
        wharf_sdk::Value::Null => 5432,
        p => p
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .unwrap_or_else(|| {
                issues.push(Issue::new("/values/port", "a port number"));
                0
            }),
    };
    let password = match config.secrets["password"].as_str() {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => {
            issues.push(Issue::new(
                "/secrets/password",
                "required: the admin role's password",
            ));
            String::new()
        }
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Admin {
        host,
        port,
        user: v["user"].as_str().unwrap_or("postgres").to_string(),
        database: v["database"].as_str().unwrap_or("postgres").to_string(),
        password,
    })
}

/// The database and role name: lowercase letters, digits and underscores.
fn name(request: &Request) -> Result<String, PluginError> {
    if let Some(n) = request.params["name"].as_str() {
        let ok = !n.is_empty()
            && n.len() <= 63
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(PluginError::invalid_input(format!(
                "params.name {n:?}: up to 63 lowercase letters, digits and underscores, not \
                 starting with a digit"
            )));
        }
        return Ok(n.to_string());
    }
    let c = &request.context;
    let mut n: String = format!("{}_{}_{}", c.app, c.env, c.resource_id)
        .to_ascii_lowercase()
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
        .collect();
    n.truncate(63);
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert(0, 'r');
        n.truncate(63);
    }
    Ok(n)
}

fn random(length: usize) -> Result<String, PluginError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf)
            .map_err(|e| PluginError::other(format!("no randomness available: {e}")))?;
        for b in buf {
            // 248 = 4 × 62: no modulo bias.
            if b < 248 && out.len() < length {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

fn failure(a: &Admin, e: WireError) -> PluginError {
    let at = format!("{}:{}", a.host, a.port);
    match e {
        WireError::Io(io) => PluginError::unavailable(format!("PostgreSQL at {at}: {io}")),
        WireError::Auth(m) => PluginError::new(
            ErrorKind::PermissionDenied,
            format!(
                "PostgreSQL at {at} refused user {}: authentication failed ({m})",
                a.user
            ),
        ),
        WireError::Server { ref code, .. } if transient(code) => {
            PluginError::unavailable(format!("PostgreSQL at {at}: {e}"))
        }
        WireError::Server { ref code, .. } if code.starts_with("28") || code == "42501" => {
            PluginError::new(
                ErrorKind::PermissionDenied,
                format!("PostgreSQL at {at} refused user {}: {e}", a.user),
            )
        }
        other => PluginError::other(format!("PostgreSQL at {at}: {other}")),
    }
}

/// SQLSTATEs that say "not now" rather than "no": the connection failed or broke (08000,
/// 08001, 08003, 08004, 08006), the server is starting up or shutting down (57P01-57P03),
/// out of memory or connections (53200, 53300), a serialization failure or a deadlock
/// (40001, 40P01), a lock not available or an object in use (55P03, 55006: another
/// session on the template database while CREATE DATABASE runs), a statement timeout
/// (57014). Retried. A protocol violation (08P01) or a full disk (53100) is not.
fn transient(code: &str) -> bool {
    matches!(
        code,
        "08000"
            | "08001"
            | "08003"
            | "08004"
            | "08006"
            | "57P01"
            | "57P02"
            | "57P03"
            | "53200"
            | "53300"
            | "40001"
            | "40P01"
            | "55P03"
            | "55006"
            | "57014"
    )
}

fn connect(a: &Admin) -> Result<Session, PluginError> {
    let nonce = random(24)?;
    Session::connect(
        &format!("{}:{}", a.host, a.port),
        &a.user,
        &a.password,
        &a.database,
        &nonce,
    )
    .map_err(|e| failure(a, e))
}

fn exists(s: &mut Session, a: &Admin, sql: &str) -> Result<bool, PluginError> {
    Ok(!s.query(sql).map_err(|e| failure(a, e))?.is_empty())
}

impl Driver for Postgres {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "postgres",
                env!("CARGO_PKG_VERSION"),
                "A database and its owner role on a PostgreSQL server",
            )
            .with_config_schema(json!({ "type": "object" })),
            resource_types: vec![ResourceType {
                name: "postgres".into(),
                params_schema: json!({
                    "type": "object", "properties": { "name": { "type": "string" } }
                }),
                outputs_schema: json!({ "type": "object" }),
            }],
        }
    }

    /// An installation may leave out what its definitions give; a call checks it all.
    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        match admin(config) {
            Ok(_) => Ok(()),
            Err(issues) => {
                let real: Vec<Issue> = issues
                    .into_iter()
                    .filter(|i| {
                        !i.message.starts_with("required")
                            || (i.path == "/values/host" && config.values.get("host").is_some())
                    })
                    .collect();
                if real.is_empty() { Ok(()) } else { Err(real) }
            }
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        let a = admin(&request.config).map_err(PluginError::driver_inputs)?;
        let name = name(&request)?;
        let password = match request.state.as_ref().and_then(|s| s["password"].as_str()) {
            Some(p) => p.to_string(),
            None => random(32)?,
        };
        let mut s = connect(&a)?;
        let role_exists = exists(
            &mut s,
            &a,
            &format!("SELECT 1 FROM pg_roles WHERE rolname = '{name}'"),
        )?;
        let verb = if role_exists { "ALTER" } else { "CREATE" };
        s.query(&format!(
            "{verb} ROLE \"{name}\" LOGIN PASSWORD '{password}'"
        ))
        .map_err(|e| failure(&a, e))?;
        if !exists(
            &mut s,
            &a,
            &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
        )? {
            s.query(&format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""))
                .map_err(|e| failure(&a, e))?;
        }
        let url = format!(
            "postgres://{name}:{password}@{}:{}/{name}",
            if a.host.contains(':') {
                format!("[{}]", a.host)
            } else {
                a.host.clone()
            },
            a.port
        );
        Ok(Step::Done(Outputs {
            outputs: Values {
                values: json!({ "host": a.host, "port": a.port, "name": name, "username": name }),
                secrets: json!({ "password": password, "url": url }),
            },
            state: json!({ "name": name, "password": password }),
        }))
    }

    fn deprovision(request: Request) -> Result<Step, PluginError> {
        let a = admin(&request.config).map_err(PluginError::driver_inputs)?;
        let name = match request.state.as_ref().and_then(|s| s["name"].as_str()) {
            Some(n) => n.to_string(),
            None => name(&request)?,
        };
        let mut s = connect(&a)?;
        s.query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map_err(|e| failure(&a, e))?;
        s.query(&format!("DROP ROLE IF EXISTS \"{name}\""))
            .map_err(|e| failure(&a, e))?;
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_identifiers() {
        let mut request = Request::test("postgres");
        request.context.resource_id = "web.db".into();
        assert_eq!(name(&request).unwrap(), "shop_development_web_db");
        request.params = json!({ "name": "x\"; DROP TABLE y" });
        assert!(name(&request).is_err());
        let pw = random(32).unwrap();
        assert_eq!(pw.len(), 32);
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn not_now_is_retried_and_no_is_not() {
        let a = Admin {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "postgres".into(),
            database: "postgres".into(),
            password: "x".into(),
        };
        let server = |code: &str| WireError::Server {
            code: code.into(),
            message: "m".into(),
        };
        for code in ["57P03", "08006", "53300", "40001", "55006"] {
            assert_eq!(
                failure(&a, server(code)).kind,
                ErrorKind::Unavailable,
                "{code}"
            );
        }
        for code in ["28P01", "42501"] {
            assert_eq!(
                failure(&a, server(code)).kind,
                ErrorKind::PermissionDenied,
                "{code}"
            );
        }
        for code in ["08P01", "53100"] {
            assert_eq!(failure(&a, server(code)).kind, ErrorKind::Other, "{code}");
        }
        let e = failure(&a, server("42P04"));
        assert_eq!(e.kind, ErrorKind::Other);
        assert_eq!(
            e.message,
            "PostgreSQL at 127.0.0.1:5432: m (SQLSTATE 42P04)"
        );
    }

    #[test]
    fn the_admin_connection_is_checked() {
        let issues = admin(&Values::default()).err().unwrap();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["/values/host", "/secrets/password"]);
        assert!(Postgres::validate_config(&Values::default()).is_ok());
        let named = Values {
            values: json!({ "host": "db.internal" }),
            secrets: json!({}),
        };
        assert!(
            Postgres::validate_config(&named).is_err(),
            "a name is not an address"
        );
    }
}
