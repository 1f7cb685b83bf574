//! The PostgreSQL frontend/backend protocol (version 3), as much as a driver needs: the
//! startup, SCRAM-SHA-256 authentication, and simple queries with text results.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;

/// Why talking to the server failed.
#[derive(Debug)]
pub enum WireError {
    /// The connection failed or broke.
    Io(std::io::Error),
    /// The server refused the credentials.
    Auth(String),
    /// The server answered with an error: its SQLSTATE and message.
    Server { code: String, message: String },
    /// The server said something this client does not understand.
    Protocol(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Auth(m) => write!(f, "authentication failed: {m}"),
            Self::Server { code, message } => write!(f, "{message} (SQLSTATE {code})"),
            Self::Protocol(m) => write!(f, "unexpected answer from the server: {m}"),
        }
    }
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// An authenticated session.
pub struct Session {
    stream: TcpStream,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// PBKDF2-HMAC-SHA256 with one block of output (SCRAM's `Hi`).
pub fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, b) in out.iter_mut().zip(&u) {
            *o ^= b;
        }
    }
    out
}

/// The client's side of a SCRAM-SHA-256 exchange.
pub struct Scram {
    password: String,
    nonce: String,
    bare: String,
    auth_message: String,
    salted: Vec<u8>,
}

impl Scram {
    /// Starts with a client nonce; returns the exchange and the client-first message.
    pub fn start(password: &str, nonce: &str) -> (Self, String) {
        let bare = format!("n=,r={nonce}");
        (
            Self {
                password: password.to_string(),
                nonce: nonce.to_string(),
                auth_message: String::new(),
                bare: bare.clone(),
                salted: Vec::new(),
            },
            format!("n,,{bare}"),
        )
    }

