//! The `s3` resource driver: a bucket on an S3-compatible store, and a user of the store's
//! that may use that bucket and nothing else, through the store's S3 REST API (path-style)
//! and its IAM query API, every request signed with SigV4.
//!
//! Configuration (the installation's, with the definition's driver inputs over it):
//! - `values.endpoint`: the store's URL, scheme, host and port only (`http://127.0.0.1:9000`);
//!   the installation must be granted its origin.
//! - `values.region` (`us-east-1`): where buckets are made (elsewhere, with a
//!   `LocationConstraint`).
//! - `values.iam_endpoint` (`values.endpoint`): the store's IAM query API, signed for service
//!   `iam` in `us-east-1`; the installation must be granted it too when it is another origin.
//! - `values.force` (`false`): deprovisioning deletes what the bucket holds; without it, a
//!   bucket that holds objects is kept and the call fails saying so, before changing anything.
//! - `values.share_installation_credentials` (`false`): the workload gets the installation's
//!   keys instead of a user of its own, for stores without an IAM API (MinIO); then whoever
//!   deploys with the definition can do whatever those keys can.
//! - `values.name_prefix`: what a bucket name the workload chooses must start with.
//! - `secrets.access_key_id`, `secrets.secret_access_key`: the installation's keys, which make
//!   and delete buckets and users.
//!
//! Names. The bucket is the one the driver's state names (made before); else the one the
//! workload chose (`params.name`, which the host passes only when the resource definition
//! lets `name` through; with `name_prefix`, and 3 to 63 lowercase letters, digits and dashes,
//! not starting or ending with a dash); else one [generated](names::generated) from the app,
//! the environment and the resource id with a hash of all the resource is, which no other
//! resource gets. The bucket's user has the bucket's name.
//!
//! Ownership. A bucket the driver makes is tagged `wharf-owner` with the resource's
//! [owner mark](names::owner). Creating and tagging are two requests, so creating returns in
//! progress with `"created": true` and the bucket in the state, which the host keeps before
//! the next call tags it. An existing bucket is this resource's when it carries the mark, or
//! when it carries none and the state names it (made before marks existed, or created by the
//! previous call) or, when provisioning, it has the generated name (a crash lost the state);
//! such an unmarked bucket gets the mark, keeping its other tags. Any other bucket (another
//! mark, no mark under a chosen name, another account's) is a permission error naming the
//! resource, and nothing changes. Deprovisioning deletes a bucket only when it carries the mark
//! or carries none and the state names it; anything else is left alone, with a warning.
//!
//! Credentials. Unless `share_installation_credentials` is true, the bucket gets an IAM user
//! under the path `/wharf/`, tagged `wharf-owner` with the mark as it is created, with one
//! inline policy (`wharf-bucket`) allowing `s3:ListBucket` and `s3:GetBucketLocation` on the
//! bucket and `s3:GetObject`, `s3:PutObject`, `s3:DeleteObject`, `s3:AbortMultipartUpload` and
//! `s3:ListMultipartUploadParts` on its objects (not deleting or tagging the bucket, nor
//! anything of another), and one access key. An existing user is used only when it carries the
//! mark. The key is kept in the driver's state (which the host seals), so a redeploy hands out
//! the same key; when the store no longer has it, the user's other keys (left by an
//! interrupted call, known to no one) are deleted and a new one is made. Deprovisioning deletes
//! the user's keys, its policy and the user when it carries the mark, then the bucket. A store
//! without an IAM API fails the call with an error saying to set
//! `share_installation_credentials: true`.
//!
//! Params: `name`. Outputs: `bucket`, `region`, `endpoint`; secrets `access_key_id` and
//! `secret_access_key` (the bucket user's key, or the installation's when shared).
//!
//! The driver must not touch a bucket or a user that is not its resource's, and must not hand
//! a workload keys that reach beyond its bucket unless the definition says so. Requests are
//! built and answers read by plain functions; only [`http::send`] needs the sandbox, so the
//! tests drive the whole driver against a store in memory.

mod sigv4;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use std::time::Duration;
use wharf_sdk::driver::{Description, Driver, Outputs, Request, ResourceType, Step, Values};
use wharf_sdk::http::{self, HttpError};
use wharf_sdk::names::{self, Rules};
use wharf_sdk::{ErrorKind, Issue, PluginError, PluginInfo, Value, json, log, serde_json};

/// The s3 driver.
pub struct S3;

/// The tag, on a bucket and on its user, whose value is the resource's owner mark.
const OWNER_TAG: &str = "wharf-owner";

/// The IAM path of the users the driver makes, which tells them apart from people's.
const USER_PATH: &str = "/wharf/";

/// The inline policy that gives a user its bucket.
const POLICY_NAME: &str = "wharf-bucket";

/// The version of the IAM query API.
const IAM_VERSION: &str = "2010-05-08";

/// IAM is global: its requests are signed for this region whatever the store's.
const IAM_REGION: &str = "us-east-1";

/// The most objects deleted in one call; a bucket holding more is emptied over several.
const PAGE: usize = 1000;

/// What S3 allows in a bucket name (and IAM in a user name). Dots, which S3 allows too, are
/// left out: they break TLS with virtual-hosted requests.
const NAMES: Rules = Rules {
    max_len: 63,
    separator: '-',
    also: "-",
    starts_with_letter: false,
};

/// Where one of the store's APIs is.
#[derive(Debug, Clone, PartialEq)]
struct Origin {
    /// `scheme://authority`, with no trailing slash.
    url: String,
    /// The authority alone, which is the signed `host`.
    host: String,
}

/// An origin from a URL that has nothing after its authority but a slash.
fn origin(text: &str) -> Option<Origin> {
    let url = text.strip_suffix('/').unwrap_or(text);
    let (scheme, host) = url.split_once("://")?;
    let ok = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '@', ' ']);
    ok.then(|| Origin {
        url: url.to_string(),
        host: host.to_string(),
    })
}

/// An access key.
#[derive(Clone, PartialEq)]
struct Key {
    id: String,
    secret: String,
}

/// The secret stays out of logs and test failures.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The configuration one call works with, checked.
struct Settings {
    /// The S3 API.
    endpoint: Origin,
    /// The IAM query API.
    iam: Origin,
    /// Where buckets are made.
    region: String,
    /// Deprovisioning deletes what a bucket holds.
    force: bool,
    /// The workload gets the installation's keys, and no user is made.
    share: bool,
    /// The installation's keys, which sign every request.
    admin: Key,
}

/// What is wrong with the values a configuration gives. Leaving one out is not wrong here:
/// an installation may leave to its definitions what they give; [`settings`] checks the
/// whole.
fn config_issues(values: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    for key in ["endpoint", "iam_endpoint"] {
        match &values[key] {
            Value::Null => {}
            Value::String(url) if origin(url).is_some() => {}
            _ => issues.push(Issue::new(
                format!("/values/{key}"),
                "the store's URL with no path, like http://127.0.0.1:9000",
            )),
        }
    }
    match &values["region"] {
        Value::Null => {}
        Value::String(r) if !r.is_empty() && r.chars().all(|c| allowed(c, "-")) => {}
        _ => issues.push(Issue::new("/values/region", "a region, like us-east-1")),
    }
    for key in ["force", "share_installation_credentials"] {
        if !matches!(values[key], Value::Null | Value::Bool(_)) {
            issues.push(Issue::new(format!("/values/{key}"), "true or false"));
        }
    }
    match &values["name_prefix"] {
        Value::Null => {}
        Value::String(p) if p.chars().all(|c| allowed(c, "-")) => {}
        _ => issues.push(Issue::new(
            "/values/name_prefix",
            "the start of the bucket names workloads choose: lowercase letters, digits and \
             dashes",
        )),
    }
    issues
}

/// Lowercase ASCII letters, digits and `also`.
fn allowed(c: char, also: &str) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || also.contains(c)
}

/// The configuration of a call, with every problem listed.
fn settings(config: &Values) -> Result<Settings, Vec<Issue>> {
    let v = &config.values;
    let mut issues = config_issues(v);
    let endpoint = v["endpoint"].as_str().and_then(origin);
    if v["endpoint"].is_null() {
        issues.push(Issue::new(
            "/values/endpoint",
            "required: the store's URL, like http://127.0.0.1:9000",
        ));
    }
    let mut secret = |key: &str| match config.secrets[key].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => {
            issues.push(Issue::new(
                format!("/secrets/{key}"),
                "required: the installation's key, a string",
            ));
            String::new()
        }
    };
    let admin = Key {
        id: secret("access_key_id"),
        secret: secret("secret_access_key"),
    };
    let Some(endpoint) = endpoint.filter(|_| issues.is_empty()) else {
        return Err(issues);
    };
    Ok(Settings {
        iam: v["iam_endpoint"]
            .as_str()
            .and_then(origin)
            .unwrap_or_else(|| endpoint.clone()),
        endpoint,
        region: v["region"].as_str().unwrap_or("us-east-1").to_string(),
        force: v["force"] == true,
        share: v["share_installation_credentials"] == true,
        admin,
    })
}

