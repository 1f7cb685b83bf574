//! Names and owner marks for what a driver makes on a shared system (a database, a bucket,
//! a DNS record, a directory), so that no resource takes another's.
//!
//! - A resource's real name is [generated](generated) from its app, environment, type,
//!   class and id: readable, and ending with a hash of those five, so two resources never
//!   get the same name (`a-b`/`c` and `a`/`b-c` differ), whatever characters the system
//!   allows. A workload chooses the name (`params.name`) only where ops let it: the host
//!   passes `name` only when the resource definition lists it in `allow_params`, and
//!   [`chosen`] checks the prefix the definition may require (`driver_inputs.values.
//!   name_prefix`).
//! - Whatever a driver creates carries the resource's [`owner`] mark (a comment, a tag, a
//!   file), written when it is created. Before adopting, changing or deleting something
//!   that exists, the driver checks the mark: it touches only what it made for the same
//!   resource.

use crate::PluginError;
use crate::driver::Request;
use sha2::{Digest, Sha256};

/// What a system allows in a name.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The longest name.
    pub max_len: usize,
    /// Put between the parts of a generated name, and for any character not allowed.
    pub separator: char,
    /// Characters allowed besides lowercase ASCII letters and digits.
    pub also: &'static str,
    /// Whether a name must start with a letter.
    pub starts_with_letter: bool,
}

/// The five things that make a resource what it is, hashed: the same for every call about
/// the same resource, different for any other.
fn digest(request: &Request) -> [u8; 32] {
    let c = &request.context;
    let mut hash = Sha256::new();
    for part in [&c.app, &c.env, &c.resource_type, &c.class, &c.resource_id] {
        // Length first, so that no two lists of parts hash alike.
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The mark of what a driver makes for this resource: `wharf:` and 32 hexadecimal digits,
/// the same for every call about the same resource, in any system's charset.
pub fn owner(request: &Request) -> String {
    format!("wharf:{}", hex(&digest(request)[..16]))
}

/// The resource, as people read it: `APP/ENV/TYPE.CLASS#ID`.
pub fn describe(request: &Request) -> String {
    let c = &request.context;
    format!(
        "{}/{}/{}.{}#{}",
        c.app, c.env, c.resource_type, c.class, c.resource_id
    )
}

/// A name for the resource within `rules`: its app, environment and id, then 16
/// hexadecimal digits of the hash of all it is (the readable part is shortened to fit).
pub fn generated(request: &Request, rules: &Rules) -> String {
    let c = &request.context;
    let sep = rules.separator;
    let allowed =
        |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit() || rules.also.contains(ch);
    let mut readable = String::new();
    for part in [&c.app, &c.env, &c.resource_id] {
        if !readable.is_empty() {
            readable.push(sep);
        }
        readable.extend(part.to_ascii_lowercase().chars().map(
            |ch| {
                if allowed(ch) { ch } else { sep }
            },
        ));
    }
    let suffix = hex(&digest(request)[..8]);
    let room = rules.max_len.saturating_sub(suffix.len() + 1);
    let mut readable: String = readable.chars().take(room).collect();
    while readable.ends_with(sep) {
        readable.pop();
    }
    if rules.starts_with_letter && !readable.starts_with(|ch: char| ch.is_ascii_lowercase()) {
        readable.insert(0, 'r');
        readable = readable.chars().take(room).collect();
    }
    if readable.is_empty() {
        return format!("r{sep}{suffix}");
    }
    format!("{readable}{sep}{suffix}")
}

/// The name the workload chose (`params.name`), if it chose one, checked against the
/// prefix the definition requires (`driver_inputs.values.name_prefix`). The driver checks
/// the rest (its system's syntax) and, before touching what has this name, its mark.
pub fn chosen(request: &Request) -> Result<Option<String>, PluginError> {
    let Some(name) = request.params.get("name").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(name) = name.as_str() else {
        return Err(PluginError::invalid_input("params.name must be a string"));
    };
    if let Some(prefix) = request.config.values["name_prefix"].as_str()
        && !name.starts_with(prefix)
    {
        return Err(PluginError::invalid_input(format!(
            "params.name {name:?}: this resource's names must start with {prefix:?}"
        )));
    }
    Ok(Some(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PG: Rules = Rules {
        max_len: 63,
        separator: '_',
        also: "_",
        starts_with_letter: true,
    };

    fn request(app: &str, env: &str, id: &str) -> Request {
        let mut r = Request::test("postgres");
        r.context.app = app.into();
        r.context.env = env.into();
        r.context.resource_id = id.into();
        r
    }

    #[test]
    fn names_that_read_alike_differ_by_their_hash() {
        let a = generated(&request("a-b", "c", "db"), &PG);
        let b = generated(&request("a", "b-c", "db"), &PG);
        assert!(a.starts_with("a_b_c_db_"), "{a}");
        assert!(b.starts_with("a_b_c_db_"), "{b}");
        assert_ne!(a, b);
        assert_ne!(
            owner(&request("a-b", "c", "db")),
            owner(&request("a", "b-c", "db"))
        );
        assert_eq!(
            generated(&request("a-b", "c", "db"), &PG),
            a,
            "the same resource, the same name"
        );
    }

    #[test]
    fn generated_names_fit_the_rules() {
        let long = "x".repeat(200);
        let name = generated(&request(&long, "9-env", "Web.DB"), &PG);
        assert_eq!(name.len(), 63);
        let name = generated(&request("9shop", "dev", "db"), &PG);
        assert!(name.starts_with("r9shop_dev_db_"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
        let dns = Rules {
            max_len: 63,
            separator: '-',
            also: "-",
            starts_with_letter: false,
        };
        let name = generated(&request("shop", "dev", "web.api"), &dns);
        assert!(name.starts_with("shop-dev-web-api-"), "{name}");
        assert_eq!(owner(&request("shop", "dev", "db")).len(), 38);
    }

    #[test]
    fn a_chosen_name_keeps_the_required_prefix() {
        let mut r = request("shop", "dev", "db");
        assert_eq!(chosen(&r).unwrap(), None);
        r.params = json!({ "name": "shop_orders" });
        assert_eq!(chosen(&r).unwrap().as_deref(), Some("shop_orders"));
        r.config.values = json!({ "name_prefix": "shop_" });
        assert!(chosen(&r).is_ok());
        r.params = json!({ "name": "postgres" });
        let e = chosen(&r).unwrap_err();
        assert!(
            e.message.contains("must start with \"shop_\""),
            "{}",
            e.message
        );
        r.params = json!({ "name": 5 });
        assert!(chosen(&r).is_err());
    }
}
