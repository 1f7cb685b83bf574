//! The `s3` resource driver: a bucket on an S3-compatible store, through its REST API
//! with SigV4-signed, path-style requests.
//!
//! Configuration (the installation's, with the definition's driver inputs over it):
//! `values.endpoint` (like `http://127.0.0.1:9000`; the installation must be granted its
//! origin), `values.region` (`us-east-1`), `values.force` (deprovision empties a bucket
//! that still holds objects; without it, deprovisioning such a bucket fails and says so);
//! `secrets.access_key_id` and `secrets.secret_access_key`, which are also what the
//! workload gets.
//!
//! Params: `name` (the bucket; by default one made from the app, the environment, the
//! resource id and the idempotency key). Outputs: `bucket`, `region`, `endpoint`;
//! secrets `access_key_id` and `secret_access_key`. A bucket that exists and is ours
//! (an earlier call, or an interrupted one) is adopted.

mod sigv4;

use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, http, json};

/// The s3 driver.
pub struct S3;

struct Settings {
    endpoint: String,
    host: String,
    region: String,
    force: bool,
    access_key: String,
    secret_key: String,
}

fn settings(config: &Values) -> Result<Settings, Vec<Issue>> {
    let mut issues = Vec::new();
    let endpoint = config.values["endpoint"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let host = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .map(|h| h.split('/').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        issues.push(Issue::new(
            "/values/endpoint",
            "required: the store's URL, like http://127.0.0.1:9000",
        ));
    }
    let secret = |key: &str, issues: &mut Vec<Issue>| match config.secrets[key].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => {
            issues.push(Issue::new(format!("/secrets/{key}"), "required: a string"));
            String::new()
        }
    };
    let access_key = secret("access_key_id", &mut issues);
    let secret_key = secret("secret_access_key", &mut issues);
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Settings {
        endpoint,
        host,
        region: config.values["region"]
            .as_str()
            .unwrap_or("us-east-1")
            .to_string(),
        force: config.values["force"] == true,
        access_key,
        secret_key,
    })
}

/// A valid bucket name from free text.
fn bucket_name(request: &Request) -> Result<String, PluginError> {
    if let Some(name) = request.params["name"].as_str() {
        let ok = (3..=63).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !ok {
            return Err(PluginError::invalid_input(format!(
                "params.name {name:?}: 3 to 63 lowercase letters, digits and dashes"
            )));
        }
        return Ok(name.to_string());
    }
    let c = &request.context;
    let mut base: String = format!("{}-{}-{}", c.app, c.env, c.resource_id)
        .to_ascii_lowercase()
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
        .collect();
    base.truncate(50);
    let key = &request.idempotency_key[..request.idempotency_key.len().min(8)];
    Ok(format!("{}-{key}", base.trim_matches('-')))
}

/// Sends a signed request.
fn send(
    s: &Settings,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<http::Response, PluginError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let date = sigv4::amz_date(now);
    let payload = sigv4::sha256_hex(&body);
    let signer = sigv4::Signer {
        access_key: &s.access_key,
        secret_key: &s.secret_key,
        region: &s.region,
    };
    let headers = [
        ("host", s.host.as_str()),
        ("x-amz-content-sha256", payload.as_str()),
        ("x-amz-date", date.as_str()),
    ];
    let authorization = signer.authorization(method, path, query, &headers, &payload);
    let query_text = query
        .iter()
        .map(|(k, v)| format!("{}={}", sigv4::encode(k, false), sigv4::encode(v, false)))
        .collect::<Vec<_>>()
        .join("&");
    let url = if query_text.is_empty() {
        format!("{}{}", s.endpoint, sigv4::encode(path, true))
    } else {
        format!("{}{}?{query_text}", s.endpoint, sigv4::encode(path, true))
    };
    let mut request = http::Request::new(method, &url)
        .header("x-amz-content-sha256", &payload)
        .header("x-amz-date", &date)
        .header("authorization", &authorization);
    request.body = body;
    Ok(http::send(&request)?)
}

/// The text of an S3 XML element.
fn element<'t>(xml: &'t str, name: &str) -> Option<&'t str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn refused(s: &Settings, what: &str, r: &http::Response) -> PluginError {
    let body = String::from_utf8_lossy(&r.body);
    let code = element(&body, "Code").unwrap_or_default();
    let message = element(&body, "Message").unwrap_or_default();
    let said = format!("{what}: {} {code} {message}", r.status);
    match r.status {
        401 | 403 => PluginError::new(
            ErrorKind::PermissionDenied,
            format!(
                "the store at {} refused the credentials (authentication failed); {said}",
                s.endpoint
            ),
        ),
        500..=599 => {
            PluginError::unavailable(format!("the store at {} failed; {said}", s.endpoint))
        }
        _ => PluginError::new(ErrorKind::Conflict, said),
    }
}

