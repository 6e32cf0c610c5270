//! The Flux releases the testkit can install, how a semver range picks one (as the operator
//! matches `spec.distribution.version`), and which API versions each release serves.

/// Releases the stand-ins play, oldest first. The operator refuses any other version, as the
/// real one refuses a version its manifests do not hold.
pub const RELEASES: &[&str] = &[
    "v2.3.0", "v2.4.0", "v2.5.0", "v2.5.1", "v2.6.0", "v2.6.1", "v2.6.2", "v2.6.3", "v2.6.4",
    "v2.7.0", "v2.7.1", "v2.7.2", "v2.7.3", "v2.7.4", "v2.7.5", "v2.8.0", "v2.8.1", "v2.8.2",
    "v2.9.0", "v2.9.1", "v2.10.0",
];

/// `(major, minor, patch)` of `v2.4.0` / `2.4.0`.
pub fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.trim_start_matches('v').splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    Some((major, minor, patch))
}

/// One part of a range: a number, or `x`/`X`/`*` (any).
fn part_matches(pattern: Option<&str>, value: u64) -> Result<bool, ()> {
    match pattern {
        None | Some("x" | "X" | "*") => Ok(true),
        Some(number) => number.parse::<u64>().map(|n| n == value).map_err(|_| ()),
    }
}

/// The newest release matching `range` (`2.x`, `2.4.x`, `2.4.0`, `v2.4.0`, `*`), with the
/// operator's errors: `semver '<range>' parse error: …` or `no match found for semver: <range>`.
pub fn match_version(range: &str) -> Result<&'static str, String> {
    let trimmed = range.trim().trim_start_matches(['v', '=']);
    let parts: Vec<&str> = trimmed.split('.').collect();
    let well_formed = !trimmed.is_empty()
        && parts.len() <= 3
        && parts.iter().all(|p| {
            matches!(*p, "x" | "X" | "*")
                || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
    if !well_formed {
        return Err(format!(
            "semver '{range}' parse error: improper constraint: {range}"
        ));
    }
    RELEASES
        .iter()
        .rev()
        .copied()
        .find(|release| {
            let Some((major, minor, patch)) = parse(release) else {
                return false;
            };
            [
                part_matches(parts.first().copied(), major),
                part_matches(parts.get(1).copied(), minor),
                part_matches(parts.get(2).copied(), patch),
            ]
            .iter()
            .all(|m| m == &Ok(true))
        })
        .ok_or_else(|| format!("no match found for semver: {range}"))
}

/// The older API versions a release still serves beside the GA one, per CRD group: Flux 2.8
/// removed source's and kustomize's `v1beta2` and helm's `v2beta1`/`v2beta2`.
pub fn deprecated_versions(flux_version: &str, group: &str) -> &'static [&'static str] {
    let removed = parse(flux_version).is_some_and(|v| v >= (2, 8, 0));
    if removed {
        return &[];
    }
    match group {
        "source.toolkit.fluxcd.io" | "kustomize.toolkit.fluxcd.io" => &["v1beta2"],
        "helm.toolkit.fluxcd.io" => &["v2beta1", "v2beta2"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_pick_the_newest_matching_release() {
        assert_eq!(match_version("2.4.x"), Ok("v2.4.0"));
        assert_eq!(match_version("v2.4.0"), Ok("v2.4.0"));
        assert_eq!(match_version("2.6.x"), Ok("v2.6.4"));
        assert_eq!(match_version("2.x"), Ok(*RELEASES.last().unwrap()));
        assert_eq!(match_version("*"), Ok(*RELEASES.last().unwrap()));
        assert_eq!(
            match_version("2.99.x"),
            Err("no match found for semver: 2.99.x".to_owned())
        );
        assert!(match_version("latest").unwrap_err().contains("parse error"));
    }

    #[test]
    fn betas_are_served_until_flux_2_8() {
        assert_eq!(
            deprecated_versions("v2.4.0", "kustomize.toolkit.fluxcd.io"),
            &["v1beta2"]
        );
        assert_eq!(
            deprecated_versions("v2.7.5", "helm.toolkit.fluxcd.io"),
            &["v2beta1", "v2beta2"]
        );
        assert!(deprecated_versions("v2.8.0", "source.toolkit.fluxcd.io").is_empty());
    }
}
