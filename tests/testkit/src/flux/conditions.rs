//! Flux's status conventions as small helpers: `Ready` / `Reconciling` / `Stalled` conditions
//! (kstatus "abnormal-true" polarity for the last two), Go-style durations, readiness checks.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::types::FluxStatus;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const HEALTHY: &str = "Healthy";

pub const PROGRESSING: &str = "Progressing";
/// Ready's message while a pass is under way, as the Flux controllers write it.
pub const IN_PROGRESS: &str = "Reconciliation in progress";

/// Sets a condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    let condition = Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Ready=True: the reconciliation finished and succeeded.
pub fn mark_ready(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
) {
    mark_finished(conditions, "True", generation, reason, message);
}

/// Ready=False: this attempt failed; the controller retries.
pub fn mark_failed(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
) {
    mark_finished(conditions, "False", generation, reason, message);
}

/// An attempt ended (neither reconciling nor stalled) with Ready=`ready`.
fn mark_finished(
    conditions: &mut Vec<Condition>,
    ready: &str,
    generation: Option<i64>,
    reason: &str,
    message: &str,
) {
    remove_condition(conditions, RECONCILING);
    remove_condition(conditions, STALLED);
    set_condition(conditions, READY, ready, reason, message, generation);
}

/// Ready=False and Stalled=True: nothing changes until the spec does.
pub fn mark_stalled(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
    ready_reason: &str,
    ready_message: &str,
) {
    remove_condition(conditions, RECONCILING);
    set_condition(conditions, STALLED, "True", reason, message, generation);
    set_condition(
        conditions,
        READY,
        "False",
        ready_reason,
        ready_message,
        generation,
    );
}

/// Ready=Unknown and Reconciling=True: work under way (applied, waiting for health).
pub fn mark_progressing(conditions: &mut Vec<Condition>, generation: Option<i64>, message: &str) {
    remove_condition(conditions, STALLED);
    set_condition(
        conditions,
        RECONCILING,
        "True",
        PROGRESSING,
        message,
        generation,
    );
    set_condition(
        conditions,
        READY,
        "Unknown",
        PROGRESSING,
        message,
        generation,
    );
}

/// Ready=True for the current generation, as flux2 `objectReconciled` reads it.
pub fn is_ready<S: FluxStatus>(status: Option<&S>, generation: Option<i64>) -> bool {
    status.is_some_and(|s| {
        s.observed_generation() == generation
            && find(s.conditions(), READY).is_some_and(|c| {
                c.status == "True" && c.observed_generation.is_none_or(|g| Some(g) == generation)
            })
    })
}

/// Stalled=True: the object will not progress on its own.
pub fn is_stalled<S: FluxStatus>(status: Option<&S>) -> bool {
    status.is_some_and(|s| find(s.conditions(), STALLED).is_some_and(|c| c.status == "True"))
}

/// The message of the Ready condition, for "why is it not ready" reports.
pub fn ready_message<S: FluxStatus>(status: Option<&S>) -> String {
    status
        .and_then(|s| find(s.conditions(), READY))
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_else(|| "no Ready condition yet".to_owned())
}

/// Parses a Go duration (`1m0s`, `10m`, `30s`, `1h30m`, `500ms`) as Flux's specs use them.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += Duration::from_secs_f64(value * seconds);
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A duration for log-like messages, as Go prints it (`30s`, `2m0s`).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs == 0 {
        return format!("{}ms", duration.as_millis());
    }
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flux::types::KustomizationStatus;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("1m0s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn transition_time_is_kept_while_status_is_unchanged() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, READY, "False", "A", "first", Some(1));
        let first = conditions[0].last_transition_time.clone();
        std::thread::sleep(Duration::from_millis(2));
        set_condition(&mut conditions, READY, "False", "B", "second", Some(1));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, first);
        assert_eq!(conditions[0].reason, "B");
        set_condition(&mut conditions, READY, "True", "C", "third", Some(1));
        assert_ne!(conditions[0].last_transition_time, first);
    }

    #[test]
    fn ready_counts_only_for_the_observed_generation() {
        let mut status = KustomizationStatus {
            observed_generation: Some(1),
            ..Default::default()
        };
        mark_progressing(&mut status.conditions, Some(1), "applying");
        assert!(!is_ready(Some(&status), Some(1)));
        assert!(find(&status.conditions, RECONCILING).is_some());
        mark_ready(
            &mut status.conditions,
            Some(1),
            "ReconciliationSucceeded",
            "Applied revision: main@sha1:abc",
        );
        assert!(is_ready(Some(&status), Some(1)));
        assert!(find(&status.conditions, RECONCILING).is_none());
        assert!(!is_ready(Some(&status), Some(2)));
        assert!(!is_ready::<KustomizationStatus>(None, Some(1)));
        mark_stalled(
            &mut status.conditions,
            Some(1),
            "RetriesExceeded",
            "Failed to install after 1 attempt(s)",
            "InstallFailed",
            "boom",
        );
        assert!(is_stalled(Some(&status)));
        assert!(!is_ready(Some(&status), Some(1)));
        assert_eq!(ready_message(Some(&status)), "InstallFailed: boom");
    }
}
