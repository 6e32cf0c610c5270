//! Masks the secret variable values of an environment in what Terraform prints back.
//!
//! Terraform marks sensitive values in its own rendering, but not everywhere: a failing
//! `local-exec` provisioner quotes the command's output in its diagnostic, whatever it echoed.
//! Every diagnostic is therefore scrubbed of the values this tool passed as secrets before it
//! reaches an event callback or an error.

use secrecy::{ExposeSecret, SecretString};

use super::events::{Diagnostic, TfEvent};

const MASK: &str = "(sensitive value)";

/// The secret texts to mask: each secret variable's value and, for HCL/JSON literals such as
/// `{"token" = "abc"}`, each string inside it (that is what shows up in output).
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    fragments: Vec<SecretString>,
}

impl Redactor {
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Redactor {
        let mut fragments: Vec<String> = Vec::new();
        for secret in secrets {
            let value = secret.expose_secret();
            fragments.push(value.to_owned());
            if let Ok(body) = hcl::parse(&format!("value = {value}\n"))
                && let Some(attribute) = body.attributes().next()
            {
                collect_strings(attribute.expr(), &mut fragments);
            }
        }
        fragments.retain(|fragment| !fragment.trim().is_empty());
        // Longest first, so a value containing another is masked whole.
        fragments.sort_by_key(|fragment| std::cmp::Reverse(fragment.len()));
        fragments.dedup();
        Redactor {
            fragments: fragments.into_iter().map(SecretString::from).collect(),
        }
    }

    pub(crate) fn text(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for fragment in &self.fragments {
            let fragment = fragment.expose_secret();
            if text.contains(fragment) {
                text = text.replace(fragment, MASK);
            }
        }
        text
    }

    pub(crate) fn diagnostic(&self, diagnostic: Diagnostic) -> Diagnostic {
        Diagnostic {
            summary: self.text(&diagnostic.summary),
            detail: self.text(&diagnostic.detail),
            ..diagnostic
        }
    }

    pub(crate) fn event(&self, event: TfEvent) -> TfEvent {
        match event {
            TfEvent::Diagnostic(diagnostic) => TfEvent::Diagnostic(self.diagnostic(diagnostic)),
            other => other,
        }
    }
}

fn collect_strings(expr: &hcl::Expression, out: &mut Vec<String>) {
    match expr {
        hcl::Expression::String(text) => out.push(text.clone()),
        hcl::Expression::Array(items) => {
            for item in items {
                collect_strings(item, out);
            }
        }
        hcl::Expression::Object(object) => {
            for value in object.values() {
                collect_strings(value, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terraform::events::Severity;

    #[test]
    fn values_and_strings_inside_literals_are_masked() {
        let secrets = [
            SecretString::from("canary-plain"),
            SecretString::from(r#"{"token" = "canary-inner", list = ["canary-listed"]}"#),
            SecretString::from(""),
        ];
        let redactor = Redactor::new(&secrets);
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            summary: "local-exec provisioner error".into(),
            detail: "exit status 3. Output: canary-plain canary-inner canary-listed\n".into(),
            address: None,
        };
        let event = redactor.event(TfEvent::Diagnostic(diagnostic));
        let TfEvent::Diagnostic(diagnostic) = event else {
            panic!("still a diagnostic");
        };
        assert_eq!(
            diagnostic.detail,
            "exit status 3. Output: (sensitive value) (sensitive value) (sensitive value)\n"
        );
        assert_eq!(diagnostic.summary, "local-exec provisioner error");
    }

    #[test]
    fn a_value_containing_another_is_masked_whole() {
        let secrets = [SecretString::from("abc"), SecretString::from("abcdef")];
        assert_eq!(
            Redactor::new(&secrets).text("x abcdef y"),
            "x (sensitive value) y"
        );
    }
}
