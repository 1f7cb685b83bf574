//! The closed sets of names a deployment, its steps, its resources and its workloads go
//! through. The store writes them, the engine sets them, the API serves them (the OpenAPI
//! document lists each as an enum) and the CLI reads them back from the event stream: one
//! definition, so a new value is a compile error wherever it is not handled.

/// Defines an enum whose variants are written as the given names (in JSON, in the store
/// and in messages; each name is its variant's in kebab-case, which serde and the OpenAPI
/// schema derive on their own, and a test checks), with `as_str`, `ALL`, `Display`, `FromStr` (whose error lists the
/// names that are allowed) and comparison with a name.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        #[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
        // A variant whose name says what it is goes without a doc comment.
        #[allow(missing_docs)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name it is written as.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        /// Compares with the name it is written as.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $( $text => Ok(Self::$variant), )+
                    other => Err(format!(
                        "unknown {} {other:?}: expected one of {}",
                        $what,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

closed_set! {
    /// What a deployment does.
    pub enum DeploymentKind ("deployment kind") {
        /// Applies a set.
        Deploy = "deploy",
        /// Deletes the environment: stops its workloads, deprovisions its resources.
        Delete = "delete",
    }
}

closed_set! {
    /// Where a deployment is.
    pub enum DeploymentStatus ("deployment status") {
        /// Waiting for the environment's earlier deployments.
        Queued = "queued",
        Running = "running",
        /// Finished: the environment runs its set.
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl DeploymentStatus {
    /// Whether it is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

closed_set! {
    /// A step of a deployment. A deployment of a set goes through [`Step::DEPLOY`], a
    /// deletion through [`Step::DELETE`].
    pub enum Step ("step") {
        /// The request was valid and the deployment queued.
        Accept = "accept",
        /// The caller may deploy (RBAC and policies).
        Authorize = "authorize",
        /// The resource graph, with a definition for each node.
        Resolve = "resolve",
        /// The drivers provision each resource.
        Provision = "provision",
        /// The workloads become Kubernetes objects.
        Render = "render",
        /// The environment type's transformers rewrite the objects.
        Transform = "transform",
        /// The target takes the objects.
        Apply = "apply",
        /// The workloads become ready, within a deadline.
        Verify = "verify",
        /// What the new set no longer uses is deprovisioned.
        Prune = "prune",
        /// The target removes every workload of the environment.
        Stop = "stop",
        /// Every resource is deprovisioned, in reverse dependency order.
        Deprovision = "deprovision",
        /// The environment's rows are removed.
        Remove = "remove",
    }
}

impl Step {
    /// The steps of a deployment that applies a set, in order.
    pub const DEPLOY: &'static [Step] = &[
        Step::Accept,
        Step::Authorize,
        Step::Resolve,
        Step::Provision,
        Step::Render,
        Step::Transform,
        Step::Apply,
        Step::Verify,
        Step::Prune,
    ];

    /// The steps of an environment's deletion, in order.
    pub const DELETE: &'static [Step] = &[
        Step::Accept,
        Step::Authorize,
        Step::Stop,
        Step::Deprovision,
        Step::Remove,
    ];
}

impl DeploymentKind {
    /// Its steps, in order.
    pub fn steps(self) -> &'static [Step] {
        match self {
            Self::Deploy => Step::DEPLOY,
            Self::Delete => Step::DELETE,
        }
    }
}

closed_set! {
    /// Where a step is.
    pub enum StepStatus ("step status") {
        Pending = "pending",
        Running = "running",
        Done = "done",
        Failed = "failed",
        /// Not run: an earlier step failed.
        Skipped = "skipped",
    }
}

closed_set! {
    /// Where a step's failure lies, so the reader knows whom to ask: the developer (`set`,
    /// `workload`), ops (`resource`, `transformer`, `target`, `environment`) or the
    /// operator of Wharf (`store`, `internal`).
    pub enum ErrorScope ("error scope") {
        Set = "set",
        Resource = "resource",
        Workload = "workload",
        Transformer = "transformer",
        Target = "target",
        Environment = "environment",
        Store = "store",
        /// A fault in Wharf itself (the server's log has the details).
        Internal = "internal",
    }
}

closed_set! {
    /// Where a provisioned resource is.
    pub enum ResourceState ("resource state") {
        /// The driver is working.
        InProgress = "in-progress",
        /// A retryable failure, being retried.
        Retrying = "retrying",
        Done = "done",
        /// Failed for good (the message says why).
        Failed = "failed",
        Deprovisioning = "deprovisioning",
    }
}

closed_set! {
    /// What a driver's answer did to a resource, as the event stream announces it.
    pub enum ResourceProgress ("resource progress") {
        InProgress = "in-progress",
        Retrying = "retrying",
        Done = "done",
        Failed = "failed",
        DeprovisionInProgress = "deprovision-in-progress",
        DeprovisionRetrying = "deprovision-retrying",
        DeprovisionDone = "deprovision-done",
        DeprovisionFailed = "deprovision-failed",
    }
}

closed_set! {
    /// How a workload is doing on its target.
    pub enum WorkloadState ("workload state") {
        Ready = "ready",
        Starting = "starting",
        /// A container exited and is restarted after a back-off.
        Restarting = "restarting",
        /// A container gave up (too many restarts, or it cannot start).
        Failed = "failed",
        Stopped = "stopped",
        /// Written to a repository (the gitops target), which cannot tell more.
        Written = "written",
    }
}

closed_set! {
    /// How a container of a workload is doing.
    pub enum ContainerState ("container state") {
        Running = "running",
        Starting = "starting",
        Restarting = "restarting",
        Failed = "failed",
        Stopped = "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of `T` is written in JSON as its name, and read back from it.
    fn written_as_named<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
        T: std::fmt::Display,
    {
        for value in all {
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json, serde_json::json!(value.to_string()));
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), *value);
        }
    }

    #[test]
    fn each_value_is_read_back_from_its_name_and_an_unknown_name_lists_the_allowed_ones() {
        written_as_named(DeploymentKind::ALL);
        written_as_named(DeploymentStatus::ALL);
        written_as_named(Step::ALL);
        written_as_named(StepStatus::ALL);
        written_as_named(ErrorScope::ALL);
        written_as_named(ResourceState::ALL);
        written_as_named(ResourceProgress::ALL);
        written_as_named(WorkloadState::ALL);
        written_as_named(ContainerState::ALL);
        for step in Step::ALL {
            assert_eq!(step.as_str().parse::<Step>(), Ok(*step));
        }
        assert_eq!(
            "deprovision-done".parse::<ResourceProgress>(),
            Ok(ResourceProgress::DeprovisionDone)
        );
        assert_eq!(
            "finished".parse::<DeploymentStatus>(),
            Err(
                "unknown deployment status \"finished\": expected one of queued, running, \
                 succeeded, failed"
                    .to_string()
            )
        );
    }

    #[test]
    fn each_kind_of_deployment_starts_with_accept_and_authorize() {
        for kind in DeploymentKind::ALL {
            assert_eq!(&kind.steps()[..2], &[Step::Accept, Step::Authorize]);
        }
        assert_eq!(Step::DEPLOY.len() + Step::DELETE.len() - 2, Step::ALL.len());
    }
}
