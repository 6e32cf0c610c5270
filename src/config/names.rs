//! The shapes of names and values the config accepts. Each check returns the reason a value is
//! rejected, for the loader to put next to the key and file position.

/// Env and profile names end up in Kubernetes object names, directory names and Git paths:
/// DNS-1123 labels (lowercase letters, digits and `-`, at most 63, starting and ending with a
/// letter or digit) are safe in all three.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty()
        || name.len() > 63
        || !valid_chars
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(format!(
            "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending \
             with a letter or digit, at most 63 characters), not `{name}`"
        ));
    }
    Ok(())
}

/// A profile is a directory under the repository's `profiles_dir`: any single path segment
/// Flux can point a Kustomization at (`_base`, `home`, `eu-prod`), never one that could leave
/// that directory.
pub fn check_profile_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if name.is_empty() || name == "." || name == ".." || !valid_chars {
        return Err(format!(
            "must be a directory name (letters, digits, '-', '_' and '.', not `.` or `..`), \
             not `{name}`"
        ));
    }
    Ok(())
}

/// Names of the objects the tool writes into `flux-system` (Kubernetes DNS-1123 subdomains).
pub fn check_object_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| check_dns_label(label).is_ok());
    if !valid {
        return Err(format!(
            "must be a Kubernetes object name (lowercase letters, digits, '-' and '.'), not \
             `{name}`"
        ));
    }
    Ok(())
}

/// The NAME of an environment variable, never a value. Upper case only: a pasted token or
/// password is all but never upper case, so this also catches a secret put where its name
/// belongs.
pub fn check_env_var_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
        // Never echo the value: it may be the secret itself.
        return Err(
            "must be the NAME of an environment variable (A-Z, 0-9 and '_', not \
                    starting with a digit), not a secret value"
                .to_owned(),
        );
    }
    Ok(())
}

/// A Terraform identifier (variable names): letters, digits, `_` and `-`, not starting with a
/// digit or `-`.
pub fn check_terraform_identifier(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!(
            "must be a Terraform name (letters, digits, '_' and '-', starting with a letter \
             or '_'), not `{name}`"
        ));
    }
    Ok(())
}

/// A cluster's name: cloud providers' rules (EKS, AKS, GKE) and a safe path segment. Letters,
/// digits, `-`, `_` and `.`, starting with a letter or digit, at most 100 characters, no `..`.
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    let starts_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if !valid_chars || !starts_ok || name.len() > 100 || name.contains("..") {
        let shown: String = name.chars().take(40).collect();
        return Err(format!(
            "must be a cluster name (letters, digits, '-', '_' and '.', starting with a letter \
             or digit, no '..', at most 100 characters), not `{shown}`{}",
            if shown.len() < name.len() { "…" } else { "" }
        ));
    }
    Ok(())
}

/// A Flux substitution variable (a key of the contract's ConfigMap):
/// `^[_a-zA-Z][_a-zA-Z0-9]*$`.
pub fn check_variable_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!(
            "must be a Flux substitution variable name (letters, digits and '_', not starting \
             with a digit), not `{name}`"
        ));
    }
    Ok(())
}

/// Flux release tags: `v2.<minor>.<patch>`.
pub fn check_flux_version(version: &str) -> Result<(), String> {
    let numbers: Option<Vec<&str>> = version
        .strip_prefix("v2.")
        .map(|rest| rest.split('.').collect());
    let valid = numbers.is_some_and(|parts| {
        parts.len() == 2
            && parts
                .iter()
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    });
    if !valid {
        return Err(format!(
            "must be a Flux release `v2.<minor>.<patch>` such as v2.4.0, not `{version}`"
        ));
    }
    Ok(())
}

/// The minor of a Flux release `v2.<minor>.<patch>` (the `v` optional); `None` when not
/// that shape.
pub fn flux_minor(version: &str) -> Option<u32> {
    let mut parts = version.trim_start_matches('v').split('.');
    (parts.next()? == "2").then_some(())?;
    parts.next()?.parse().ok()
}

/// How the tool talks to a Git repository, from the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitTransport {
    Http,
    Ssh,
}

