//! Resource-definition matching: which definition provisions a resource.
//!
//! Ops write resource definitions: "provision `postgres` with this driver and these
//! inputs, when the context matches these criteria". A criterion names any of `env_type`,
//! `app`, `env` and `res_id` (a field left out matches anything) and a `class` (default
//! `default`), which must equal the class the workload asked for. Among the criteria that
//! match, the most specific wins: a criterion naming `res_id` beats one naming `env`,
//! which beats `app`, which beats `env_type`; a tie on the most specific field is broken
//! by the next one, and so on (Humanitec's rule). A criterion with no field is a fallback.
//!
//! Two matching criteria of *different* definitions that are equally specific make the
//! match ambiguous: that is an error naming both, never a silent pick. Registering a
//! criterion identical to one that exists for the same type is refused up front
//! ([`check_new_criterion`]).

use serde::{Deserialize, Serialize};

/// The class a workload gets when it names none.
pub const DEFAULT_CLASS: &str = "default";

fn default_class() -> String {
    DEFAULT_CLASS.to_string()
}

fn is_default_class(class: &str) -> bool {
    class == DEFAULT_CLASS
}

/// When a definition applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Environment type, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_type: Option<String>,
    /// Application, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Environment, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Resource id, or any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub res_id: Option<String>,
    /// Class; must equal the requested one.
    #[serde(default = "default_class", skip_serializing_if = "is_default_class")]
    pub class: String,
}

impl Criterion {
    /// True when every field it names equals the context.
    pub fn matches(&self, ctx: &Context) -> bool {
        let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.class == ctx.class
            && field(&self.env_type, &ctx.env_type)
            && field(&self.app, &ctx.app)
            && field(&self.env, &ctx.env)
            && field(&self.res_id, &ctx.res_id)
    }

    /// Specificity, compared lexicographically: `res_id`, then `env`, `app`, `env_type`.
    pub fn specificity(&self) -> [bool; 4] {
        [
            self.res_id.is_some(),
            self.env.is_some(),
            self.app.is_some(),
            self.env_type.is_some(),
        ]
    }
}

impl std::fmt::Display for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (name, value) in [
            ("env_type", &self.env_type),
            ("app", &self.app),
            ("env", &self.env),
            ("res_id", &self.res_id),
        ] {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        }
        parts.push(format!("class={}", self.class));
        write!(f, "{{{}}}", parts.join(", "))
    }
}

/// What is being provisioned, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Resource type (`postgres`).
    pub res_type: String,
    /// Resource class.
    pub class: String,
    /// Resource id.
    pub res_id: String,
    /// Application.
    pub app: String,
    /// Environment.
    pub env: String,
    /// Environment type.
    pub env_type: String,
}

/// A definition as matching sees it: its id, type and criteria.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The definition's id.
    pub id: &'a str,
    /// The resource type it provisions.
    pub res_type: &'a str,
    /// When it applies.
    pub criteria: &'a [Criterion],
}

/// The definition chosen, and the criterion that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a> {
    /// The definition's id.
    pub definition: &'a str,
    /// The winning criterion.
    pub criterion: &'a Criterion,
}

/// Why no single definition matches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// No definition of the type has a matching criterion.
    #[error(
        "no resource definition matches {} {:?} (class {}) in app {}, env {} of type {}; \
         definitions of this type: {candidates}",
        context.res_type, context.res_id, context.class, context.app, context.env, context.env_type
    )]
    NoMatch {
        /// What was being provisioned, and where.
        context: Box<Context>,
        /// The definitions of the type with their criteria, or "none".
        candidates: String,
    },
    /// Equally specific criteria of different definitions match.
    #[error(
        "resource {res_type} {res_id:?} matches equally specific criteria of several \
         definitions: {candidates}; make one criterion more specific"
    )]
    Ambiguous {
        /// Resource type.
        res_type: String,
        /// Resource id.
        res_id: String,
        /// `definition criterion` for each tied candidate.
        candidates: String,
    },
}

