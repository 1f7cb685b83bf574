//! The `dns` resource driver: a record in a PowerDNS zone, through its HTTP API.
//!
//! Configuration (the installation's configuration, with the resource definition's
//! driver inputs over it): `values.api_url` (the
//! PowerDNS webserver, like `http://127.0.0.1:8081`; the installation must be granted
//! its origin), `values.zone` (an existing zone, like `example.test`), optionally
//! `values.server` (`localhost`), `values.ttl` (300) and `values.default_address`
//! (`127.0.0.1`, for records the params do not point anywhere); `secrets.api_key`.
//!
//! Params: either `address` (an A record) or `target` (a CNAME), and, where the resource
//! definition lets it through, `name` (the host's labels in the zone, with the prefix
//! `values.name_prefix` may require); by default the name is generated from the app, the
//! environment and the resource id, with a hash of them, so that no two resources share
//! one. Output: `host`, the record's name without the final dot, with `zone`, `type` and
//! `content`.
//!
//! Ownership: every record set the driver writes carries the resource's owner mark as a
//! PowerDNS comment (account `wharf`). Before writing, the driver reads what the zone has
//! at the name: a record set of any type there that does not carry this resource's mark
//! (another app's, or one ops made by hand) is refused, never overwritten; deprovisioning
//! deletes only the record set that carries it.
//!
//! Provisioning replaces the record set (PowerDNS's `REPLACE`), so calling again changes
//! nothing; a name that changed since the last call is deleted first. Deprovisioning
//! deletes the record set; one already gone is fine.

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, Value, http, json, names};

/// The dns driver.
pub struct Dns;

/// What a call needs from the configuration.
struct Settings {
    api_url: String,
    server: String,
    zone: String,
    ttl: u64,
    default_address: String,
    api_key: String,
}

fn settings(config: &Values) -> Result<Settings, Vec<Issue>> {
    let v = &config.values;
    let mut issues = Vec::new();
    let text = |key: &str, issues: &mut Vec<Issue>| match v[key].as_str() {
        Some(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            issues.push(Issue::new(format!("/values/{key}"), "required: a string"));
            String::new()
        }
    };
    let api_url = text("api_url", &mut issues)
        .trim_end_matches('/')
        .to_string();
    if !api_url.is_empty() && !api_url.starts_with("http://") && !api_url.starts_with("https://") {
        issues.push(Issue::new(
            "/values/api_url",
            "the PowerDNS webserver's URL, like http://127.0.0.1:8081",
        ));
    }
    let zone = text("zone", &mut issues)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let api_key = match config.secrets["api_key"].as_str() {
        Some(k) if !k.is_empty() => k.to_string(),
        _ => {
            issues.push(Issue::new(
                "/secrets/api_key",
                "required: the PowerDNS API key",
            ));
            String::new()
        }
    };
    let ttl = match &v["ttl"] {
        Value::Null => 300,
        t => t.as_u64().filter(|t| *t > 0).unwrap_or_else(|| {
            issues.push(Issue::new("/values/ttl", "seconds, above 0"));
            300
        }),
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Settings {
        api_url,
        server: v["server"].as_str().unwrap_or("localhost").to_string(),
        zone,
        ttl,
        default_address: v["default_address"]
            .as_str()
            .unwrap_or("127.0.0.1")
            .to_string(),
        api_key,
    })
}

/// A DNS label from free text: lowercase letters, digits and dashes.
fn label(text: &str) -> String {
    let mut out: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').chars().take(40).collect()
}

/// The record a request asks for: fully qualified name (with the final dot), type and
/// content.
fn record(request: &Request, s: &Settings) -> Result<(String, String, String), PluginError> {
    let p = &request.params;
    let name = match names::chosen(request)? {
        Some(n) if !n.is_empty() => {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            if !n
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l == label(l))
            {
                return Err(PluginError::invalid_input(format!(
                    "params.name {n:?}: labels of letters, digits and dashes, like \"api\" or \"api.eu\""
                )));
            }
            n
        }
        _ => names::generated(request, &NAMES),
    };
    let fqdn = format!("{name}.{}.", s.zone);
    match (p["address"].as_str(), p["target"].as_str()) {
        (Some(_), Some(_)) => Err(PluginError::invalid_input(
            "params: give address (an A record) or target (a CNAME), not both",
        )),
        (None, Some(target)) => Ok((
            fqdn,
            "CNAME".into(),
            format!("{}.", target.trim_end_matches('.')),
        )),
        (address, None) => {
            let address = address.unwrap_or(&s.default_address);
            if address.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(PluginError::invalid_input(format!(
                    "params.address {address:?} is not an IPv4 address"
                )));
            }
            Ok((fqdn, "A".into(), address.to_string()))
        }
    }
}