/// Repository URLs must carry an explicit `https://`, `http://` or `ssh://` scheme; the scp-like
/// `git@host:org/repo` form is rejected with the equivalent `ssh://` spelling.
pub fn check_repository_url(url: &str) -> Result<GitTransport, String> {
    // Before parsing: `host:8443/org/repo` parses as a URL of scheme `host`.
    if !url.contains("://") {
        let suggestion = if has_port(url) {
            format!("write `{url}` as https://{url}")
        } else if is_scp_like(url) {
            format!("write `{url}` as ssh://{}", url.replacen(':', "/", 1))
        } else if looks_like_host_and_path(url) {
            format!("write `{url}` as https://{url}")
        } else {
            // Not echoed: a malformed URL may still carry a token.
            "give a URL such as https://git.example.com/org/fleet.git".to_owned()
        };
        return Err(format!("has no scheme: {suggestion}"));
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        // Not echoed: a malformed URL may still carry a token.
        Err(err) => return Err(format!("must be a URL ({err})")),
    };
    let transport = match parsed.scheme() {
        "https" | "http" => GitTransport::Http,
        "ssh" => GitTransport::Ssh,
        other => {
            return Err(format!(
                "has scheme `{other}`: use https://, http:// or ssh://"
            ));
        }
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    // `https://<token>@host/…` is a common way to paste a token; ssh's user name is not secret.
    let has_credentials = parsed.password().is_some()
        || (transport == GitTransport::Http && !parsed.username().is_empty());
    if has_credentials {
        return Err(
            "carries credentials: they go in [repository.push] (token_env), never \
                    in the file"
                .to_owned(),
        );
    }
    Ok(transport)
}

/// `host:8443/path`: what follows the colon is a port, not an scp-like path.
fn has_port(url: &str) -> bool {
    url.split_once(':').is_some_and(|(host, rest)| {
        let port = rest.split('/').next().unwrap_or_default();
        !host.is_empty()
            && !host.contains('@')
            && !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `git.example.com/org/repo.git`: a dotted host name followed by a path.
fn looks_like_host_and_path(url: &str) -> bool {
    url.split_once('/').is_some_and(|(host, _)| {
        host.contains('.')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    })
}

fn is_scp_like(url: &str) -> bool {
    !url.contains("://")
        && url
            .split_once(':')
            .is_some_and(|(host, _)| !host.is_empty())
}

/// A path inside the repository: relative, `/`-separated, no `..`. Returns it without leading
/// or trailing slashes (`""` for the repository root).
pub fn normalize_repo_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let bad_segment = trimmed
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad_segment || trimmed.contains('\\') {
        return Err(format!(
            "must be a relative path inside the repository, without `.`, `..`, `//` or \
             backslashes, not `{path}`"
        ));
    }
    Ok(trimmed.to_owned())
}

/// A branch name Git and Flux both accept (a subset of `git check-ref-format`).
pub fn check_branch(branch: &str) -> Result<(), String> {
    let bad = branch.is_empty()
        || branch.starts_with('-')
        || branch.starts_with('/')
        || branch.ends_with('/')
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("//")
        || branch.contains("@{")
        || branch
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        return Err(format!("must be a valid Git branch name, not `{branch}`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["dev", "prod-eu-1", "a", &"x".repeat(63)] {
            assert!(check_dns_label(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Dev",
            "dev_1",
            "-dev",
            "dev-",
            "a..b",
            "a/b",
            "a.b",
            &"x".repeat(64),
        ] {
            let err = check_dns_label(bad).unwrap_err();
            assert!(err.contains("DNS-1123"), "{bad}: {err}");
        }
    }

    #[test]
    fn profile_names_are_path_segments() {
        for good in ["standard", "_base", "home", "eu.prod", "Team-A"] {
            assert!(check_profile_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "a b", "../x"] {
            assert!(check_profile_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn object_names() {
        assert!(check_object_name("platform-namespace-vars").is_ok());
        assert!(check_object_name("vars.example.com").is_ok());
        for bad in ["", "Vars", "a_b", "a..b", "-a"] {
            assert!(check_object_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_var_names_never_echo_the_value() {
        assert!(check_env_var_name("GITHUB_TOKEN").is_ok());
        assert!(check_env_var_name("_X1").is_ok());
        for bad in ["ghp_s3cretvalue", "1TOKEN", "", "MY-TOKEN", "my_token"] {
            let err = check_env_var_name(bad).unwrap_err();
            assert!(err.contains("NAME of an environment variable"));
            assert!(bad.is_empty() || !err.contains(bad), "{err}");
        }
    }

    #[test]
    fn terraform_identifiers() {
        assert!(check_terraform_identifier("db_password").is_ok());
        assert!(check_terraform_identifier("node-count").is_ok());
        assert!(check_terraform_identifier("1x").is_err());
        assert!(check_terraform_identifier("a b").is_err());
    }

    #[test]
    fn flux_versions_give_their_minor() {
        assert_eq!(flux_minor("v2.4.0"), Some(4));
        assert_eq!(flux_minor("2.2.1"), Some(2));
        assert_eq!(flux_minor("v2.10.1"), Some(10));
        assert_eq!(flux_minor("v3.0.0"), None);
        assert_eq!(flux_minor("latest"), None);
    }

    #[test]
    fn flux_versions() {
        assert!(check_flux_version("v2.4.0").is_ok());
        assert!(check_flux_version("v2.10.12").is_ok());
        for bad in ["2.4.0", "v1.2.3", "v2.4", "v2.4.0-rc.1", "v2.x.0", "v2..0"] {
            assert!(check_flux_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repository_urls() {
        assert_eq!(
            check_repository_url("https://github.com/org/fleet.git"),
            Ok(GitTransport::Http)
        );
        assert_eq!(
            check_repository_url("http://127.0.0.1:8080/fleet.git"),
            Ok(GitTransport::Http)
        );
        assert_eq!(
            check_repository_url("ssh://git@github.com/org/fleet.git"),
            Ok(GitTransport::Ssh)
        );
        let scp = check_repository_url("git@github.com:org/fleet.git").unwrap_err();
        assert!(scp.contains("ssh://git@github.com/org/fleet.git"), "{scp}");
        for (bare, suggested) in [
            (
                "git.example.com:8443/org/fleet.git",
                "https://git.example.com:8443/org/fleet.git",
            ),
            (
                "10.0.0.7:3000/org/fleet.git",
                "https://10.0.0.7:3000/org/fleet.git",
            ),
            (
                "git.example.com/org/fleet.git",
                "https://git.example.com/org/fleet.git",
            ),
        ] {
            let err = check_repository_url(bare).unwrap_err();
            assert!(err.contains(suggested), "{bare}: {err}");
            assert!(!err.contains("ssh://"), "{bare}: {err}");
        }
        let ftp = check_repository_url("ftp://host/fleet").unwrap_err();
        assert!(ftp.contains("scheme `ftp`"), "{ftp}");
        let file = check_repository_url("file:///tmp/fleet").unwrap_err();
        assert!(file.contains("scheme `file`"), "{file}");
        for with_secret in [
            "https://me:hunter2@host/fleet",
            "https://hunter2@host/fleet",
        ] {
            let err = check_repository_url(with_secret).unwrap_err();
            assert!(err.contains("carries credentials"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn cluster_names() {
        for good in ["dev", "prod-eu_1", "team.a", "A1"] {
            assert_eq!(check_cluster_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "my cluster",
            "a/b",
            "..",
            "a..b",
            "-x",
            ".x",
            &"x".repeat(101),
            "é",
        ] {
            assert!(check_cluster_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repository_paths() {
        assert_eq!(normalize_repo_path(""), Ok(String::new()));
        assert_eq!(normalize_repo_path("/fleet/"), Ok("fleet".to_owned()));
        assert_eq!(normalize_repo_path("a/b"), Ok("a/b".to_owned()));
        for bad in ["../x", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(normalize_repo_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn branches() {
        assert!(check_branch("main").is_ok());
        assert!(check_branch("release/1.x").is_ok());
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a:b", "/a"] {
            assert!(check_branch(bad).is_err(), "{bad}");
        }
    }
}