/// The keys of up to 1000 objects of a bucket.
fn keys(s: &Settings, bucket: &str) -> Result<Option<Vec<String>>, PluginError> {
    let r = send(
        s,
        "GET",
        &format!("/{bucket}"),
        &[("list-type", "2"), ("max-keys", "1000")],
        Vec::new(),
    )?;
    if r.status == 404 {
        return Ok(None);
    }
    if r.status != 200 {
        return Err(refused(s, "listing the bucket", &r));
    }
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let mut out = Vec::new();
    let mut rest = body.as_str();
    while let Some(key) = element(rest, "Key") {
        out.push(key.to_string());
        let at = rest.find("</Key>").expect("found above") + 6;
        rest = &rest[at..];
    }
    Ok(Some(out))
}

impl Driver for S3 {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "s3",
                env!("CARGO_PKG_VERSION"),
                "A bucket on an S3-compatible store (SigV4, path-style)",
            )
            .with_config_schema(json!({ "type": "object" })),
            resource_types: vec![ResourceType {
                name: "s3".into(),
                params_schema: json!({
                    "type": "object", "properties": { "name": { "type": "string" } }
                }),
                outputs_schema: json!({ "type": "object" }),
            }],
        }
    }

    /// An installation may leave out what its definitions give; a call checks it all.
    fn validate_config(config: &Values) -> Result<(), Vec<Issue>> {
        match config.values["endpoint"].as_str() {
            Some(e) if !e.starts_with("http://") && !e.starts_with("https://") => {
                Err(vec![Issue::new(
                    "/values/endpoint",
                    "the store's URL, like http://127.0.0.1:9000",
                )])
            }
            _ => Ok(()),
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        let s = settings(&request.config).map_err(PluginError::driver_inputs)?;
        let bucket = bucket_name(&request)?;
        let body = if s.region == "us-east-1" {
            Vec::new()
        } else {
            format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                s.region
            )
            .into_bytes()
        };
        let r = send(&s, "PUT", &format!("/{bucket}"), &[], body)?;
        let adopted =
            r.status == 409 && String::from_utf8_lossy(&r.body).contains("BucketAlreadyOwnedByYou");
        if r.status != 200 && !adopted {
            return Err(refused(&s, &format!("creating bucket {bucket}"), &r));
        }
        Ok(Step::Done(Outputs {
            outputs: Values {
                values: json!({ "bucket": bucket, "region": s.region, "endpoint": s.endpoint }),
                secrets: json!({
                    "access_key_id": s.access_key,
                    "secret_access_key": s.secret_key,
                }),
            },
            state: json!({ "bucket": bucket }),
        }))
    }

    fn deprovision(request: Request) -> Result<Step, PluginError> {
        let s = settings(&request.config).map_err(PluginError::driver_inputs)?;
        let bucket = match request.state.as_ref().and_then(|st| st["bucket"].as_str()) {
            Some(b) => b.to_string(),
            None => bucket_name(&request)?,
        };
        let Some(objects) = keys(&s, &bucket)? else {
            return Ok(Step::Done(Outputs::default()));
        };
        if !objects.is_empty() {
            if !s.force {
                return Err(PluginError::new(
                    ErrorKind::Conflict,
                    format!(
                        "bucket {bucket} is not empty ({} object(s), like {:?}): empty it, or set \
                         force: true in the resource definition to delete what it holds",
                        objects.len(),
                        objects[0]
                    ),
                ));
            }
            for key in &objects {
                let r = send(&s, "DELETE", &format!("/{bucket}/{key}"), &[], Vec::new())?;
                if r.status >= 300 && r.status != 404 {
                    return Err(refused(&s, &format!("deleting {key}"), &r));
                }
            }
            if objects.len() == 1000 {
                return Ok(Step::InProgress {
                    state: json!({ "bucket": bucket }),
                    message: format!("emptying bucket {bucket}"),
                    retry_after: std::time::Duration::from_millis(10),
                });
            }
        }
        let r = send(&s, "DELETE", &format!("/{bucket}"), &[], Vec::new())?;
        if r.status >= 300 && r.status != 404 {
            return Err(refused(&s, &format!("deleting bucket {bucket}"), &r));
        }
        Ok(Step::Done(Outputs::default()))
    }
}

wharf_sdk::export_driver!(S3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_are_valid_and_stable() {
        let mut request = Request::test("s3");
        request.context.resource_id = "web.Files".into();
        request.idempotency_key = "abcdef0123456789".into();
        assert_eq!(
            bucket_name(&request).unwrap(),
            "shop-development-web-files-abcdef01"
        );
        request.params = json!({ "name": "Bad_Name" });
        assert!(bucket_name(&request).is_err());
        assert_eq!(
            element("<a><Key>x/y</Key></a>", "Key"),
            Some("x/y"),
            "object keys are read from the listing"
        );
    }

    #[test]
    fn a_configuration_without_credentials_names_them() {
        let issues = settings(&Values::default()).err().unwrap();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/values/endpoint",
                "/secrets/access_key_id",
                "/secrets/secret_access_key"
            ]
        );
    }
}
