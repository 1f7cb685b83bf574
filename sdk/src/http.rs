//! Outbound HTTP for drivers, through `wasi:http`.
//!
//! Only the origins (`scheme://host[:port]`) the operator granted when installing the
//! plugin can be reached; any other request fails with [`HttpError::Denied`] before a
//! connection is made. Redirects are not followed. Outside the sandbox (native unit tests)
//! every request fails with [`HttpError::Unsupported`].

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`...
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl Request {
    /// A `GET` of `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A request with `method` to `url`, no headers and no body.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.header("content-type", "application/json")
    }
}

/// A response received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Body(e.to_string()))
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not an absolute `http(s)://` URL.
    InvalidUrl(String),
    /// The host refused the request: the origin was not granted to this plugin.
    Denied(String),
    /// The request failed on the way (connection refused, timeout, response too large).
    Failed(String),
    /// The body could not be read or parsed.
    Body(String),
    /// Not running inside the Wharf sandbox.
    Unsupported,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidUrl(u) => {
                write!(f, "invalid URL {u:?}: expected http(s)://host[:port]/path")
            }
            Self::Denied(u) => write!(
                f,
                "request to {u} denied: its origin is not granted to this plugin"
            ),
            Self::Failed(e) => write!(f, "request failed: {e}"),
            Self::Body(e) => write!(f, "cannot read the response body: {e}"),
            Self::Unsupported => write!(f, "outbound HTTP works only inside the Wharf sandbox"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for crate::PluginError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Failed(_) => crate::PluginError::unavailable(e.to_string()),
            HttpError::Denied(_) => {
                crate::PluginError::new(crate::ErrorKind::PermissionDenied, e.to_string())
            }
            _ => crate::PluginError::other(e.to_string()),
        }
    }
}

/// Sends a request and reads the whole response.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    imp::send(request)
}

/// Splits `http://host:port/path?q` into scheme, authority and path-with-query.
fn split_url(url: &str) -> Result<(&str, &str, &str), HttpError> {
    let invalid = || HttpError::InvalidUrl(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    if scheme != "http" && scheme != "https" {
        return Err(invalid());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(invalid());
    }
    Ok((scheme, authority, path))
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;

    pub fn send(request: &Request) -> Result<Response, HttpError> {
        split_url(&request.url)?;
        Err(HttpError::Unsupported)
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::__private::wit::wasi::http::outgoing_handler;
    use crate::__private::wit::wasi::http::types::{
        ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use crate::__private::wit::wasi::io::streams::StreamError;

    pub fn send(request: &Request) -> Result<Response, HttpError> {
        let (scheme, authority, path) = split_url(&request.url)?;
        let failed = |what: &str| HttpError::Failed(what.to_string());
        let mut fields: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone().into_bytes()))
            .collect();
        // A body goes with its length, not chunked: some servers (S3 among them) refuse a
        // PUT or a POST without it.
        let sends_body = !request.body.is_empty()
            || matches!(
                request.method.to_ascii_uppercase().as_str(),
                "POST" | "PUT" | "PATCH"
            );
        if sends_body && !fields.iter().any(|(k, _)| k == "content-length") {
            fields.push((
                "content-length".into(),
                request.body.len().to_string().into_bytes(),
            ));
        }
        let headers = Fields::from_list(&fields)
            .map_err(|e| HttpError::Failed(format!("invalid header: {e:?}")))?;
        let out = OutgoingRequest::new(headers);
        let method = match request.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let scheme = if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        out.set_method(&method)
            .map_err(|()| failed("invalid method"))?;
        out.set_scheme(Some(&scheme))
            .map_err(|()| failed("invalid scheme"))?;
        out.set_authority(Some(authority))
            .map_err(|()| HttpError::InvalidUrl(request.url.clone()))?;
        out.set_path_with_query(Some(path))
            .map_err(|()| HttpError::InvalidUrl(request.url.clone()))?;
        let body = out
            .body()
            .map_err(|()| failed("request body already taken"))?;
        {
            let stream = body.write().map_err(|()| failed("request body stream"))?;
            for chunk in request.body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| HttpError::Failed(format!("writing the request body: {e:?}")))?;
            }
        }
        let future = outgoing_handler::handle(out, None).map_err(|e| error(&request.url, e))?;
        OutgoingBody::finish(body, None).map_err(|e| error(&request.url, e))?;
        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(e))) => return Err(error(&request.url, e)),
                Some(Err(())) => return Err(failed("response already taken")),
                None => future.subscribe().block(),
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| failed("response body already taken"))?;
        let stream = incoming
            .stream()
            .map_err(|()| failed("response body stream"))?;
        let mut body = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Body(e.to_debug_string()));
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn error(url: &str, code: ErrorCode) -> HttpError {
        match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied(url.to_string()),
            other => HttpError::Failed(format!("{other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls_and_rejects_what_is_not_http() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/a?b=1").unwrap(),
            ("http", "127.0.0.1:8080", "/a?b=1")
        );
        assert_eq!(
            split_url("https://example.com").unwrap(),
            ("https", "example.com", "/")
        );
        assert!(matches!(
            split_url("ftp://x/"),
            Err(HttpError::InvalidUrl(_))
        ));
        assert!(matches!(
            split_url("http:///x"),
            Err(HttpError::InvalidUrl(_))
        ));
    }
}
