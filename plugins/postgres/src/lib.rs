//! The `postgres` resource driver: a database and a role that owns it, on a PostgreSQL
//! server, spoken to in PostgreSQL's own protocol over a TCP connection the operator
//! granted the installation (`grants.sockets`), with SCRAM-SHA-256 authentication.
//!
//! Configuration (the installation's, with the definition's driver inputs over it): the
//! admin connection, `values.host` (an IP address: the sandbox resolves no names),
//! `values.port` (5432), `values.user` (`postgres`), `values.database` (`postgres`, where
//! the admin logs in) and `secrets.password`.
//!
//! The database and its role share a name, generated from the app, the environment and
//! the resource id (with a hash of them, so that no two resources share one); a workload
//! chooses it (`params.name`) only where the resource definition lets `name` through,
//! with the prefix it may require (`values.name_prefix`). Outputs: `host`, `port`,
//! `name`, `username`; secrets `password` and `url` (`postgres://USER:PASSWORD@HOST:PORT/
//! NAME`).
//!
//! What the driver creates is marked as the resource's (`COMMENT ON ROLE` with its owner
//! mark, and the database is owned by that role). A role is adopted only when it carries
//! this resource's mark, or when the driver's state shows it made it before marks
//! existed; a role with superuser, role-creation, replication or row-security bypass
//! rights is never touched; a database is adopted only when its owner is this resource's
//! role. So a workload asking for `postgres`, or for another app's database, gets a
//! permission error and nothing changes.
//!
//! The role's password is generated once and kept in the driver's state (which the host
//! seals), so a redeploy gives the same credentials. Deprovisioning drops the database
//! (disconnecting its sessions) and the role, only when they are this resource's; what is
//! not is left alone.

mod wire;

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, json, names};
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

/// What PostgreSQL allows in the names this driver makes.
const NAMES: names::Rules = names::Rules {
    max_len: 63,
    separator: '_',
    also: "_",
    starts_with_letter: true,
};

/// The database and role name: the state's (what was made before), the workload's
/// choice (where allowed), or generated.
fn name(request: &Request) -> Result<String, PluginError> {
    if let Some(n) = request.state.as_ref().and_then(|s| s["name"].as_str()) {
        return Ok(n.to_string());
    }
    if let Some(n) = names::chosen(request)? {
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
        return Ok(n);
    }
    Ok(names::generated(request, &NAMES))
}

/// A string as an SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A role as found on the server.
struct Role {
    /// Superuser, role creation, replication or row-security bypass: never touched.
    privileged: bool,
    /// Its comment, where the owner mark is.
    comment: Option<String>,
}

/// A database as found on the server.
struct Database {
    owner: String,
}

fn find_role(s: &mut Session, a: &Admin, name: &str) -> Result<Option<Role>, PluginError> {
    let rows = s
        .query(&format!(
            "SELECT rolsuper OR rolcreaterole OR rolreplication OR rolbypassrls, \
                    shobj_description(oid, 'pg_authid') \
               FROM pg_roles WHERE rolname = {}",
            literal(name)
        ))
        .map_err(|e| failure(a, e))?;
    Ok(rows.into_iter().next().map(|row| Role {
        privileged: row.first().cloned().flatten().as_deref() != Some("f"),
        comment: row.get(1).cloned().flatten(),
    }))
}

fn find_database(s: &mut Session, a: &Admin, name: &str) -> Result<Option<Database>, PluginError> {
    let rows = s
        .query(&format!(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {}",
            literal(name)
        ))
        .map_err(|e| failure(a, e))?;
    Ok(rows.into_iter().next().map(|row| Database {
        owner: row.first().cloned().flatten().unwrap_or_default(),
    }))
}

/// Whether an existing role is this resource's: it carries the mark, or the driver's
/// state shows it made the role before marks were written.
fn ours(role: &Role, mark: &str, request: &Request, name: &str) -> bool {
    !role.privileged
        && (role.comment.as_deref() == Some(mark)
            || (role.comment.is_none()
                && request.state.as_ref().and_then(|s| s["name"].as_str()) == Some(name)
                && request
                    .state
                    .as_ref()
                    .is_some_and(|s| s["password"].is_string())))
}

fn not_ours(what: &str, name: &str, why: &str, request: &Request) -> PluginError {
    PluginError::new(
        ErrorKind::PermissionDenied,
        format!(
            "{what} {name:?} exists and is not resource {}'s ({why}); Wharf does not touch it: \
             choose another name",
            names::describe(request)
        ),
    )
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
        let mark = names::owner(&request);
        let password = match request.state.as_ref().and_then(|s| s["password"].as_str()) {
            Some(p) => p.to_string(),
            None => random(32)?,
        };
        let mut s = connect(&a)?;
        // Everything is checked before anything is changed.
        let role = find_role(&mut s, &a, &name)?;
        if let Some(role) = &role {
            if role.privileged {
                return Err(not_ours(
                    "role",
                    &name,
                    "it is a privileged role (superuser, role creation, replication or \
                     bypassing row security)",
                    &request,
                ));
            }
            if !ours(role, &mark, &request, &name) {
                return Err(not_ours(
                    "role",
                    &name,
                    "it does not carry the resource's mark",
                    &request,
                ));
            }
        }
        let database = find_database(&mut s, &a, &name)?;
        if let Some(d) = &database
            && d.owner != name
        {
            return Err(not_ours(
                "database",
                &name,
                &format!("it belongs to role {:?}", d.owner),
                &request,
            ));
        }
        let verb = if role.is_some() { "ALTER" } else { "CREATE" };
        s.query(&format!(
            "BEGIN; {verb} ROLE \"{name}\" LOGIN PASSWORD {}; COMMENT ON ROLE \"{name}\" IS {}; \
             COMMIT;",
            literal(&password),
            literal(&mark)
        ))
        .map_err(|e| failure(&a, e))?;
        if database.is_none() {
            s.query(&format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""))
                .map_err(|e| failure(&a, e))?;
        }
        s.query(&format!(
            "COMMENT ON DATABASE \"{name}\" IS {}",
            literal(&mark)
        ))
        .map_err(|e| failure(&a, e))?;
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
            objects: Vec::new(),
        }))
    }

    fn deprovision(request: Request) -> Result<Step, PluginError> {
        let a = admin(&request.config).map_err(PluginError::driver_inputs)?;
        let name = name(&request)?;
        let mark = names::owner(&request);
        let mut s = connect(&a)?;
        // Only what is this resource's goes; anything else with the name is left alone.
        let role = find_role(&mut s, &a, &name)?;
        let ours = role
            .as_ref()
            .is_some_and(|r| ours(r, &mark, &request, &name));
        if !ours {
            if role.is_some() {
                wharf_sdk::log::warn(&format!(
                    "role {name:?} is not this resource's; it and its database are left alone"
                ));
            }
            return Ok(Step::Done(Outputs::default()));
        }
        if find_database(&mut s, &a, &name)?.is_some_and(|d| d.owner == name) {
            s.query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .map_err(|e| failure(&a, e))?;
        }
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
        let generated = name(&request).unwrap();
        assert!(
            generated.starts_with("shop_development_web_db_"),
            "{generated}"
        );
        request.params = json!({ "name": "x\"; DROP TABLE y" });
        assert!(name(&request).is_err());
        request.state = Some(json!({ "name": "made_before", "password": "p" }));
        assert_eq!(name(&request).unwrap(), "made_before");
        assert_eq!(literal("it's"), "'it''s'");
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
