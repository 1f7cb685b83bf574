//! The default policy's input, as any principal and request could make it: a decision is
//! always given, an unknown action is always denied, a principal with no role is allowed
//! nothing but its own tokens, and only an admin may make another principal's token.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wharf_sdk::policy::{Decision, Principal, PrincipalKind, Request, RoleBinding, Scope, Target};

#[derive(Debug, Arbitrary)]
struct Input {
    principal: String,
    bindings: Vec<(u8, String, String)>,
    action: String,
    known_action: Option<u8>,
    app: Option<String>,
    env: Option<String>,
    env_type: Option<String>,
    object: Option<String>,
    role: Option<String>,
    target_is_admin: bool,
}

fuzz_target!(|input: Input| {
    let actions = wharf_plugin_rbac::ACTIONS;
    let action = match input.known_action {
        Some(i) => actions[usize::from(i) % actions.len()].0.to_string(),
        None => input.action,
    };
    let bindings: Vec<RoleBinding> = input
        .bindings
        .into_iter()
        .map(|(kind, id, role)| RoleBinding {
            scope: match kind % 3 {
                0 => Scope::Org,
                1 => Scope::App(id),
                _ => Scope::EnvType(id),
            },
            role,
        })
        .collect();
    let no_role = bindings.is_empty();
    let admin = bindings
        .iter()
        .any(|b| b.scope == Scope::Org && b.role == "admin");
    let request = Request {
        principal: std::sync::Arc::new(Principal {
            id: input.principal.clone(),
            kind: PrincipalKind::User,
            groups: Vec::new(),
            role_bindings: bindings,
        }),
        action: action.clone(),
        target: Target {
            app: input.app,
            env: input.env,
            env_type: input.env_type,
            object: input.object.clone(),
        },
        attributes: serde_json::json!({
            "role": input.role,
            "target_is_admin": input.target_is_admin,
        }),
    };
    let decision = wharf_plugin_rbac::decide(&request);
    let allowed = decision == Decision::Allow;
    if wharf_plugin_rbac::need(&action).is_none() {
        assert!(!allowed, "unknown action {action:?} allowed");
    }
    let own_token =
        action.starts_with("tokens.") && input.object.as_deref() == Some(input.principal.as_str());
    if no_role && !own_token {
        assert!(!allowed, "{action} allowed without a role");
    }
    if action == "tokens.create" && !own_token && allowed {
        assert!(
            admin && !input.target_is_admin,
            "a token made for another by a non-admin"
        );
    }
});