/// A string the driver's state holds.
fn state_str<'r>(request: &'r Request, key: &str) -> Option<&'r str> {
    request.state.as_ref().and_then(|s| s[key].as_str())
}

/// The state to keep: the previous call's, with `changes` over it and without `created`
/// (which says only that the bucket was created and is not marked yet; what lets the next
/// call mark it is the state naming it).
fn next_state(request: &Request, changes: Value) -> Value {
    let mut state = match &request.state {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    state.remove("created");
    if let Value::Object(changes) = changes {
        state.extend(changes);
    }
    Value::Object(state)
}

/// The bucket's name (and its user's): the state's, else the workload's choice, else
/// generated; see the crate docs.
fn bucket_name(request: &Request) -> Result<String, PluginError> {
    if let Some(bucket) = state_str(request, "bucket") {
        return Ok(bucket.to_string());
    }
    let Some(name) = names::chosen(request)? else {
        return Ok(names::generated(request, &NAMES));
    };
    let ok = (3..=63).contains(&name.len())
        && name.chars().all(|c| allowed(c, "-"))
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(PluginError::invalid_input(format!(
            "params.name {name:?}: a bucket name is 3 to 63 lowercase letters, digits and \
             dashes, not starting or ending with a dash"
        )));
    }
    Ok(name)
}

/// Whether the driver's state names `bucket`: it was made for this resource, before marks
/// existed or by the previous call (which returned before marking it).
fn state_names(request: &Request, bucket: &str) -> bool {
    state_str(request, "bucket") == Some(bucket)
}

/// Whether an unmarked bucket is this resource's when provisioning: the state names it, or
/// it has the generated name, which no other resource gets (a crash between creating it and
/// the host keeping the state leaves it so).
fn unmarked_is_ours(request: &Request, bucket: &str) -> bool {
    state_names(request, bucket) || bucket == names::generated(request, &NAMES)
}

/// A tag of a bucket or a user.
#[derive(Debug, Clone, PartialEq)]
struct Tag {
    key: String,
    value: String,
}

/// The owner mark among `tags`.
fn owner_of(tags: &[Tag]) -> Option<&str> {
    tags.iter()
        .find(|t| t.key == OWNER_TAG)
        .map(|t| t.value.as_str())
}

/// A bucket as the store shows it.
#[derive(Debug, PartialEq)]
enum Found {
    /// No bucket has the name.
    Missing,
    /// The bucket, with its tags (none when it has no tag set).
    Exists(Vec<Tag>),
}

/// Whose an existing bucket is.
#[derive(Debug, PartialEq)]
enum Claim {
    /// This resource's: it carries its mark.
    Marked,
    /// This resource's, though it carries no mark (see [`unmarked_is_ours`]): it gets one.
    Unmarked,
    /// Not this resource's, and why.
    Foreign(&'static str),
}

/// Whose a bucket with `tags` is, for the resource with `mark`; `proven` says whether an
/// unmarked one is this resource's all the same.
fn claim(tags: &[Tag], mark: &str, proven: bool) -> Claim {
    match owner_of(tags) {
        Some(m) if m == mark => Claim::Marked,
        Some(_) => Claim::Foreign("it carries another resource's mark"),
        None if proven => Claim::Unmarked,
        None => Claim::Foreign("it carries no Wharf mark"),
    }
}

/// The error for a bucket or user that exists and is not this resource's.
fn not_ours(request: &Request, what: &str, name: &str, why: &str) -> PluginError {
    PluginError::new(
        ErrorKind::PermissionDenied,
        format!(
            "{what} {name} exists and is not resource {}'s ({why}); Wharf does not touch it: \
             choose another name",
            names::describe(request)
        ),
    )
}

/// The inline policy of a bucket's user: listing the bucket and reading its location, and
/// reading, writing and deleting its objects and multipart uploads. Not deleting or tagging
/// the bucket (only Wharf does that, and the tag is what proves the bucket Wharf's), nor
/// anything of another bucket.
fn policy(bucket: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Bucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": format!("arn:aws:s3:::{bucket}"),
            },
            {
                "Sid": "Objects",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            },
        ],
    })
}

/// The body of CreateBucket: none in `us-east-1`, a `LocationConstraint` elsewhere.
fn create_body(region: &str) -> Vec<u8> {
    if region == "us-east-1" {
        return Vec::new();
    }
    format!(
        "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint>\
         </CreateBucketConfiguration>",
        escape(region)
    )
    .into_bytes()
}

/// The body of PutBucketTagging: `tags` without any owner mark, then `mark`. The request
/// replaces the whole tag set, so the others are written back.
fn tagging_body(tags: &[Tag], mark: &str) -> Vec<u8> {
    let mut xml = String::from("<Tagging><TagSet>");
    let owner = Tag {
        key: OWNER_TAG.into(),
        value: mark.into(),
    };
    for tag in tags.iter().filter(|t| t.key != OWNER_TAG).chain([&owner]) {
        xml.push_str(&format!(
            "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
            escape(&tag.key),
            escape(&tag.value)
        ));
    }
    xml.push_str("</TagSet></Tagging>");
    xml.into_bytes()
}

/// The `Content-MD5` header of a body: base64 of its MD5, which S3 wants on requests like
/// PutBucketTagging.
fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

/// The form body of an IAM query API call.
fn form(action: &str, params: &[(&str, &str)]) -> String {
    [("Action", action), ("Version", IAM_VERSION)]
        .iter()
        .chain(params)
        .map(|(k, v)| format!("{}={}", sigv4::encode(k, false), sigv4::encode(v, false)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The raw contents of every `<name>` element of `xml`, in order (`""` for `<name/>`).
/// The answers read here are flat and known: no element holds one of its own name.
fn blocks<'x>(xml: &'x str, name: &str) -> Vec<&'x str> {
    let open = format!("<{name}>");
    let empty = format!("<{name}/>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    loop {
        match (rest.find(&open), rest.find(&empty)) {
            (Some(at), e) if e.is_none_or(|e| at < e) => {
                let start = at + open.len();
                let Some(len) = rest[start..].find(&close) else {
                    break;
                };
                out.push(&rest[start..start + len]);
                rest = &rest[start + len + close.len()..];
            }
            (_, Some(at)) => {
                out.push("");
                rest = &rest[at + empty.len()..];
            }
            _ => break,
        }
    }
    out
}

/// The text of the first `<name>` element of `xml`.
fn element(xml: &str, name: &str) -> Option<String> {
    blocks(xml, name).first().map(|raw| text(raw))
}

/// The text of an element's contents: a CDATA section as it is, else with entities read.
fn text(raw: &str) -> String {
    match raw
        .trim()
        .strip_prefix("<![CDATA[")
        .and_then(|t| t.strip_suffix("]]>"))
    {
        Some(cdata) => cdata.to_string(),
        None => unescape(raw),
    }
}

/// XML text with its entities (`&amp;`, `&#34;`...) read.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix('#')
                .and_then(|n| match n.strip_prefix('x') {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                })
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text as XML character data.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The tags of an answer, each an `item` element with a `Key` and a `Value` (`Tag` in S3's
/// GetBucketTagging, `member` in IAM's ListUserTags).
fn tags(xml: &str, item: &str) -> Vec<Tag> {
    blocks(xml, item)
        .into_iter()
        .filter_map(|b| {
            Some(Tag {
                key: element(b, "Key")?,
                value: element(b, "Value").unwrap_or_default(),
            })
        })
        .collect()
}

/// The keys of the objects in a ListObjectsV2 answer.
fn object_keys(xml: &str) -> Vec<String> {
    blocks(xml, "Contents")
        .into_iter()
        .filter_map(|b| element(b, "Key"))
        .collect()
}

/// The ids of the keys in a ListAccessKeys answer.
fn access_key_ids(xml: &str) -> Vec<String> {
    blocks(xml, "AccessKeyId").into_iter().map(text).collect()
}

/// The key in a CreateAccessKey answer.
fn created_key(xml: &str) -> Option<Key> {
    Some(Key {
        id: element(xml, "AccessKeyId").filter(|s| !s.is_empty())?,
        secret: element(xml, "SecretAccessKey").filter(|s| !s.is_empty())?,
    })
}

/// The code and message of an S3 error answer (empty when it has none).
fn s3_error(r: &http::Response) -> (String, String) {
    let body = String::from_utf8_lossy(&r.body);
    (
        element(&body, "Code").unwrap_or_default(),
        element(&body, "Message").unwrap_or_default(),
    )
}

/// An IAM call the store did not do.
#[derive(Debug, PartialEq)]
struct IamFailure {
    status: u16,
    /// The IAM error code (`NoSuchEntity`); `None` when the answer is not an IAM one.
    code: Option<String>,
    message: String,
}

impl IamFailure {
    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// The body of a successful IAM answer to `action`: a 2xx whose root is
/// `<{action}Response>`, as every IAM query API answer's is. Anything else failed; an
/// `<ErrorResponse>` says how.
fn iam_outcome(action: &str, r: &http::Response) -> Result<String, IamFailure> {
    let body = String::from_utf8_lossy(&r.body);
    if (200..300).contains(&r.status) && body.contains(&format!("<{action}Response")) {
        return Ok(body.into_owned());
    }
    let code = if body.contains("<ErrorResponse") {
        element(&body, "Code").filter(|c| !c.is_empty())
    } else {
        None
    };
    Err(IamFailure {
        status: r.status,
        code,
        message: element(&body, "Message").unwrap_or_default(),
    })
}

/// What kind of failure a store's answer is, from its status and error code.
fn kind(status: u16, code: &str) -> ErrorKind {
    match (status, code) {
        (429, _) | (_, "SlowDown" | "Throttling" | "RequestLimitExceeded") => {
            ErrorKind::RateLimited
        }
        (401 | 403, _) => ErrorKind::PermissionDenied,
        // Not implemented: asking again will not implement it.
        (501, _) => ErrorKind::Other,
        (500..=599, _) => ErrorKind::Unavailable,
        (409, _) => ErrorKind::Conflict,
        _ => ErrorKind::Other,
    }
}

/// An answer as people read it: `403 AccessDenied: Access Denied`.
fn answer(status: u16, code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (true, true) => status.to_string(),
        (false, true) => format!("{status} {code}"),
        (true, false) => format!("{status}: {message}"),
        (false, false) => format!("{status} {code}: {message}"),
    }
}

/// What an IAM failure asks of the person reading it, besides the store's answer.
const SHARE_HINT: &str = "if the store has no IAM API (like MinIO), set \
    share_installation_credentials: true in the resource definition to hand out the \
    installation's keys instead";

/// Which of the store's APIs a request is for: where it goes and how it is signed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    S3,
    Iam,
}

/// A request to one of the store's APIs, before it is signed.
struct Call<'q> {
    method: &'static str,
    /// The path, not yet percent-encoded.
    path: String,
    query: &'q [(&'q str, &'q str)],
    /// Headers to send and sign besides those of the signature.
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// How a request reaches the store: [`http::send`] in the sandbox, a store in memory in
/// tests.
type Transport<'a> = &'a dyn Fn(&http::Request) -> Result<http::Response, HttpError>;

/// The store, as one call sees it: its configuration and the way to it.
struct Store<'a> {
    settings: Settings,
    transport: Transport<'a>,
}

