//! The provisioning journal kept in the store: each step's result is written (driver
//! state, params and secret outputs sealed) before the loop acts on it. A resource that
//! is deprovisioned is forgotten.

use crate::provision::{Entry, Journal, Operation, Progress};
use crate::target::BoxFuture;
use serde_json::{Value, json};
use wharf_core::status::ResourceState as Status;
use wharf_store::Store;
use wharf_store::provisioned::{self, Record};
use wharf_store::secrets::Sealer;

/// A [`Journal`] over the store, for one deployment of one environment.
pub struct StoreJournal {
    store: Store,
    sealer: Sealer,
    app: String,
    env: String,
    deployment: i64,
}

impl StoreJournal {
    /// The journal of deployment `deployment` of `app/env`.
    pub fn new(store: Store, sealer: Sealer, app: &str, env: &str, deployment: i64) -> Self {
        Self {
            store,
            sealer,
            app: app.to_string(),
            env: env.to_string(),
            deployment,
        }
    }
}

impl Journal for StoreJournal {
    fn record<'a>(&'a self, entry: Entry<'a>) -> BoxFuture<'a, Result<(), String>> {
        let (sealer, app, env) = (self.sealer.clone(), self.app.clone(), self.env.clone());
        if entry.operation == Operation::Deprovision
            && let Progress::Done { .. } = entry.progress
        {
            let uid = entry.uid.to_string();
            return Box::pin(async move {
                self.store
                    .call(move |conn| provisioned::delete(conn, &app, &env, &uid).map(drop))
                    .await
                    .map_err(|e| e.to_string())
            });
        }
        let empty = || json!({});
        let working = match entry.operation {
            Operation::Provision => Status::InProgress,
            Operation::Deprovision => Status::Deprovisioning,
        };
        let (status, message, state, outputs, secrets) = match entry.progress {
            Progress::InProgress { state, message, .. } => (
                working,
                message.clone(),
                Some(state.clone()),
                empty(),
                empty(),
            ),
            Progress::Retrying { message, .. } => {
                let status = match entry.operation {
                    Operation::Provision => Status::Retrying,
                    Operation::Deprovision => Status::Deprovisioning,
                };
                (status, message.clone(), None, empty(), empty())
            }
            Progress::Done { outputs, state, .. } => (
                Status::Done,
                String::new(),
                Some(state.clone()),
                outputs.values.clone(),
                outputs.secrets.clone(),
            ),
            Progress::Failed { message } => {
                let message = match entry.operation {
                    Operation::Provision => message.clone(),
                    Operation::Deprovision => format!("deprovisioning failed: {message}"),
                };
                (Status::Failed, message, None, empty(), empty())
            }
        };
        let record = Record {
            uid: entry.uid.to_string(),
            status,
            message,
            state,
            outputs: if outputs.is_object() {
                outputs
            } else {
                Value::Null
            },
            secrets,
            updated_at: wharf_core::clock::now(),
            deployment: self.deployment,
            definition: entry.definition.to_string(),
            driver: entry.driver.to_string(),
            depends_on: entry.depends_on.iter().cloned().collect(),
            params: entry.params.clone(),
            objects: match entry.progress {
                Progress::Done { objects, .. } => objects.clone(),
                _ => Vec::new(),
            },
        };
        Box::pin(async move {
            self.store
                .call(move |conn| provisioned::record(conn, &sealer, &app, &env, &record))
                .await
                .map_err(|e| e.to_string())
        })
    }
}
