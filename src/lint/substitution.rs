//! Flux's variable substitution (drone/envsubst, as kustomize-controller's `postBuild` runs
//! it): finding `${var}` references and filling them in. Shared by the builds (which
//! substitute) and the `unresolved-variable` rule (which checks what stays unfilled).

use std::collections::BTreeMap;

use regex::Regex;

/// Flux (drone/envsubst) syntax: `${name}`, `${name:=default}`, `${name:-default}`;
/// `$${…}` is an escaped, literal `${…}`.
fn pattern() -> Regex {
    Regex::new(r"\$?\$\{([^}:]*)(?::[=-]([^}]*))?\}").expect("static regex")
}

/// A `${…}` reference in a text.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference<'a> {
    pub name: &'a str,
    pub default: Option<&'a str>,
    /// The reference as written, e.g. `${dns_domain:=example.com}`.
    pub text: &'a str,
}

pub fn references(text: &str) -> Vec<Reference<'_>> {
    pattern()
        .captures_iter(text)
        .filter(|captures| !captures[0].starts_with("$$"))
        .map(|captures| Reference {
            name: captures.get(1).map_or("", |m| m.as_str()),
            default: captures.get(2).map(|m| m.as_str()),
            text: captures.get(0).map_or("", |m| m.as_str()),
        })
        .collect()
}

/// The text with known variables and defaults filled in; others are left as written.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    pattern()
        .replace_all(text, |captures: &regex::Captures| {
            let whole = &captures[0];
            if let Some(escaped) = whole.strip_prefix('$')
                && escaped.starts_with('$')
            {
                return escaped.to_owned();
            }
            let name = &captures[1];
            vars.get(name)
                .cloned()
                .or_else(|| captures.get(2).map(|m| m.as_str().to_owned()))
                .unwrap_or_else(|| whole.to_owned())
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_keep_defaults_and_skip_escapes() {
        let found = references("a: ${x}\nb: ${y:=1}\nc: $${z}\nd: ${w:-two}\n");
        let names: Vec<(&str, Option<&str>)> = found.iter().map(|r| (r.name, r.default)).collect();
        assert_eq!(names, [("x", None), ("y", Some("1")), ("w", Some("two"))]);
    }

    #[test]
    fn substitution_fills_values_then_defaults_and_keeps_the_rest() {
        let vars = BTreeMap::from([("root".to_owned(), "./profiles".to_owned())]);
        assert_eq!(
            substitute("${root:=./p}/apps ${n:=3} ${gone} $${lit}", &vars),
            "./profiles/apps 3 ${gone} ${lit}"
        );
    }
}