/// What a host label may hold.
const NAMES: names::Rules = names::Rules {
    max_len: 63,
    separator: '-',
    also: "-",
    starts_with_letter: false,
};

/// The record sets the zone has at `fqdn`: each one's type and the owner marks in its
/// comments.
fn at_name(s: &Settings, fqdn: &str) -> Result<Vec<(String, Vec<String>)>, PluginError> {
    // PowerDNS 4.8 and later return only the record sets asked for; earlier ones ignore
    // the filter and return the zone, which is filtered here.
    let url = format!(
        "{}/api/v1/servers/{}/zones/{}.?rrsets=true&rrset_name={fqdn}",
        s.api_url, s.server, s.zone
    );
    let response = http::send(&http::Request::new("GET", &url).header("x-api-key", &s.api_key))?;
    if response.status >= 300 {
        return Err(refused(s, &response));
    }
    let zone = response
        .json()
        .map_err(|e| PluginError::other(format!("PowerDNS answered what is not JSON: {e}")))?;
    Ok(zone["rrsets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(fqdn))
        })
        .map(|r| {
            (
                r["type"].as_str().unwrap_or_default().to_string(),
                r["comments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["account"] == "wharf")
                    .filter_map(|c| c["content"].as_str().map(str::to_string))
                    .collect(),
            )
        })
        .collect())
}

/// Whether a record set is this resource's: it carries the mark, or the driver's state
/// shows it wrote it (name and type) before marks were written.
fn ours(request: &Request, marks: &[String], fqdn: &str, kind: &str) -> bool {
    let mark = names::owner(request);
    if marks.contains(&mark) {
        return true;
    }
    marks.is_empty()
        && request.state.as_ref().is_some_and(|st| {
            st["fqdn"].as_str() == Some(fqdn) && st["type"].as_str() == Some(kind)
        })
}

/// Changes one record set of the zone: `REPLACE` with `content` (and the resource's mark),
/// or `DELETE`.
fn change(
    s: &Settings,
    fqdn: &str,
    kind: &str,
    content: Option<(&str, &str)>,
) -> Result<http::Response, PluginError> {
    let mut rrset = json!({ "name": fqdn, "type": kind, "changetype": "DELETE" });
    if let Some((content, mark)) = content {
        rrset = json!({
            "name": fqdn, "type": kind, "ttl": s.ttl, "changetype": "REPLACE",
            "records": [{ "content": content, "disabled": false }],
            "comments": [{ "content": mark, "account": "wharf" }],
        });
    }
    let url = format!(
        "{}/api/v1/servers/{}/zones/{}.",
        s.api_url, s.server, s.zone
    );
    let request = http::Request::new("PATCH", &url)
        .header("x-api-key", &s.api_key)
        .json(&json!({ "rrsets": [rrset] }));
    Ok(http::send(&request)?)
}

