//! What a saved plan would do, read from `terraform show -json <planfile>`.
//!
//! That JSON carries variable and planned values, sensitive ones included, in clear text: only
//! resource addresses and actions are read from it, and parse errors never quote it.

use serde::{Deserialize, Serialize};

/// The resource changes of a plan, by kind, as resource addresses in Terraform's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    pub adds: Vec<String>,
    pub changes: Vec<String>,
    pub destroys: Vec<String>,
    pub replaces: Vec<String>,
    /// Resources whose creation never finished (tainted, e.g. by an interrupted apply): their
    /// replacement completes the earlier run rather than destroying anything that worked.
    pub repairs: Vec<String>,
    /// Some root output would change (an apply is needed even without resource changes).
    pub outputs_change: bool,
    /// Resources that changed outside Terraform since the last apply (`resource_drift`: what
    /// a `-refresh-only` plan is about).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drifted: Vec<String>,
}

impl PlanSummary {
    /// Parses the output of `show -json`. The error is a position, never a quote of the text.
    pub fn from_show_json(json: &str) -> Result<Self, String> {
        let plan: ShowPlan = serde_json::from_str(json).map_err(|err| json_error_position(&err))?;
        let mut summary = PlanSummary {
            outputs_change: plan
                .output_changes
                .values()
                .any(|change| !is_noop(&change.actions)),
            drifted: plan
                .resource_drift
                .into_iter()
                .filter(|resource| !is_noop(&resource.change.actions))
                .map(|resource| resource.address)
                .collect(),
            ..PlanSummary::default()
        };
        for resource in plan.resource_changes {
            let actions: Vec<&str> = resource.change.actions.iter().map(String::as_str).collect();
            let bucket = match actions.as_slice() {
                [] | ["no-op"] | ["read"] => continue,
                ["create"] => &mut summary.adds,
                ["delete"] => &mut summary.destroys,
                ["delete", "create"] | ["create", "delete"]
                    if resource.action_reason.as_deref() == Some(TAINTED) =>
                {
                    &mut summary.repairs
                }
                ["delete", "create"] | ["create", "delete"] => &mut summary.replaces,
                // "update", and anything newer that changes the resource in place or in state.
                _ => &mut summary.changes,
            };
            bucket.push(resource.address);
        }
        Ok(summary)
    }

    /// Nothing to apply: no resource and no output would change.
    pub fn is_empty(&self) -> bool {
        self.adds.is_empty()
            && self.changes.is_empty()
            && self.destroys.is_empty()
            && self.replaces.is_empty()
            && self.repairs.is_empty()
            && !self.outputs_change
    }

    /// One line for people: the counts, or "no changes".
    pub fn describe(&self) -> String {
        if self.is_empty() {
            return "no changes".to_owned();
        }
        let repairs = match self.repairs.len() {
            0 => String::new(),
            n => format!(", {n} unfinished to recreate"),
        };
        format!(
            "{} to add, {} to change, {} to replace, {} to destroy{repairs}{}",
            self.adds.len(),
            self.changes.len(),
            self.replaces.len(),
            self.destroys.len(),
            if self.outputs_change {
                " (outputs change)"
            } else {
                ""
            }
        )
    }

    /// Something would be destroyed or replaced: create-env refuses that without
    /// `--allow-replace`.
    pub fn is_destructive(&self) -> bool {
        !self.destroys.is_empty() || !self.replaces.is_empty()
    }
}

fn is_noop(actions: &[String]) -> bool {
    actions
        .iter()
        .all(|action| action == "no-op" || action == "read")
}

/// Describes a JSON error by category and position only: serde_json's messages can quote the
/// offending value, which may be secret.
pub(crate) fn json_error_position(err: &serde_json::Error) -> String {
    let category = match err.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected structure",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{category} at line {} column {}", err.line(), err.column())
}

#[derive(Deserialize)]
struct ShowPlan {
    #[serde(default)]
    resource_changes: Vec<ResourceChange>,
    #[serde(default)]
    resource_drift: Vec<ResourceChange>,
    #[serde(default)]
    /// Unlike resource changes, each output maps straight to its change.
    output_changes: std::collections::BTreeMap<String, Change>,
}

