//! Finding the Terraform (or OpenTofu) command and checking its version.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::TerraformError;
use super::plan::json_error_position;

/// The oldest release with everything relied on here (`-json` UI, `check` blocks,
/// `terraform_data`).
pub const MINIMUM_VERSION: Version = Version {
    major: 1,
    minor: 5,
    patch: 0,
};

/// Which implementation of the Terraform CLI is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Terraform,
    OpenTofu,
}

impl Flavor {
    /// Told apart by the command's file name (after following symlinks): both print the
    /// same `version -json` shape.
    pub fn of_command(path: &Path) -> Flavor {
        let resolved = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let stem = resolved.file_stem().map(|stem| stem.to_string_lossy());
        match stem {
            Some(stem) if stem.starts_with("tofu") => Flavor::OpenTofu,
            _ => Flavor::Terraform,
        }
    }

    /// The command's usual name, for command lines shown to the user.
    pub fn command(self) -> &'static Path {
        Path::new(match self {
            Flavor::Terraform => "terraform",
            Flavor::OpenTofu => "tofu",
        })
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Terraform => "Terraform",
            Flavor::OpenTofu => "OpenTofu",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Parses `1.11.4`, `v1.6.0` or `1.12.0-beta1` (the pre-release part is ignored).
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    /// Reads the version from the output of `version -json`.
    pub fn from_version_json(json: &str) -> Result<Version, String> {
        #[derive(Deserialize)]
        struct VersionJson {
            // OpenTofu prints the same key; the alias guards against a rename there.
            #[serde(alias = "tofu_version")]
            terraform_version: String,
        }
        let parsed: VersionJson =
            serde_json::from_str(json).map_err(|err| json_error_position(&err))?;
        Version::parse(&parsed.terraform_version)
            .ok_or_else(|| format!("unrecognised version {:?}", parsed.terraform_version))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The command to run: the explicit path when given, else `terraform`, else `tofu` on PATH.
pub(crate) fn locate(explicit: Option<&Path>) -> Result<PathBuf, TerraformError> {
    match explicit {
        Some(path) => which::which(path).map_err(|_| TerraformError::NotExecutable {
            path: path.to_path_buf(),
        }),
        None => which::which("terraform")
            .or_else(|_| which::which("tofu"))
            .map_err(|_| TerraformError::NotFound),
    }
}

/// Refuses versions older than [`MINIMUM_VERSION`].
pub(crate) fn check_version(path: &Path, version: Version) -> Result<(), TerraformError> {
    if version < MINIMUM_VERSION {
        return Err(TerraformError::TooOld {
            path: path.to_path_buf(),
            version: version.to_string(),
            minimum: MINIMUM_VERSION.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(
            Version::parse("1.11.4"),
            Some(Version {
                major: 1,
                minor: 11,
                patch: 4
            })
        );
        assert_eq!(Version::parse("v1.6.0-beta1").unwrap().to_string(), "1.6.0");
        assert_eq!(Version::parse("1.9").unwrap().to_string(), "1.9.0");
        assert_eq!(Version::parse("one.two"), None);
        assert!(Version::parse("1.4.7").unwrap() < MINIMUM_VERSION);
        assert!(Version::parse("1.10.0").unwrap() > MINIMUM_VERSION);
    }

    #[test]
    fn version_json_is_read() {
        let json = r#"{"terraform_version":"1.15.5","platform":"linux_amd64","provider_selections":{},"terraform_outdated":false}"#;
        assert_eq!(
            Version::from_version_json(json).unwrap().to_string(),
            "1.15.5"
        );
        let tofu = r#"{"tofu_version":"1.8.3","platform":"linux_amd64"}"#;
        assert_eq!(
            Version::from_version_json(tofu).unwrap().to_string(),
            "1.8.3"
        );
        assert!(Version::from_version_json("Terraform v1.11.4").is_err());
    }

    #[test]
    fn old_versions_are_refused_with_an_install_hint() {
        use crate::error::{Diagnose, ExitStatus};
        let path = Path::new("/usr/bin/terraform");
        let err = check_version(path, Version::parse("1.4.6").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/usr/bin/terraform is version 1.4.6; gitops-bootstrap needs 1.5.0 or newer"
        );
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(err.hint().unwrap().contains("install"));
        assert!(check_version(path, Version::parse("1.5.0").unwrap()).is_ok());
    }

    #[test]
    fn flavour_follows_the_command_name() {
        assert_eq!(
            Flavor::of_command(Path::new("/usr/bin/tofu")),
            Flavor::OpenTofu
        );
        assert_eq!(
            Flavor::of_command(Path::new("/usr/local/bin/terraform")),
            Flavor::Terraform
        );
    }

    #[test]
    fn a_missing_explicit_command_is_named() {
        let err = locate(Some(Path::new("/nonexistent/terraform"))).unwrap_err();
        assert!(matches!(err, TerraformError::NotExecutable { .. }), "{err}");
    }
}