/// The error for an answer that is not a success.
fn refused(s: &Settings, response: &http::Response) -> PluginError {
    let said = response
        .json()
        .ok()
        .and_then(|b| b["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&response.body).trim().to_string());
    match response.status {
        401 | 403 => PluginError::new(
            ErrorKind::PermissionDenied,
            format!(
                "PowerDNS at {} refused the API key: authentication failed ({})",
                s.api_url, response.status
            ),
        ),
        404 => PluginError::new(
            ErrorKind::NotFound,
            format!(
                "zone {} does not exist on PowerDNS server {} at {}; create it first",
                s.zone, s.server, s.api_url
            ),
        ),
        500..=599 => PluginError::unavailable(format!(
            "PowerDNS at {} failed ({}): {said}",
            s.api_url, response.status
        )),
        status => {
            PluginError::invalid_input(format!("PowerDNS refused the record ({status}): {said}"))
        }
    }
}

impl Driver for Dns {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "dns",
                env!("CARGO_PKG_VERSION"),
                "A record (A or CNAME) in a PowerDNS zone, through its HTTP API",
            )
            .with_config_schema(json!({
                "type": "object",
                "properties": {
                    "values": { "type": "object", "required": ["api_url", "zone"] },
                    "secrets": { "type": "object", "required": ["api_key"] }
                }
            })),
            resource_types: vec![ResourceType {
                name: "dns".into(),
                params_schema: json!({
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "address": { "type": "string" },
                        "target": { "type": "string" }
                    }
                }),
                outputs_schema: json!({
                    "type": "object",
                    "properties": { "values": { "required": ["host"] } }
                }),
            }],
        }
    }

    /// An installation's configuration may leave out what its definitions give (a zone),
    /// so only what is there is checked; a call checks that nothing is missing.
    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        let issues: Vec<Issue> = match settings(config) {
            Ok(_) => Vec::new(),
            Err(issues) => issues
                .into_iter()
                .filter(|i| !i.message.starts_with("required"))
                .collect(),
        };
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        let s = settings(&request.config).map_err(PluginError::driver_inputs)?;
        let (fqdn, kind, content) = record(&request, &s)?;
        // Whatever the zone has at the name must be this resource's: checked before
        // anything changes.
        for (existing, marks) in at_name(&s, &fqdn)? {
            if !ours(&request, &marks, &fqdn, &existing) {
                return Err(PluginError::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{} has a {existing} record that is not resource {}'s (it carries no \
                         mark of it); Wharf does not touch it: choose another name",
                        fqdn.trim_end_matches('.'),
                        names::describe(&request)
                    ),
                ));
            }
        }
        // A record of an earlier call under another name or type goes first.
        if let Some(state) = &request.state
            && let (Some(old), Some(old_kind)) = (state["fqdn"].as_str(), state["type"].as_str())
            && (old != fqdn || old_kind != kind)
        {
            let response = change(&s, old, old_kind, None)?;
            if response.status >= 300 && response.status != 404 {
                return Err(refused(&s, &response));
            }
        }
        let mark = names::owner(&request);
        let response = change(&s, &fqdn, &kind, Some((&content, &mark)))?;
        if response.status >= 300 {
            return Err(refused(&s, &response));
        }
        Ok(Step::Done(Outputs {
            outputs: Values {
                values: json!({
                    "host": fqdn.trim_end_matches('.'),
                    "zone": s.zone,
                    "type": kind,
                    "content": content,
                }),
                secrets: json!({}),
            },
            state: json!({ "fqdn": fqdn, "type": kind }),
            objects: Vec::new(),
        }))
    }

    fn deprovision(request: Request) -> Result<Step, PluginError> {
        let s = settings(&request.config).map_err(PluginError::driver_inputs)?;
        let (fqdn, kind) = match &request.state {
            Some(state) if state["fqdn"].is_string() => (
                state["fqdn"].as_str().unwrap_or_default().to_string(),
                state["type"].as_str().unwrap_or("A").to_string(),
            ),
            _ => {
                let (fqdn, kind, _) = record(&request, &s)?;
                (fqdn, kind)
            }
        };
        let found = at_name(&s, &fqdn)?;
        let Some((_, marks)) = found.iter().find(|(k, _)| *k == kind) else {
            return Ok(Step::Done(Outputs::default()));
        };
        if !ours(&request, marks, &fqdn, &kind) {
            wharf_sdk::log::warn(&format!(
                "the {kind} record {fqdn} is not this resource's; it is left alone"
            ));
            return Ok(Step::Done(Outputs::default()));
        }
        let response = change(&s, &fqdn, &kind, None)?;
        if response.status >= 300 && response.status != 404 {
            return Err(refused(&s, &response));
        }
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(Dns);

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Values {
        Values {
            values: json!({ "api_url": "http://127.0.0.1:8081/", "zone": "Example.Test." }),
            secrets: json!({ "api_key": "k" }),
        }
    }

    #[test]
    fn a_configuration_without_what_is_needed_lists_every_problem() {
        assert!(
            Dns::validate_config(&Values::default()).is_ok(),
            "partial is fine"
        );
        let bad = Values {
            values: json!({ "api_url": "ftp://x", "ttl": 0 }),
            secrets: json!({}),
        };
        assert_eq!(Dns::validate_config(&bad).unwrap_err().len(), 2);
        let issues = settings(&Values::default()).err().unwrap();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/values/api_url", "/values/zone", "/secrets/api_key"]
        );
        let s = settings(&config()).unwrap();
        assert_eq!(s.api_url, "http://127.0.0.1:8081");
        assert_eq!(s.zone, "example.test");
    }

    #[test]
    fn records_come_from_the_params_or_a_stable_generated_name() {
        let s = settings(&config()).unwrap();
        let mut request = Request::test("dns");
        request.context.resource_id = "web.dns".into();
        let (fqdn, kind, content) = record(&request, &s).unwrap();
        assert!(
            fqdn.starts_with("shop-development-web-dns-") && fqdn.ends_with(".example.test."),
            "{fqdn}"
        );
        assert_eq!((kind.as_str(), content.as_str()), ("A", "127.0.0.1"));
        assert_eq!(record(&request, &s).unwrap().0, fqdn, "stable");
        request.params = json!({ "name": "api", "target": "lb.example.net" });
        assert_eq!(
            record(&request, &s).unwrap(),
            (
                "api.example.test.".into(),
                "CNAME".into(),
                "lb.example.net.".into()
            )
        );
        request.params = json!({ "name": "bad_name", "address": "10.0.0.1" });
        assert!(record(&request, &s).is_err());
        request.params = json!({ "address": "not-an-ip" });
        assert!(record(&request, &s).is_err());
    }
}