/// The `action_reason` of a replacement forced by a tainted resource.
const TAINTED: &str = "replace_because_tainted";

#[derive(Deserialize)]
struct ResourceChange {
    address: String,
    change: Change,
    #[serde(default)]
    action_reason: Option<String>,
}

#[derive(Deserialize)]
struct Change {
    actions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"{
      "format_version": "1.2",
      "variables": {"token": {"value": "canary-secret"}},
      "resource_changes": [
        {"address": "terraform_data.new", "change": {"actions": ["create"], "after": {"input": "x"}}},
        {"address": "terraform_data.same", "change": {"actions": ["no-op"]}},
        {"address": "data.x.y", "change": {"actions": ["read"]}},
        {"address": "terraform_data.edit", "change": {"actions": ["update"]}},
        {"address": "terraform_data.gone", "change": {"actions": ["delete"]}},
        {"address": "module.cluster.terraform_data.a", "change": {"actions": ["delete", "create"]}},
        {"address": "terraform_data.b", "change": {"actions": ["create", "delete"]}}
      ],
      "output_changes": {"kubeconfig": {"actions": ["no-op"], "before": "canary-secret"}}
    }"#;

    #[test]
    fn actions_are_sorted_into_kinds() {
        let summary = PlanSummary::from_show_json(PLAN).unwrap();
        assert_eq!(summary.adds, ["terraform_data.new"]);
        assert_eq!(summary.changes, ["terraform_data.edit"]);
        assert_eq!(summary.destroys, ["terraform_data.gone"]);
        assert_eq!(
            summary.replaces,
            ["module.cluster.terraform_data.a", "terraform_data.b"]
        );
        assert!(!summary.outputs_change);
        assert!(summary.is_destructive());
        assert!(!summary.is_empty());
    }

    #[test]
    fn a_tainted_resource_is_a_repair_not_a_destructive_replace() {
        let json = r#"{"resource_changes": [
          {"address": "terraform_data.slow", "action_reason": "replace_because_tainted",
           "change": {"actions": ["delete", "create"]}}
        ]}"#;
        let summary = PlanSummary::from_show_json(json).unwrap();
        assert_eq!(summary.repairs, ["terraform_data.slow"]);
        assert!(summary.replaces.is_empty());
        assert!(!summary.is_destructive());
        assert!(!summary.is_empty());
        assert!(summary.describe().contains("1 unfinished to recreate"));
    }

    #[test]
    fn an_output_change_alone_still_needs_an_apply() {
        let json = r#"{"output_changes": {"cluster_name": {"actions": ["create"]}}}"#;
        let summary = PlanSummary::from_show_json(json).unwrap();
        assert!(summary.outputs_change);
        assert!(!summary.is_empty());
        assert!(!summary.is_destructive());
        assert!(PlanSummary::from_show_json("{}").unwrap().is_empty());
    }

    #[test]
    fn drift_is_read_from_resource_drift() {
        let json = r#"{"resource_drift": [
          {"address": "terraform_data.edited", "change": {"actions": ["update"]}},
          {"address": "terraform_data.same", "change": {"actions": ["no-op"]}},
          {"address": "terraform_data.deleted", "change": {"actions": ["delete"]}}
        ]}"#;
        let summary = PlanSummary::from_show_json(json).unwrap();
        assert_eq!(
            summary.drifted,
            ["terraform_data.edited", "terraform_data.deleted"]
        );
        assert!(summary.is_empty(), "drift alone changes nothing to apply");
    }

    #[test]
    fn parse_errors_never_quote_the_json() {
        let bad = r#"{"resource_changes": [{"address": "canary-secret", "change": {"actions": "canary-secret"}}]}"#;
        let err = PlanSummary::from_show_json(bad).unwrap_err();
        assert!(!err.contains("canary"), "{err}");
        assert!(err.starts_with("unexpected structure at line 1"), "{err}");
    }
}