/// Chooses the definition for `ctx` among `definitions` (of any type).
pub fn best<'a>(definitions: &[Candidate<'a>], ctx: &Context) -> Result<Match<'a>, MatchError> {
    let of_type: Vec<&Candidate<'a>> = definitions
        .iter()
        .filter(|d| d.res_type == ctx.res_type)
        .collect();
    let mut winners: Vec<Match<'a>> = Vec::new();
    let mut best_key = None;
    for d in &of_type {
        for c in d.criteria.iter().filter(|c| c.matches(ctx)) {
            let key = c.specificity();
            match best_key {
                Some(k) if key < k => {}
                Some(k) if key == k => {
                    if !winners.iter().any(|w| w.definition == d.id) {
                        winners.push(Match {
                            definition: d.id,
                            criterion: c,
                        });
                    }
                }
                _ => {
                    best_key = Some(key);
                    winners = vec![Match {
                        definition: d.id,
                        criterion: c,
                    }];
                }
            }
        }
    }
    match winners.len() {
        1 => Ok(winners.remove(0)),
        0 => {
            let candidates = if of_type.is_empty() {
                "none".to_string()
            } else {
                of_type
                    .iter()
                    .map(|d| {
                        let criteria: Vec<String> =
                            d.criteria.iter().map(|c| c.to_string()).collect();
                        format!("{} [{}]", d.id, criteria.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            Err(MatchError::NoMatch {
                context: Box::new(ctx.clone()),
                candidates,
            })
        }
        _ => Err(MatchError::Ambiguous {
            res_type: ctx.res_type.clone(),
            res_id: ctx.res_id.clone(),
            candidates: winners
                .iter()
                .map(|w| format!("{} {}", w.definition, w.criterion))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A criterion identical to one that already exists for the same resource type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("criterion {criterion} for {res_type} already exists on definition {existing}")]
pub struct DuplicateCriterion {
    /// The criterion.
    pub criterion: String,
    /// The resource type.
    pub res_type: String,
    /// The definition that has it.
    pub existing: String,
}

/// Checks that adding `criterion` to definition `id` of `res_type` duplicates no criterion
/// of another definition of the same type.
pub fn check_new_criterion(
    definitions: &[Candidate<'_>],
    id: &str,
    res_type: &str,
    criterion: &Criterion,
) -> Result<(), DuplicateCriterion> {
    match definitions
        .iter()
        .filter(|d| d.res_type == res_type && d.id != id)
        .find(|d| d.criteria.contains(criterion))
    {
        Some(d) => Err(DuplicateCriterion {
            criterion: criterion.to_string(),
            res_type: res_type.to_string(),
            existing: d.id.to_string(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(text: &str) -> Criterion {
        serde_json::from_str(text).unwrap()
    }

    fn ctx(app: &str, env: &str, env_type: &str, res_id: &str) -> Context {
        Context {
            res_type: "postgres".into(),
            class: DEFAULT_CLASS.into(),
            res_id: res_id.into(),
            app: app.into(),
            env: env.into(),
            env_type: env_type.into(),
        }
    }

    #[test]
    fn humanitecs_worked_example() {
        let test = [crit(r#"{"env_type":"test"}"#)];
        let dev = [crit(r#"{"env_type":"development"}"#)];
        let test_app = [crit(r#"{"env_type":"test","app":"my-app"}"#)];
        let defs = [
            Candidate {
                id: "pg-test",
                res_type: "postgres",
                criteria: &test,
            },
            Candidate {
                id: "pg-dev",
                res_type: "postgres",
                criteria: &dev,
            },
            Candidate {
                id: "pg-test-my-app",
                res_type: "postgres",
                criteria: &test_app,
            },
        ];
        let m = best(&defs, &ctx("my-app", "qa-team", "test", "db")).unwrap();
        assert_eq!(m.definition, "pg-test-my-app");
        let m = best(&defs, &ctx("other", "qa-team", "test", "db")).unwrap();
        assert_eq!(m.definition, "pg-test");
    }

    #[test]
    fn the_most_specific_field_wins_then_the_next() {
        let by_res = [crit(r#"{"res_id":"db"}"#)];
        let by_env_app_type = [crit(
            r#"{"env":"pr-1","app":"shop","env_type":"development"}"#,
        )];
        let fallback = [Criterion {
            class: DEFAULT_CLASS.into(),
            ..Default::default()
        }];
        let defs = [
            Candidate {
                id: "by-env",
                res_type: "postgres",
                criteria: &by_env_app_type,
            },
            Candidate {
                id: "by-res",
                res_type: "postgres",
                criteria: &by_res,
            },
            Candidate {
                id: "fallback",
                res_type: "postgres",
                criteria: &fallback,
            },
        ];
        assert_eq!(
            best(&defs, &ctx("shop", "pr-1", "development", "db"))
                .unwrap()
                .definition,
            "by-res"
        );
        assert_eq!(
            best(&defs, &ctx("shop", "pr-1", "development", "cache"))
                .unwrap()
                .definition,
            "by-env"
        );
        assert_eq!(
            best(&defs, &ctx("shop", "pr-2", "development", "cache"))
                .unwrap()
                .definition,
            "fallback"
        );
    }

    #[test]
    fn class_must_equal_the_requested_one() {
        let large = [crit(r#"{"env_type":"production","class":"large"}"#)];
        let plain = [crit(r#"{"env_type":"production"}"#)];
        let defs = [
            Candidate {
                id: "large",
                res_type: "postgres",
                criteria: &large,
            },
            Candidate {
                id: "plain",
                res_type: "postgres",
                criteria: &plain,
            },
        ];
        let mut c = ctx("shop", "prod", "production", "db");
        assert_eq!(best(&defs, &c).unwrap().definition, "plain");
        c.class = "large".into();
        assert_eq!(best(&defs, &c).unwrap().definition, "large");
        c.class = "huge".into();
        assert!(matches!(best(&defs, &c), Err(MatchError::NoMatch { .. })));
    }

    #[test]
    fn no_match_names_the_resource_and_the_candidates() {
        let dev = [crit(r#"{"env_type":"development"}"#)];
        let defs = [
            Candidate {
                id: "pg-dev",
                res_type: "postgres",
                criteria: &dev,
            },
            Candidate {
                id: "dns",
                res_type: "dns",
                criteria: &[],
            },
        ];
        let e = best(&defs, &ctx("shop", "prod", "production", "db")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no resource definition matches postgres \"db\" (class default) in app shop, env prod \
             of type production; definitions of this type: pg-dev [{env_type=development, class=default}]"
        );
        let none = best(&[], &ctx("a", "b", "c", "d")).unwrap_err().to_string();
        assert!(none.ends_with("definitions of this type: none"), "{none}");
    }

    #[test]
    fn equally_specific_matches_of_two_definitions_are_ambiguous() {
        let a = [crit(r#"{"app":"shop"}"#)];
        let b = [crit(r#"{"app":"shop","env_type":"development"}"#)];
        let c = [
            crit(r#"{"app":"shop","env_type":"development"}"#),
            crit(r#"{"app":"shop"}"#),
        ];
        let defs = [
            Candidate {
                id: "a",
                res_type: "postgres",
                criteria: &a,
            },
            Candidate {
                id: "b",
                res_type: "postgres",
                criteria: &b,
            },
            Candidate {
                id: "c",
                res_type: "postgres",
                criteria: &c,
            },
        ];
        let e = best(&defs, &ctx("shop", "pr-1", "development", "db")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "resource postgres \"db\" matches equally specific criteria of several definitions: \
             b {env_type=development, app=shop, class=default}, \
             c {env_type=development, app=shop, class=default}; make one criterion more specific"
        );
        // One definition matching twice at the same specificity is not ambiguous.
        let only_c = &defs[2..];
        assert_eq!(
            best(only_c, &ctx("shop", "pr-1", "development", "db"))
                .unwrap()
                .definition,
            "c"
        );
    }

    #[test]
    fn duplicate_criteria_are_refused_at_registration() {
        let a = [crit(r#"{"env_type":"production"}"#)];
        let defs = [Candidate {
            id: "a",
            res_type: "postgres",
            criteria: &a,
        }];
        let dup = crit(r#"{"env_type":"production"}"#);
        let e = check_new_criterion(&defs, "b", "postgres", &dup).unwrap_err();
        assert_eq!(
            e.to_string(),
            "criterion {env_type=production, class=default} for postgres already exists on definition a"
        );
        assert!(check_new_criterion(&defs, "a", "postgres", &dup).is_ok());
        assert!(check_new_criterion(&defs, "b", "dns", &dup).is_ok());
        let unknown = serde_json::from_str::<Criterion>(r#"{"environment":"x"}"#).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `environment`"),
            "{unknown}"
        );
    }
}