/// Seconds since the Unix epoch, for signing.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl<'a> Store<'a> {
    fn new(request: &Request, transport: Transport<'a>) -> Result<Self, PluginError> {
        Ok(Self {
            settings: settings(&request.config).map_err(PluginError::driver_inputs)?,
            transport,
        })
    }

    /// `call`, signed with the installation's keys at `unix` for `api`; its headers are
    /// sent and signed with `host`, `x-amz-date` and, for S3, `x-amz-content-sha256`.
    fn signed(&self, api: Api, unix: u64, call: Call) -> http::Request {
        let s = &self.settings;
        let (origin, region, service) = match api {
            Api::S3 => (&s.endpoint, s.region.as_str(), "s3"),
            Api::Iam => (&s.iam, IAM_REGION, "iam"),
        };
        let Call {
            method,
            path,
            query,
            mut headers,
            body,
        } = call;
        let payload = sigv4::sha256_hex(&body);
        headers.push(("x-amz-date", sigv4::amz_date(unix)));
        if api == Api::S3 {
            headers.push(("x-amz-content-sha256", payload.clone()));
        }
        let mut to_sign: Vec<(&str, &str)> =
            headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        to_sign.push(("host", &origin.host));
        let signer = sigv4::Signer {
            access_key: &s.admin.id,
            secret_key: &s.admin.secret,
            region,
            service,
        };
        let authorization = signer.authorization(method, &path, query, &to_sign, &payload);
        let mut url = format!("{}{}", origin.url, sigv4::encode(&path, true));
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!(
                "{}={}",
                sigv4::encode(k, false),
                sigv4::encode(v, false)
            ));
        }
        let mut request = http::Request::new(method, &url);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        request = request.header("authorization", &authorization);
        request.body = body;
        request
    }

    /// The request of an IAM call at `unix`: a form POSTed to the IAM API's root.
    fn iam_request(&self, unix: u64, action: &str, params: &[(&str, &str)]) -> http::Request {
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let call = Call {
            method: "POST",
            path: "/".into(),
            query: &[],
            headers: vec![("content-type", content_type.into())],
            body: form(action, params).into_bytes(),
        };
        self.signed(Api::Iam, unix, call)
    }

    /// Sends an S3 request; a body is XML, sent with its `Content-MD5`.
    fn s3(
        &self,
        method: &'static str,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<http::Response, PluginError> {
        let headers = if body.is_empty() {
            Vec::new()
        } else {
            vec![
                ("content-md5", content_md5(&body)),
                ("content-type", "application/xml".to_string()),
            ]
        };
        let call = Call {
            method,
            path: path.into(),
            query,
            headers,
            body,
        };
        Ok((self.transport)(&self.signed(Api::S3, now(), call))?)
    }

    /// Calls the IAM API: the answer's body, or how the store refused.
    fn iam(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Result<String, IamFailure>, PluginError> {
        let r = (self.transport)(&self.iam_request(now(), action, params))?;
        Ok(iam_outcome(action, &r))
    }

    /// Calls the IAM API, any failure being an error about `what` (`creating IAM user x`).
    fn iam_ok(
        &self,
        action: &str,
        params: &[(&str, &str)],
        what: &str,
    ) -> Result<String, PluginError> {
        self.iam(action, params)?
            .map_err(|f| self.iam_refused(what, f))
    }

    /// Calls an IAM API that deletes: what is already gone (`NoSuchEntity`) is deleted.
    fn iam_delete(
        &self,
        action: &str,
        params: &[(&str, &str)],
        what: &str,
    ) -> Result<(), PluginError> {
        match self.iam(action, params)? {
            Err(f) if !f.is("NoSuchEntity") => Err(self.iam_refused(what, f)),
            _ => Ok(()),
        }
    }

    /// The error for an S3 answer that refused `what`.
    fn refused(&self, what: &str, r: &http::Response) -> PluginError {
        let (code, message) = s3_error(r);
        let kind = kind(r.status, &code);
        let mut text = format!(
            "the store at {} refused {what}: {}",
            self.settings.endpoint.url,
            answer(r.status, &code, &message)
        );
        if kind == ErrorKind::PermissionDenied {
            text.push_str(
                "; check the installation's keys (secrets.access_key_id, \
                 secrets.secret_access_key) and what they may do",
            );
        }
        PluginError::new(kind, text)
    }

    /// The error for an IAM call that the store did not do.
    fn iam_refused(&self, what: &str, f: IamFailure) -> PluginError {
        let url = &self.settings.iam.url;
        let code = f.code.as_deref().unwrap_or_default();
        let kind = kind(f.status, code);
        let said = answer(f.status, code, &f.message);
        // A server that fails or asks to slow down says nothing of what it serves.
        let failing = matches!(kind, ErrorKind::Unavailable | ErrorKind::RateLimited);
        if f.code.is_none() && !failing {
            return PluginError::other(format!(
                "the store at {url} has no IAM API for {what} (it answered an IAM call with \
                 {said}): set share_installation_credentials: true in the resource definition \
                 to hand out the installation's keys instead, or values.iam_endpoint to where \
                 the store's IAM API is"
            ));
        }
        let text = match kind {
            _ if failing => format!("the IAM API at {url} failed {what}: {said}"),
            ErrorKind::PermissionDenied => format!(
                "the IAM API at {url} refused {what}: {said}; the installation's keys need the \
                 IAM rights to manage users under {USER_PATH}, or {SHARE_HINT}"
            ),
            _ => format!("the IAM API at {url} refused {what}: {said}; {SHARE_HINT}"),
        };
        PluginError::new(kind, text)
    }

    /// The bucket and its tags.
    fn find_bucket(&self, bucket: &str) -> Result<Found, PluginError> {
        let r = self.s3("GET", &format!("/{bucket}"), &[("tagging", "")], Vec::new())?;
        let (code, message) = s3_error(&r);
        match (r.status, code.as_str()) {
            (200, _) => Ok(Found::Exists(tags(
                &String::from_utf8_lossy(&r.body),
                "Tag",
            ))),
            (404, "NoSuchBucket") => Ok(Found::Missing),
            (404, "NoSuchTagSet") => Ok(Found::Exists(Vec::new())),
            (403, _) => Err(PluginError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the store at {} refused to show the tags of bucket {bucket} ({}): it may be \
                     another account's bucket (then choose another name), or the installation's \
                     keys may not read bucket tags (s3:GetBucketTagging)",
                    self.settings.endpoint.url,
                    answer(r.status, &code, &message)
                ),
            )),
            _ => Err(self.refused(&format!("reading the tags of bucket {bucket}"), &r)),
        }
    }

    /// Creates the bucket; the next call marks it (see the crate docs).
    fn create_bucket(&self, request: &Request, bucket: &str) -> Result<Step, PluginError> {
        let body = create_body(&self.settings.region);
        let r = self.s3("PUT", &format!("/{bucket}"), &[], body)?;
        let (code, _) = s3_error(&r);
        match (r.status, code.as_str()) {
            (200, _) => Ok(Step::InProgress {
                state: next_state(request, json!({ "bucket": bucket, "created": true })),
                message: "bucket created; marking it".into(),
                retry_after: Duration::ZERO,
            }),
            // Made by someone between finding it missing and creating it: the next call
            // decides whose it is by its mark, with nothing in the state to prove it ours.
            (409, "BucketAlreadyOwnedByYou") => Ok(Step::InProgress {
                state: next_state(request, json!({})),
                message: format!("bucket {bucket} was made meanwhile; checking whose it is"),
                retry_after: Duration::ZERO,
            }),
            (409, "BucketAlreadyExists") => Err(not_ours(
                request,
                "bucket",
                bucket,
                "it is another account's",
            )),
            _ => Err(self.refused(&format!("creating bucket {bucket}"), &r)),
        }
    }

    /// Tags the bucket with `mark`, keeping its other `tags`.
    fn mark_bucket(&self, bucket: &str, tags: &[Tag], mark: &str) -> Result<(), PluginError> {
        let r = self.s3(
            "PUT",
            &format!("/{bucket}"),
            &[("tagging", "")],
            tagging_body(tags, mark),
        )?;
        if !(200..300).contains(&r.status) {
            return Err(self.refused(&format!("tagging bucket {bucket}"), &r));
        }
        Ok(())
    }

    /// The keys of up to [`PAGE`] objects of the bucket; `None` when it is gone.
    fn objects(&self, bucket: &str) -> Result<Option<Vec<String>>, PluginError> {
        let max = PAGE.to_string();
        let r = self.s3(
            "GET",
            &format!("/{bucket}"),
            &[("list-type", "2"), ("max-keys", &max)],
            Vec::new(),
        )?;
        match r.status {
            200 => Ok(Some(object_keys(&String::from_utf8_lossy(&r.body)))),
            404 => Ok(None),
            _ => Err(self.refused(&format!("listing bucket {bucket}"), &r)),
        }
    }

    /// Deletes what S3 has at `path` (`what`, for people); what is gone is deleted.
    fn delete(&self, path: &str, what: &str) -> Result<(), PluginError> {
        let r = self.s3("DELETE", path, &[], Vec::new())?;
        if r.status >= 300 && r.status != 404 {
            return Err(self.refused(&format!("deleting {what}"), &r));
        }
        Ok(())
    }

    /// The user's tags; `None` when there is no such user.
    fn user_tags(&self, user: &str) -> Result<Option<Vec<Tag>>, PluginError> {
        match self.iam("ListUserTags", &[("UserName", user)])? {
            Ok(body) => Ok(Some(tags(&body, "member"))),
            Err(f) if f.is("NoSuchEntity") => Ok(None),
            Err(f) => Err(self.iam_refused(&format!("reading the tags of IAM user {user}"), f)),
        }
    }

    /// The ids of the user's access keys.
    fn access_keys(&self, user: &str) -> Result<Vec<String>, PluginError> {
        match self.iam("ListAccessKeys", &[("UserName", user)])? {
            Ok(body) => Ok(access_key_ids(&body)),
            Err(f) if f.is("NoSuchEntity") => Ok(Vec::new()),
            Err(f) => Err(self.iam_refused(&format!("listing the keys of IAM user {user}"), f)),
        }
    }

    /// Makes sure the bucket's user exists and is this resource's, with the bucket's policy
    /// and the key the state keeps (or a new one); returns the key.
    fn user(&self, request: &Request, bucket: &str, mark: &str) -> Result<Key, PluginError> {
        let user = bucket;
        let made = self.iam(
            "CreateUser",
            &[
                ("UserName", user),
                ("Path", USER_PATH),
                ("Tags.member.1.Key", OWNER_TAG),
                ("Tags.member.1.Value", mark),
            ],
        )?;
        match made {
            Ok(_) => {}
            Err(f) if f.is("EntityAlreadyExists") => {
                let Some(tags) = self.user_tags(user)? else {
                    return Err(PluginError::unavailable(format!(
                        "IAM user {user} was deleted while it was being checked; trying again"
                    )));
                };
                if owner_of(&tags) != Some(mark) {
                    return Err(not_ours(
                        request,
                        "IAM user",
                        user,
                        "it does not carry the resource's mark",
                    ));
                }
            }
            Err(f) => return Err(self.iam_refused(&format!("creating IAM user {user}"), f)),
        }
        self.iam_ok(
            "PutUserPolicy",
            &[
                ("UserName", user),
                ("PolicyName", POLICY_NAME),
                ("PolicyDocument", &policy(bucket).to_string()),
            ],
            &format!("setting the policy of IAM user {user}"),
        )?;
        let listed = self.access_keys(user)?;
        let kept = match (
            state_str(request, "access_key_id"),
            state_str(request, "secret_access_key"),
        ) {
            (Some(id), Some(secret)) => Some(Key {
                id: id.into(),
                secret: secret.into(),
            }),
            _ => None,
        };
        if let Some(key) = kept
            && listed.contains(&key.id)
        {
            return Ok(key);
        }
        // Keys the state does not know were left by an interrupted call: no one has them.
        for id in &listed {
            self.iam_delete(
                "DeleteAccessKey",
                &[("UserName", user), ("AccessKeyId", id)],
                &format!("deleting an old key of IAM user {user}"),
            )?;
        }
        let body = self.iam_ok(
            "CreateAccessKey",
            &[("UserName", user)],
            &format!("creating a key for IAM user {user}"),
        )?;
        created_key(&body).ok_or_else(|| {
            PluginError::other(format!(
                "the IAM API at {} answered CreateAccessKey without a key id and secret",
                self.settings.iam.url
            ))
        })
    }

    /// Deletes the bucket's user with its keys and its policy, when it is this resource's.
    fn delete_user(&self, request: &Request, bucket: &str, mark: &str) -> Result<(), PluginError> {
        let user = bucket;
        let Some(tags) = self.user_tags(user)? else {
            return Ok(());
        };
        if owner_of(&tags) != Some(mark) {
            log::warn(&format!(
                "IAM user {user} is not resource {}'s (it does not carry its mark); it is left \
                 alone",
                names::describe(request)
            ));
            return Ok(());
        }
        for id in self.access_keys(user)? {
            self.iam_delete(
                "DeleteAccessKey",
                &[("UserName", user), ("AccessKeyId", &id)],
                &format!("deleting a key of IAM user {user}"),
            )?;
        }
        self.iam_delete(
            "DeleteUserPolicy",
            &[("UserName", user), ("PolicyName", POLICY_NAME)],
            &format!("deleting the policy of IAM user {user}"),
        )?;
        self.iam_delete(
            "DeleteUser",
            &[("UserName", user)],
            &format!("deleting IAM user {user}"),
        )
    }
}

