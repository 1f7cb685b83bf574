//! The provisioning journal kept in the store: each step's result is written (driver
//! state and secret outputs sealed) before the loop acts on it.

use crate::provision::{Journal, Progress};
use crate::target::BoxFuture;
use serde_json::{Value, json};
use wharf_store::Store;
use wharf_store::provisioned::{self, Record, Status};
use wharf_store::secrets::Sealer;

/// A [`Journal`] over the store, for one environment.
pub struct StoreJournal {
    store: Store,
    sealer: Sealer,
    app: String,
    env: String,
}

impl StoreJournal {
    /// The journal of `app/env`.
    pub fn new(store: Store, sealer: Sealer, app: &str, env: &str) -> Self {
        Self {
            store,
            sealer,
            app: app.to_string(),
            env: env.to_string(),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Journal for StoreJournal {
    fn record<'a>(
        &'a self,
        uid: &'a str,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<(), String>> {
        let empty = || json!({});
        let (status, message, state, outputs, secrets) = match progress {
            Progress::InProgress { state, message, .. } => (
                Status::InProgress,
                message.clone(),
                Some(state.clone()),
                empty(),
                empty(),
            ),
            Progress::Retrying { message, .. } => {
                (Status::Retrying, message.clone(), None, empty(), empty())
            }
            Progress::Done { outputs, state } => (
                Status::Done,
                String::new(),
                Some(state.clone()),
                outputs.values.clone(),
                outputs.secrets.clone(),
            ),
            Progress::Failed { message } => {
                (Status::Failed, message.clone(), None, empty(), empty())
            }
        };
        let record = Record {
            uid: uid.to_string(),
            status,
            message,
            state,
            outputs: if outputs.is_object() {
                outputs
            } else {
                Value::Null
            },
            secrets,
            updated_at: now(),
        };
        let (sealer, app, env) = (self.sealer.clone(), self.app.clone(), self.env.clone());
        Box::pin(async move {
            self.store
                .call(move |conn| provisioned::record(conn, &sealer, &app, &env, &record))
                .await
                .map_err(|e| e.to_string())
        })
    }
}
