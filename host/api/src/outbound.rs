//! Outbound events: what the API records for the webhooks that ask for it, in the
//! transaction of the change it tells of, so an event is sent exactly when its change is
//! stored.

use serde_json::Value;
use wharf_core::clock::now_ms;
use wharf_store::Tx;
use wharf_store::webhooks::{OutEvent, emit as record};

/// Records event `kind` about `app` (and `env`) with `data`, for every webhook that asks
/// for it.
pub(crate) fn emit(
    tx: &Tx<'_>,
    kind: &str,
    app: &str,
    env: Option<&str>,
    data: Value,
) -> Result<(), wharf_store::Error> {
    let subject = match env {
        Some(env) => format!("apps/{app}/envs/{env}"),
        None => format!("apps/{app}"),
    };
    record(
        tx,
        &OutEvent {
            kind: kind.to_string(),
            app: Some(app.to_string()),
            env: env.map(str::to_string),
            subject,
            data,
        },
        now_ms(),
    )?;
    Ok(())
}