/// Provisions: the bucket (created, or found to be this resource's, and marked), then its
/// user and key unless the installation's keys are shared.
fn provision(request: &Request, transport: Transport) -> Result<Step, PluginError> {
    let store = Store::new(request, transport)?;
    let bucket = bucket_name(request)?;
    let mark = names::owner(request);
    match store.find_bucket(&bucket)? {
        Found::Missing => return store.create_bucket(request, &bucket),
        Found::Exists(tags) => match claim(&tags, &mark, unmarked_is_ours(request, &bucket)) {
            Claim::Marked => {}
            Claim::Unmarked => store.mark_bucket(&bucket, &tags, &mark)?,
            Claim::Foreign(why) => return Err(not_ours(request, "bucket", &bucket, why)),
        },
    }
    let s = &store.settings;
    let (key, state) = if s.share {
        (
            s.admin.clone(),
            next_state(request, json!({ "bucket": bucket })),
        )
    } else {
        let key = store.user(request, &bucket, &mark)?;
        let state = next_state(
            request,
            json!({
                "bucket": bucket,
                "user": bucket,
                "access_key_id": key.id,
                "secret_access_key": key.secret,
            }),
        );
        (key, state)
    };
    Ok(Step::Done(Outputs {
        outputs: Values {
            values: json!({ "bucket": bucket, "region": s.region, "endpoint": s.endpoint.url }),
            secrets: json!({ "access_key_id": key.id, "secret_access_key": key.secret }),
        },
        state,
        objects: Vec::new(),
    }))
}