    /// The client-final message for the server-first message.
    pub fn answer(&mut self, server_first: &str) -> Result<String, WireError> {
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|p| p.strip_prefix(name))
                .ok_or_else(|| WireError::Protocol(format!("SCRAM server-first without {name}")))
        };
        let nonce = field("r=")?;
        let salt = base64::engine::general_purpose::STANDARD
            .decode(field("s=")?)
            .map_err(|e| WireError::Protocol(format!("SCRAM salt: {e}")))?;
        let iterations: u32 = field("i=")?
            .parse()
            .map_err(|_| WireError::Protocol("SCRAM iteration count".into()))?;
        if !nonce.starts_with(&self.nonce) {
            return Err(WireError::Protocol("SCRAM nonce mismatch".into()));
        }
        self.salted = hi(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(&self.salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        self.auth_message = format!("{},{server_first},{without_proof}", self.bare);
        let signature = hmac(&stored_key, self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        Ok(format!(
            "{without_proof},p={}",
            base64::engine::general_purpose::STANDARD.encode(proof)
        ))
    }

    /// Checks the server's final message (that it knows the password too).
    pub fn verify(&self, server_final: &str) -> Result<(), WireError> {
        let server_key = hmac(&self.salted, b"Server Key");
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac(&server_key, self.auth_message.as_bytes()));
        match server_final.strip_prefix("v=") {
            Some(v) if v == expected => Ok(()),
            _ => Err(WireError::Protocol(
                "the server's SCRAM signature does not verify".into(),
            )),
        }
    }
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An ErrorResponse's fields.
fn error_fields(body: &[u8]) -> (String, String) {
    let (mut code, mut text) = (String::new(), String::new());
    for field in body.split(|b| *b == 0) {
        if let Some((kind, value)) = field.split_first() {
            let value = String::from_utf8_lossy(value).into_owned();
            match kind {
                b'C' => code = value,
                b'M' => text = value,
                _ => {}
            }
        }
    }
    (code, text)
}

impl Session {
    /// Connects to `addr` and logs in as `user` to `database` with `password`
    /// (SCRAM-SHA-256, or a cleartext password when the server asks for one).
    pub fn connect(
        addr: &str,
        user: &str,
        password: &str,
        database: &str,
        nonce: &str,
    ) -> Result<Self, WireError> {
        let stream = TcpStream::connect(addr)?;
        let mut s = Self { stream };
        let mut startup = Vec::new();
        startup.extend_from_slice(&196_608u32.to_be_bytes());
        for (k, v) in [("user", user), ("database", database)] {
            startup.extend_from_slice(k.as_bytes());
            startup.push(0);
            startup.extend_from_slice(v.as_bytes());
            startup.push(0);
        }
        startup.push(0);
        let mut first = ((startup.len() + 4) as u32).to_be_bytes().to_vec();
        first.extend_from_slice(&startup);
        s.stream.write_all(&first)?;
        let mut scram: Option<Scram> = None;
        loop {
            let (kind, body) = s.read()?;
            match kind {
                b'R' => {
                    let code = u32::from_be_bytes(body[..4].try_into().map_err(|_| {
                        WireError::Protocol("a short authentication message".into())
                    })?);
                    match code {
                        0 => {}
                        3 => {
                            let mut pw = password.as_bytes().to_vec();
                            pw.push(0);
                            s.stream.write_all(&message(b'p', &pw))?;
                        }
                        10 => {
                            let mechanisms = String::from_utf8_lossy(&body[4..]);
                            if !mechanisms.split('\0').any(|m| m == "SCRAM-SHA-256") {
                                return Err(WireError::Auth(format!(
                                    "the server offers {mechanisms:?}, not SCRAM-SHA-256"
                                )));
                            }
                            let (exchange, client_first) = Scram::start(password, nonce);
                            let mut b = b"SCRAM-SHA-256\0".to_vec();
                            b.extend_from_slice(&(client_first.len() as u32).to_be_bytes());
                            b.extend_from_slice(client_first.as_bytes());
                            s.stream.write_all(&message(b'p', &b))?;
                            scram = Some(exchange);
                        }
                        11 => {
                            let exchange = scram.as_mut().ok_or_else(|| {
                                WireError::Protocol("SCRAM continue before start".into())
                            })?;
                            let client_final =
                                exchange.answer(&String::from_utf8_lossy(&body[4..]))?;
                            s.stream
                                .write_all(&message(b'p', client_final.as_bytes()))?;
                        }
                        12 => {
                            let exchange = scram.as_ref().ok_or_else(|| {
                                WireError::Protocol("SCRAM final before start".into())
                            })?;
                            exchange.verify(&String::from_utf8_lossy(&body[4..]))?;
                        }
                        other => {
                            return Err(WireError::Auth(format!(
                                "the server asks for authentication method {other}, which this \
                                 driver does not speak (use scram-sha-256 in pg_hba.conf)"
                            )));
                        }
                    }
                }
                b'E' => {
                    let (code, text) = error_fields(&body);
                    return Err(if code.starts_with("28") {
                        WireError::Auth(text)
                    } else {
                        WireError::Server {
                            code,
                            message: text,
                        }
                    });
                }
                b'Z' => return Ok(s),
                _ => {}
            }
        }
    }

    fn read(&mut self) -> Result<(u8, Vec<u8>), WireError> {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if !(4..=(64 << 20)).contains(&len) {
            return Err(WireError::Protocol(format!("a message of {len} bytes")));
        }
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body)?;
        Ok((head[0], body))
    }

    /// Runs one statement; returns the rows, each column as text (`None` for NULL).
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, WireError> {
        let mut q = sql.as_bytes().to_vec();
        q.push(0);
        self.stream.write_all(&message(b'Q', &q))?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            let (kind, body) = self.read()?;
            match kind {
                b'D' => {
                    let count = u16::from_be_bytes([body[0], body[1]]) as usize;
                    let mut at = 2;
                    let mut row = Vec::with_capacity(count);
                    for _ in 0..count {
                        let len = i32::from_be_bytes(
                            body[at..at + 4]
                                .try_into()
                                .map_err(|_| WireError::Protocol("a short row".into()))?,
                        );
                        at += 4;
                        if len < 0 {
                            row.push(None);
                        } else {
                            let end = at + len as usize;
                            row.push(Some(String::from_utf8_lossy(&body[at..end]).into_owned()));
                            at = end;
                        }
                    }
                    rows.push(row);
                }
                b'E' => {
                    let (code, message) = error_fields(&body);
                    failed = Some(WireError::Server { code, message });
                }
                b'Z' => {
                    return match failed {
                        Some(e) => Err(e),
                        None => Ok(rows),
                    };
                }
                _ => {}
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.stream.write_all(&message(b'X', &[]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example (user "user", password "pencil").
    #[test]
    fn the_rfc_example_exchanges_alike() {
        let (mut scram, _) = Scram::start("pencil", "rOprNGfwEbeRWgbNEkqO");
        // The RFC's bare message names the user; PostgreSQL's leaves it empty.
        scram.bare = "n=user,r=rOprNGfwEbeRWgbNEkqO".into();
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = scram.answer(server_first).unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        scram
            .verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }
}
