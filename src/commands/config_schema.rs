//! `config schema`: the JSON schema of the configuration file, for editors and CI checks.

use super::CommandOutput;
use crate::error::ExitStatus;

pub fn run() -> CommandOutput {
    let schema = crate::config::json_schema();
    let text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    CommandOutput::new(ExitStatus::Success, &schema, text)
}