/// Deprovisions: refuses a bucket of ours that holds objects unless forced, before changing
/// anything; then deletes the user (when it is this resource's), then the bucket (when it
/// is), emptying it over several calls when it holds many objects.
fn deprovision(request: &Request, transport: Transport) -> Result<Step, PluginError> {
    let store = Store::new(request, transport)?;
    let bucket = bucket_name(request)?;
    let mark = names::owner(request);
    let ours = match store.find_bucket(&bucket)? {
        Found::Missing => false,
        Found::Exists(tags) => match claim(&tags, &mark, state_names(request, &bucket)) {
            Claim::Marked | Claim::Unmarked => true,
            Claim::Foreign(why) => {
                log::warn(&format!(
                    "bucket {bucket} is not resource {}'s ({why}); it is left alone",
                    names::describe(request)
                ));
                false
            }
        },
    };
    let objects = if ours { store.objects(&bucket)? } else { None };
    if let Some(objects) = &objects
        && !objects.is_empty()
        && !store.settings.force
    {
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
    // With shared keys no user is made (the store may have no IAM API to ask), unless the
    // state shows one was, before the definition changed.
    if !store.settings.share || state_str(request, "user").is_some() {
        store.delete_user(request, &bucket, &mark)?;
    }
    let Some(objects) = objects else {
        return Ok(Step::Done(Outputs::default()));
    };
    for key in &objects {
        store.delete(&format!("/{bucket}/{key}"), &format!("object {key:?}"))?;
    }
    if objects.len() == PAGE {
        return Ok(Step::InProgress {
            state: next_state(request, json!({ "bucket": bucket })),
            message: format!("emptying bucket {bucket}"),
            retry_after: Duration::from_millis(10),
        });
    }
    store.delete(&format!("/{bucket}"), &format!("bucket {bucket}"))?;
    Ok(Step::Done(Outputs::default()))
}

impl Driver for S3 {
    fn describe() -> Description {
        Description {
            info: PluginInfo::new(
                "s3",
                env!("CARGO_PKG_VERSION"),
                "A bucket on an S3-compatible store (SigV4, path-style), with a user of its own",
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
        let issues = config_issues(&config.values);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    fn provision(request: Request) -> Result<Step, PluginError> {
        provision(&request, &http::send)
    }

    fn deprovision(request: Request) -> Result<Step, PluginError> {
        deprovision(&request, &http::send)
    }
}

wharf_sdk::export_driver!(S3);

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    /// A bucket of [`Fake`].
    #[derive(Debug, Clone, Default, PartialEq)]
    struct FakeBucket {
        /// `None`: no tag set (GetBucketTagging answers `NoSuchTagSet`).
        tags: Option<Vec<Tag>>,
        objects: Vec<String>,
    }

    /// A user of [`Fake`].
    #[derive(Debug, Clone, Default, PartialEq)]
    struct FakeUser {
        path: String,
        tags: Vec<Tag>,
        policy: Option<String>,
        keys: Vec<String>,
    }

    /// An S3-compatible store with an IAM API, in memory, answering in the shapes moto 5.1
    /// answers in (checked by hand against `moto_server`), and recording what it was asked.
    #[derive(Default)]
    struct Fake {
        buckets: RefCell<BTreeMap<String, FakeBucket>>,
        users: RefCell<BTreeMap<String, FakeUser>>,
        /// Buckets of another account: their tags are refused, creating them conflicts.
        foreign: Vec<String>,
        /// Answers IAM calls as a store without an IAM API does.
        no_iam: bool,
        /// `GET /bucket?tagging=`, `IAM CreateUser`...
        calls: RefCell<Vec<String>>,
        keys_made: Cell<u32>,
    }

    fn reply(status: u16, body: &str) -> http::Response {
        http::Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn s3_answer(status: u16, code: &str) -> http::Response {
        reply(
            status,
            &format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n    <Code>{code}</Code>\n    \
                 <Message><![CDATA[{code} & more]]></Message>\n</Error>"
            ),
        )
    }

    fn iam_answer(status: u16, code: &str) -> http::Response {
        reply(
            status,
            &format!(
                "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
                 <Type>Sender</Type><Code>{code}</Code><Message>said {code}</Message>\
                 <message>said {code}</message></Error><RequestId>r</RequestId></ErrorResponse>"
            ),
        )
    }

    /// Percent-decoding, as a server reads a path or a form.
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    impl Fake {
        fn send(&self, r: &http::Request) -> Result<http::Response, HttpError> {
            let header = |name: &str| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let target = &r.url["http://127.0.0.1:9000".len()..];
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            // Routed by the service in the credential scope, as moto does.
            if header("authorization").contains("/iam/aws4_request") {
                let params: BTreeMap<String, String> = String::from_utf8_lossy(&r.body)
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (decode(k), decode(v)))
                    .collect();
                let action = params["Action"].clone();
                self.calls.borrow_mut().push(format!("IAM {action}"));
                if self.no_iam {
                    return Ok(s3_answer(405, "MethodNotAllowed"));
                }
                return Ok(self.iam(&action, &params));
            }
            self.calls
                .borrow_mut()
                .push(format!("{} {target}", r.method));
            if !r.body.is_empty() {
                assert_eq!(header("content-md5"), content_md5(&r.body), "{target}");
            }
            Ok(self.s3(&r.method, &decode(path), query, &r.body))
        }

        fn s3(&self, method: &str, path: &str, query: &str, body: &[u8]) -> http::Response {
            let path = &path[1..];
            let (bucket, object) = match path.split_once('/') {
                Some((b, o)) => (b, Some(o)),
                None => (path, None),
            };
            if self.foreign.iter().any(|f| f == bucket) {
                return match (method, query) {
                    ("PUT", "") => s3_answer(409, "BucketAlreadyExists"),
                    _ => s3_answer(403, "AccessDenied"),
                };
            }
            let mut buckets = self.buckets.borrow_mut();
            match (method, object, query) {
                ("PUT", None, "") => {
                    buckets.entry(bucket.into()).or_default();
                    reply(200, "")
                }
                ("GET", None, "tagging=") => match buckets.get(bucket) {
                    None => s3_answer(404, "NoSuchBucket"),
                    Some(FakeBucket { tags: None, .. }) => s3_answer(404, "NoSuchTagSet"),
                    Some(FakeBucket {
                        tags: Some(tags), ..
                    }) => {
                        let tags: String = tags
                            .iter()
                            .map(|t| {
                                format!(
                                    "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
                                    escape(&t.key),
                                    escape(&t.value)
                                )
                            })
                            .collect();
                        reply(
                            200,
                            &format!(
                                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Tagging xmlns=\"http://\
                                 s3.amazonaws.com/doc/2006-03-01/\"><TagSet>{tags}</TagSet></Tagging>"
                            ),
                        )
                    }
                },
                ("PUT", None, "tagging=") => match buckets.get_mut(bucket) {
                    None => s3_answer(404, "NoSuchBucket"),
                    Some(b) => {
                        b.tags = Some(tags(&String::from_utf8_lossy(body), "Tag"));
                        reply(204, "")
                    }
                },
                ("GET", None, "list-type=2&max-keys=1000") => match buckets.get(bucket) {
                    None => s3_answer(404, "NoSuchBucket"),
                    Some(b) => {
                        let contents: String = b
                            .objects
                            .iter()
                            .map(|o| {
                                format!(
                                    "<Contents><Key>{}</Key><Size>1</Size></Contents>",
                                    escape(o)
                                )
                            })
                            .collect();
                        reply(
                            200,
                            &format!(
                                "<ListBucketResult><Name>{bucket}</Name>{contents}</ListBucketResult>"
                            ),
                        )
                    }
                },
                ("DELETE", Some(object), "") => {
                    if let Some(b) = buckets.get_mut(bucket) {
                        b.objects.retain(|o| o != object);
                    }
                    reply(204, "")
                }
                ("DELETE", None, "") => match buckets.get(bucket) {
                    None => s3_answer(404, "NoSuchBucket"),
                    Some(b) if !b.objects.is_empty() => s3_answer(409, "BucketNotEmpty"),
                    Some(_) => {
                        buckets.remove(bucket);
                        reply(204, "")
                    }
                },
                _ => panic!("unexpected S3 request {method} /{path}?{query}"),
            }
        }

        fn iam(&self, action: &str, p: &BTreeMap<String, String>) -> http::Response {
            let ok = |inner: &str| {
                reply(
                    200,
                    &format!(
                        "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
                         {inner}<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>\
                         </{action}Response>"
                    ),
                )
            };
            let name = p["UserName"].clone();
            let mut users = self.users.borrow_mut();
            if action == "CreateUser" {
                if users.contains_key(&name) {
                    return iam_answer(409, "EntityAlreadyExists");
                }
                let tags = match p.get("Tags.member.1.Key") {
                    Some(key) => vec![Tag {
                        key: key.clone(),
                        value: p["Tags.member.1.Value"].clone(),
                    }],
                    None => Vec::new(),
                };
                users.insert(
                    name.clone(),
                    FakeUser {
                        path: p["Path"].clone(),
                        tags,
                        ..FakeUser::default()
                    },
                );
                return ok(&format!(
                    "<CreateUserResult><User><Path>/wharf/</Path><UserName>{name}</UserName>\
                     </User></CreateUserResult>"
                ));
            }
            let Some(user) = users.get_mut(&name) else {
                return iam_answer(404, "NoSuchEntity");
            };
            match action {
                "ListUserTags" if user.tags.is_empty() => ok(
                    "<ListUserTagsResult><Tags/><IsTruncated>false</IsTruncated></ListUserTagsResult>",
                ),
                "ListUserTags" => {
                    let members: String = user
                        .tags
                        .iter()
                        .map(|t| {
                            format!(
                                "<member><Key>{}</Key><Value>{}</Value></member>",
                                t.key, t.value
                            )
                        })
                        .collect();
                    ok(&format!(
                        "<ListUserTagsResult><Tags>{members}</Tags><IsTruncated>false</IsTruncated>\
                         </ListUserTagsResult>"
                    ))
                }
                "PutUserPolicy" => {
                    assert_eq!(p["PolicyName"], POLICY_NAME);
                    user.policy = Some(p["PolicyDocument"].clone());
                    ok("")
                }
                "DeleteUserPolicy" if user.policy.is_none() => iam_answer(404, "NoSuchEntity"),
                "DeleteUserPolicy" => {
                    user.policy = None;
                    ok("")
                }
                "ListAccessKeys" => {
                    let members: String = user
                        .keys
                        .iter()
                        .map(|k| {
                            format!(
                                "<member><UserName>{name}</UserName><AccessKeyId>{k}</AccessKeyId>\
                                 <Status>Active</Status></member>"
                            )
                        })
                        .collect();
                    ok(&format!(
                        "<ListAccessKeysResult><AccessKeyMetadata>{members}</AccessKeyMetadata>\
                         </ListAccessKeysResult>"
                    ))
                }
                "CreateAccessKey" => {
                    let n = self.keys_made.get() + 1;
                    self.keys_made.set(n);
                    user.keys.push(format!("AKIAFAKE{n}"));
                    ok(&format!(
                        "<CreateAccessKeyResult><AccessKey><UserName>{name}</UserName><AccessKeyId>\
                         AKIAFAKE{n}</AccessKeyId><Status>Active</Status><SecretAccessKey>s/{n}+k\
                         </SecretAccessKey></AccessKey></CreateAccessKeyResult>"
                    ))
                }
                "DeleteAccessKey" => {
                    let id = &p["AccessKeyId"];
                    if !user.keys.contains(id) {
                        return iam_answer(404, "NoSuchEntity");
                    }
                    user.keys.retain(|k| k != id);
                    ok("")
                }
                "DeleteUser" => {
                    users.remove(&name);
                    ok("")
                }
                _ => panic!("unexpected IAM call {action}"),
            }
        }

        /// The calls made since the last time this was asked.
        fn take_calls(&self) -> Vec<String> {
            std::mem::take(&mut self.calls.borrow_mut())
        }

        /// Provisions until done, as the host does: each call gets the state the previous one
        /// returned.
        fn provision(&self, request: &mut Request) -> Result<Outputs, PluginError> {
            for _ in 0..5 {
                match provision(request, &|r: &http::Request| self.send(r))? {
                    Step::Done(outputs) => {
                        request.state = Some(outputs.state.clone());
                        return Ok(outputs);
                    }
                    Step::InProgress { state, .. } => request.state = Some(state),
                }
            }
            panic!("not done after 5 calls")
        }

        /// Deprovisions until done.
        fn deprovision(&self, request: &mut Request) -> Result<(), PluginError> {
            for _ in 0..5 {
                match deprovision(request, &|r: &http::Request| self.send(r))? {
                    Step::Done(_) => return Ok(()),
                    Step::InProgress { state, .. } => request.state = Some(state),
                }
            }
            panic!("not done after 5 calls")
        }
    }

    /// A request of `app`'s resource `s3-1` in `development`, with the installation's keys
    /// and `values` over the endpoint.
    fn request(app: &str, values: Value) -> Request {
        let mut r = Request::test("s3");
        r.context.app = app.into();
        r.config.values = json!({ "endpoint": "http://127.0.0.1:9000" });
        if let Value::Object(values) = values {
            r.config.values.as_object_mut().unwrap().extend(values);
        }
        r.config.secrets = json!({ "access_key_id": "admin", "secret_access_key": "admin/secret" });
        r
    }

    fn owned(mark: &str, others: &[(&str, &str)]) -> Vec<Tag> {
        others
            .iter()
            .map(|(k, v)| Tag {
                key: k.to_string(),
                value: v.to_string(),
            })
            .chain([Tag {
                key: OWNER_TAG.into(),
                value: mark.into(),
            }])
            .collect()
    }

    #[test]
    fn a_bucket_is_created_then_marked_and_gets_a_user_of_its_own() {
        let fake = Fake::default();
        let mut r = request("shop", json!({}));
        let bucket = names::generated(&r, &NAMES);
        let mark = names::owner(&r);
        let first = provision(&r, &|q: &http::Request| fake.send(q)).unwrap();
        assert_eq!(
            first,
            Step::InProgress {
                state: json!({ "bucket": bucket, "created": true }),
                message: "bucket created; marking it".into(),
                retry_after: Duration::ZERO,
            },
            "the host keeps the state before the bucket is marked"
        );
        assert_eq!(fake.buckets.borrow()[&bucket].tags, None);

        let outputs = fake.provision(&mut r).unwrap();
        assert_eq!(fake.buckets.borrow()[&bucket].tags, Some(owned(&mark, &[])));
        let user = fake.users.borrow()[&bucket].clone();
        assert_eq!(user.path, "/wharf/");
        assert_eq!(owner_of(&user.tags), Some(mark.as_str()));
        assert_eq!(user.policy, Some(policy(&bucket).to_string()));
        assert_eq!(
            outputs.outputs,
            Values {
                values: json!({
                    "bucket": bucket, "region": "us-east-1", "endpoint": "http://127.0.0.1:9000"
                }),
                secrets: json!({ "access_key_id": "AKIAFAKE1", "secret_access_key": "s/1+k" }),
            },
            "the workload gets the user's key, not the installation's"
        );
        assert_eq!(user.keys, ["AKIAFAKE1"]);
        assert_eq!(
            outputs.state,
            json!({
                "bucket": bucket, "user": bucket,
                "access_key_id": "AKIAFAKE1", "secret_access_key": "s/1+k"
            })
        );

        let again = fake.provision(&mut r).unwrap();
        assert_eq!(
            again.outputs, outputs.outputs,
            "a redeploy hands out the same key"
        );
        assert_eq!(fake.users.borrow()[&bucket].keys, ["AKIAFAKE1"]);
        assert_eq!(fake.buckets.borrow().len(), 1);
    }

    #[test]
    fn a_developer_cannot_take_over_another_apps_bucket_or_user() {
        let fake = Fake::default();
        let mut victim = request("victim", json!({}));
        let bucket = fake.provision(&mut victim).unwrap().outputs.values["bucket"]
            .as_str()
            .unwrap()
            .to_string();
        fake.buckets.borrow_mut().get_mut(&bucket).unwrap().objects = vec!["data".into()];
        let buckets = fake.buckets.borrow().clone();
        let users = fake.users.borrow().clone();
        fake.take_calls();

        let mut evil = request("evil", json!({ "force": true }));
        evil.params = json!({ "name": bucket });
        let e = provision(&evil, &|q: &http::Request| fake.send(q)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            e.message,
            format!(
                "bucket {bucket} exists and is not resource evil/development/s3.default#s3-1's \
                 (it carries another resource's mark); Wharf does not touch it: choose another \
                 name"
            )
        );
        assert_eq!(
            deprovision(&evil, &|q: &http::Request| fake.send(q)).unwrap(),
            Step::Done(Outputs::default()),
            "deprovisioning what is not ours leaves it alone"
        );
        assert_eq!(*fake.buckets.borrow(), buckets);
        assert_eq!(*fake.users.borrow(), users);
        let calls = fake.take_calls();
        assert!(
            calls
                .iter()
                .all(|c| c.starts_with("GET ") || c == "IAM ListUserTags"),
            "only reads: {calls:?}"
        );
    }

    #[test]
    fn an_unmarked_bucket_is_adopted_only_when_proven_ours() {
        let fake = Fake::default();
        let untagged = FakeBucket::default();
        let tagged = FakeBucket {
            tags: Some(vec![Tag {
                key: "team".into(),
                value: "web".into(),
            }]),
            objects: Vec::new(),
        };
        let mut r = request("shop", json!({}));
        let generated = names::generated(&r, &NAMES);
        let mark = names::owner(&r);
        for (name, bucket) in [
            ("photos", &untagged),
            ("media", &tagged),
            (generated.as_str(), &untagged),
        ] {
            fake.buckets
                .borrow_mut()
                .insert(name.into(), bucket.clone());
        }

        for chosen in ["photos", "media"] {
            let mut r = request("shop", json!({}));
            r.params = json!({ "name": chosen });
            let e = fake.provision(&mut r).unwrap_err();
            assert_eq!(e.kind, ErrorKind::PermissionDenied);
            assert!(
                e.message.contains("it carries no Wharf mark"),
                "{}",
                e.message
            );
        }
        assert_eq!(fake.buckets.borrow()["photos"], untagged, "left as it was");

        // Made by this resource before marks existed: its state says so.
        let mut made_before = request("shop", json!({}));
        made_before.state = Some(json!({ "bucket": "media" }));
        fake.provision(&mut made_before).unwrap();
        assert_eq!(
            fake.buckets.borrow()["media"].tags,
            Some(owned(&mark, &[("team", "web")])),
            "marked, its other tags kept"
        );

        // Created with the generated name before a crash lost the state.
        fake.provision(&mut r).unwrap();
        assert_eq!(
            fake.buckets.borrow()[&generated].tags,
            Some(owned(&mark, &[]))
        );
    }

    #[test]
    fn another_accounts_bucket_is_refused() {
        let fake = Fake {
            foreign: vec!["taken".into()],
            ..Fake::default()
        };
        let mut r = request("shop", json!({}));
        r.params = json!({ "name": "taken" });
        let e = fake.provision(&mut r).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert!(
            e.message.contains("another account's bucket"),
            "{}",
            e.message
        );
        assert_eq!(fake.take_calls(), ["GET /taken?tagging="]);
    }

    #[test]
    fn a_user_that_is_not_this_resources_is_not_used() {
        let r = request("shop", json!({}));
        let bucket = names::generated(&r, &NAMES);
        for tags in [
            vec![],
            vec![Tag {
                key: OWNER_TAG.into(),
                value: "wharf:another".into(),
            }],
        ] {
            let fake = Fake::default();
            let theirs = FakeUser {
                path: "/".into(),
                tags,
                policy: None,
                keys: vec!["AKIATHEIRS".into()],
            };
            fake.users
                .borrow_mut()
                .insert(bucket.clone(), theirs.clone());
            let e = fake.provision(&mut r.clone()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::PermissionDenied);
            assert!(
                e.message
                    .starts_with(&format!("IAM user {bucket} exists and is not resource")),
                "{}",
                e.message
            );
            assert_eq!(fake.users.borrow()[&bucket], theirs, "no policy, no key");
        }
    }

    #[test]
    fn a_lost_key_is_replaced_and_keys_no_one_knows_are_deleted() {
        let fake = Fake::default();
        let mut r = request("shop", json!({}));
        let bucket = names::generated(&r, &NAMES);
        fake.provision(&mut r).unwrap();
        fake.users.borrow_mut().get_mut(&bucket).unwrap().keys = vec!["AKIAORPHAN".into()];
        let outputs = fake.provision(&mut r).unwrap();
        assert_eq!(outputs.outputs.secrets["access_key_id"], "AKIAFAKE2");
        assert_eq!(outputs.state["access_key_id"], "AKIAFAKE2");
        assert_eq!(fake.users.borrow()[&bucket].keys, ["AKIAFAKE2"]);
    }

    #[test]
    fn deprovisioning_deletes_the_user_then_the_bucket() {
        let fake = Fake::default();
        let mut r = request("shop", json!({}));
        let bucket = names::generated(&r, &NAMES);
        fake.provision(&mut r).unwrap();
        fake.take_calls();
        fake.deprovision(&mut r).unwrap();
        assert_eq!(
            fake.take_calls(),
            [
                format!("GET /{bucket}?tagging="),
                format!("GET /{bucket}?list-type=2&max-keys=1000"),
                "IAM ListUserTags".into(),
                "IAM ListAccessKeys".into(),
                "IAM DeleteAccessKey".into(),
                "IAM DeleteUserPolicy".into(),
                "IAM DeleteUser".into(),
                format!("DELETE /{bucket}"),
            ]
        );
        assert!(fake.buckets.borrow().is_empty() && fake.users.borrow().is_empty());
        fake.deprovision(&mut r).unwrap();
    }

    #[test]
    fn a_bucket_holding_objects_is_kept_unless_forced() {
        let fake = Fake::default();
        let mut r = request("shop", json!({}));
        let bucket = names::generated(&r, &NAMES);
        fake.provision(&mut r).unwrap();
        fake.buckets.borrow_mut().get_mut(&bucket).unwrap().objects =
            vec!["a&b c".into(), "d".into()];
        let users = fake.users.borrow().clone();
        let e = fake.deprovision(&mut r).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(
            e.message.starts_with(&format!(
                "bucket {bucket} is not empty (2 object(s), like \"a&b c\")"
            )),
            "{}",
            e.message
        );
        assert_eq!(
            *fake.users.borrow(),
            users,
            "refused before changing anything"
        );

        r.config.values["force"] = json!(true);
        fake.take_calls();
        fake.deprovision(&mut r).unwrap();
        assert!(
            fake.take_calls()
                .contains(&format!("DELETE /{bucket}/a%26b%20c"))
        );
        assert!(fake.buckets.borrow().is_empty() && fake.users.borrow().is_empty());
    }

    #[test]
    fn without_an_iam_api_the_error_says_to_share_the_installation_keys() {
        let fake = Fake {
            no_iam: true,
            ..Fake::default()
        };
        let mut r = request("shop", json!({}));
        let e = fake.provision(&mut r).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other);
        assert!(
            e.message.contains(
                "set share_installation_credentials: true in the resource definition to hand \
                 out the installation's keys instead"
            ),
            "{}",
            e.message
        );

        r.config.values["share_installation_credentials"] = json!(true);
        fake.take_calls();
        let outputs = fake.provision(&mut r).unwrap();
        assert_eq!(
            outputs.outputs.secrets,
            json!({ "access_key_id": "admin", "secret_access_key": "admin/secret" })
        );
        fake.deprovision(&mut r).unwrap();
        assert!(fake.buckets.borrow().is_empty());
        assert!(
            fake.take_calls().iter().all(|c| !c.starts_with("IAM")),
            "no user is made or looked for"
        );
    }

    #[test]
    fn bucket_names_come_from_the_state_the_workload_or_the_resource() {
        let mut r = request("shop", json!({}));
        r.context.resource_id = "web.Files".into();
        let generated = bucket_name(&r).unwrap();
        assert!(
            generated.starts_with("shop-development-web-files-"),
            "{generated}"
        );
        assert_eq!(generated.len(), "shop-development-web-files-".len() + 16);
        for ok in ["my-bucket-1", "abc", &"a".repeat(63)] {
            r.params = json!({ "name": ok });
            assert_eq!(bucket_name(&r).unwrap(), ok);
        }
        for bad in ["ab", &"a".repeat(64), "-ab", "ab-", "Bad_Name", "a.b"] {
            r.params = json!({ "name": bad });
            let e = bucket_name(&r).unwrap_err();
            assert!(
                e.message.contains("3 to 63 lowercase letters"),
                "{bad}: {}",
                e.message
            );
        }
        r.config.values["name_prefix"] = json!("shop-");
        r.params = json!({ "name": "victim-data" });
        assert!(
            bucket_name(&r)
                .unwrap_err()
                .message
                .contains("must start with \"shop-\"")
        );
        r.state = Some(json!({ "bucket": "made-before" }));
        assert_eq!(bucket_name(&r).unwrap(), "made-before", "the state's wins");
    }

    #[test]
    fn claims_follow_the_marks() {
        let mark = "wharf:0123";
        let theirs = owned("wharf:4567", &[]);
        assert_eq!(claim(&owned(mark, &[]), mark, false), Claim::Marked);
        assert!(matches!(claim(&theirs, mark, true), Claim::Foreign(_)));
        assert!(matches!(claim(&[], mark, false), Claim::Foreign(_)));
        assert_eq!(claim(&[], mark, true), Claim::Unmarked);

        let mut r = request("shop", json!({}));
        let generated = names::generated(&r, &NAMES);
        assert!(unmarked_is_ours(&r, &generated));
        assert!(
            !state_names(&r, &generated),
            "deprovisioning wants the state"
        );
        assert!(!unmarked_is_ours(&r, "photos"));
        r.state = Some(json!({ "bucket": "photos" }));
        assert!(unmarked_is_ours(&r, "photos") && state_names(&r, "photos"));
    }

    #[test]
    fn xml_answers_are_read_with_their_entities_and_cdata() {
        // Verbatim from moto.
        let listing = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.\
            amazonaws.com/doc/2006-03-01/\"><Name>bkt-one</Name><Prefix></Prefix><KeyCount>1\
            </KeyCount><Contents><Key>a&amp;b c</Key><ETag>&#34;d41d8&#34;</ETag><Size>0</Size>\
            </Contents></ListBucketResult>";
        assert_eq!(object_keys(listing), ["a&b c"]);
        assert_eq!(element(listing, "ETag").as_deref(), Some("\"d41d8\""));
        assert_eq!(element(listing, "Prefix").as_deref(), Some(""));
        let missing = "<Error>\n    <Code>NoSuchBucket</Code>\n    <Message><![CDATA[The specified \
            bucket does not exist]]></Message>\n</Error>";
        assert_eq!(
            element(missing, "Message").as_deref(),
            Some("The specified bucket does not exist")
        );
        let tagging = "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>\
            wharf-owner</Key><Value>wharf:abc</Value></Tag><Tag><Key>a&lt;b</Key><Value/></Tag>\
            </TagSet></Tagging>";
        assert_eq!(
            tags(tagging, "Tag"),
            [
                Tag {
                    key: "wharf-owner".into(),
                    value: "wharf:abc".into()
                },
                Tag {
                    key: "a<b".into(),
                    value: String::new()
                },
            ]
        );
        let created = "<CreateAccessKeyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
            <CreateAccessKeyResult><AccessKey><UserName>bkt-one</UserName><AccessKeyId>AKIARZPUZDIK\
            </AccessKeyId><Status>Active</Status><SecretAccessKey>v1Aaf0WY/8TD+92</SecretAccessKey>\
            </AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>";
        assert_eq!(
            created_key(created),
            Some(Key {
                id: "AKIARZPUZDIK".into(),
                secret: "v1Aaf0WY/8TD+92".into()
            })
        );
        assert_eq!(
            created_key("<AccessKey><AccessKeyId>A</AccessKeyId></AccessKey>"),
            None
        );
        let listed = "<ListAccessKeysResult><AccessKeyMetadata><member><UserName>u</UserName>\
            <AccessKeyId>AKIA1</AccessKeyId></member><member><AccessKeyId>AKIA2</AccessKeyId>\
            </member></AccessKeyMetadata></ListAccessKeysResult>";
        assert_eq!(access_key_ids(listed), ["AKIA1", "AKIA2"]);
        assert_eq!(
            tags("<Tags/><IsTruncated>false</IsTruncated>", "member"),
            []
        );
        assert_eq!(unescape("a &b; &#x41;&#66; &amp"), "a &b; AB &amp");
    }

    #[test]
    fn the_tag_set_keeps_other_tags_and_replaces_the_mark() {
        let tags_before = owned("wharf:old", &[("team", "r&d")]);
        let body = tagging_body(&tags_before, "wharf:new");
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            "<Tagging><TagSet><Tag><Key>team</Key><Value>r&amp;d</Value></Tag><Tag><Key>wharf-owner\
             </Key><Value>wharf:new</Value></Tag></TagSet></Tagging>"
        );
        assert_eq!(
            tags(&String::from_utf8_lossy(&body), "Tag"),
            owned("wharf:new", &[("team", "r&d")])
        );
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(
            content_md5(b"The quick brown fox jumps over the lazy dog"),
            "nhB9nTcrtoJr2B01QqQZ1g=="
        );
        assert_eq!(create_body("us-east-1"), b"");
        assert_eq!(
            create_body("eu-west-1"),
            b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint>\
              </CreateBucketConfiguration>"
        );
    }

    #[test]
    fn the_users_policy_reaches_its_bucket_and_nothing_else() {
        assert_eq!(
            policy("shop-files"),
            json!({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Bucket",
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                        "Resource": "arn:aws:s3:::shop-files",
                    },
                    {
                        "Sid": "Objects",
                        "Effect": "Allow",
                        "Action": [
                            "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                            "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
                        ],
                        "Resource": "arn:aws:s3:::shop-files/*",
                    },
                ],
            })
        );
    }

    #[test]
    fn an_iam_call_is_a_form_signed_for_iam_in_us_east_1() {
        let unreachable = |_: &http::Request| -> Result<http::Response, HttpError> {
            Err(HttpError::Unsupported)
        };
        let r = request(
            "shop",
            json!({ "region": "eu-west-1", "iam_endpoint": "https://iam.example.test/" }),
        );
        let store = Store::new(&r, &unreachable).unwrap();
        let call = store.iam_request(
            1_369_353_600,
            "CreateUser",
            &[
                ("UserName", "b"),
                ("Path", USER_PATH),
                ("Tags.member.1.Value", "wharf:ab"),
            ],
        );
        assert_eq!(
            (call.method.as_str(), call.url.as_str()),
            ("POST", "https://iam.example.test/")
        );
        assert_eq!(
            String::from_utf8(call.body).unwrap(),
            "Action=CreateUser&Version=2010-05-08&UserName=b&Path=%2Fwharf%2F&\
             Tags.member.1.Value=wharf%3Aab"
        );
        let auth = &call
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=admin/20130524/us-east-1/iam/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{auth}"
        );

        let call = Call {
            method: "PUT",
            path: "/b".into(),
            query: &[("tagging", "")],
            headers: Vec::new(),
            body: b"x".to_vec(),
        };
        let object = store.signed(Api::S3, 1_369_353_600, call);
        assert_eq!(object.url, "http://127.0.0.1:9000/b?tagging=");
        let auth = &object
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.contains("/20130524/eu-west-1/s3/aws4_request"),
            "{auth}"
        );
        assert_eq!(
            provision(&r, &unreachable).unwrap_err().message,
            "outbound HTTP works only inside the Wharf sandbox"
        );
    }

    #[test]
    fn store_answers_map_to_what_can_be_done() {
        assert_eq!(kind(403, "AccessDenied"), ErrorKind::PermissionDenied);
        assert_eq!(kind(503, "SlowDown"), ErrorKind::RateLimited);
        assert_eq!(kind(400, "Throttling"), ErrorKind::RateLimited);
        assert_eq!(kind(503, "ServiceUnavailable"), ErrorKind::Unavailable);
        assert_eq!(kind(501, "NotImplemented"), ErrorKind::Other);
        assert_eq!(kind(409, "BucketNotEmpty"), ErrorKind::Conflict);
        assert_eq!(kind(400, "InvalidBucketName"), ErrorKind::Other);

        let unreachable = |_: &http::Request| -> Result<http::Response, HttpError> {
            Err(HttpError::Unsupported)
        };
        let r = request("shop", json!({}));
        let store = Store::new(&r, &unreachable).unwrap();
        let e = store.refused("creating bucket b", &s3_answer(403, "AccessDenied"));
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            e.message,
            "the store at http://127.0.0.1:9000 refused creating bucket b: 403 AccessDenied: \
             AccessDenied & more; check the installation's keys (secrets.access_key_id, \
             secrets.secret_access_key) and what they may do"
        );

        let not_iam = iam_outcome("CreateUser", &reply(200, "<ListAllMyBucketsResult/>"));
        assert_eq!(
            not_iam,
            Err(IamFailure {
                status: 200,
                code: None,
                message: String::new()
            })
        );
        let e = store.iam_refused("creating IAM user b", not_iam.unwrap_err());
        assert!(
            e.message
                .starts_with("the store at http://127.0.0.1:9000 has no IAM API"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("share_installation_credentials: true"),
            "{}",
            e.message
        );

        let denied = iam_outcome("CreateUser", &iam_answer(403, "AccessDenied")).unwrap_err();
        assert!(denied.is("AccessDenied"));
        let e = store.iam_refused("creating IAM user b", denied);
        assert_eq!(e.kind, ErrorKind::PermissionDenied);
        assert!(
            e.message
                .contains("refused creating IAM user b: 403 AccessDenied: said AccessDenied")
        );
        assert!(
            e.message.contains("share_installation_credentials: true"),
            "{}",
            e.message
        );

        let gateway = iam_outcome("CreateUser", &reply(502, "Bad Gateway")).unwrap_err();
        let e = store.iam_refused("creating IAM user b", gateway);
        assert_eq!(e.kind, ErrorKind::Unavailable, "{}", e.message);
        assert_eq!(
            e.message,
            "the IAM API at http://127.0.0.1:9000 failed creating IAM user b: 502"
        );
        let down = iam_outcome("DeleteUser", &iam_answer(503, "ServiceFailure")).unwrap_err();
        assert_eq!(
            store.iam_refused("deleting IAM user b", down).kind,
            ErrorKind::Unavailable
        );
        assert_eq!(
            iam_outcome(
                "DeleteUser",
                &reply(200, "<DeleteUserResponse xmlns=\"x\"/>")
            ),
            Ok("<DeleteUserResponse xmlns=\"x\"/>".into())
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

    #[test]
    fn a_configuration_lists_every_wrong_value() {
        let config = Values {
            values: json!({
                "endpoint": "http://store:9000/s3", "iam_endpoint": "ftp://iam", "region": "EU",
                "force": "yes", "share_installation_credentials": 1, "name_prefix": 5,
            }),
            ..Values::default()
        };
        let issues = S3::validate_config(&config).unwrap_err();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/values/endpoint",
                "/values/iam_endpoint",
                "/values/region",
                "/values/force",
                "/values/share_installation_credentials",
                "/values/name_prefix"
            ]
        );
        let ok = Values {
            values: json!({ "endpoint": "https://s3.example.test/", "force": true }),
            ..Values::default()
        };
        assert!(S3::validate_config(&ok).is_ok());
    }
}
