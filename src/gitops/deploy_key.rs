//! The per-env ssh deploy key: ed25519, written once (0600) and reused, so the public key the
//! user registered stays valid across runs.

use std::path::Path;

use secrecy::SecretString;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::GitError;

const COMMENT: &str = "gitops-bootstrap deploy key";

/// A deploy key: the public half to register (read-only) on the repository, the private half
/// for Flux's `flux-system` Secret.
#[derive(Debug, Clone)]
pub struct DeployKey {
    /// `ssh-ed25519 AAAA… gitops-bootstrap deploy key`
    pub public_openssh: String,
    /// The private key in OpenSSH format.
    pub private: SecretString,
}

/// Reads the key at `path`, or generates one there (parent directories created, file 0600).
pub fn generate_deploy_key(path: &Path) -> Result<DeployKey, GitError> {
    let failed = |op: &'static str, detail: String| GitError::DeployKey {
        op,
        path: path.to_path_buf(),
        detail,
    };
    let key = if path.exists() {
        PrivateKey::read_openssh_file(path).map_err(|err| failed("read", err.to_string()))?
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| failed("create", err.to_string()))?;
        }
        let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
            .map_err(|err| failed("generate", err.to_string()))?;
        key.set_comment(COMMENT);
        key.write_openssh_file(path, LineEnding::LF)
            .map_err(|err| failed("write", err.to_string()))?;
        key
    };
    let public_openssh = key
        .public_key()
        .to_openssh()
        .map_err(|err| failed("encode", err.to_string()))?;
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|err| failed("encode", err.to_string()))?;
    Ok(DeployKey {
        public_openssh,
        private: SecretString::from(private.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env/deploy-key");
        let first = generate_deploy_key(&path).unwrap();
        assert!(first.public_openssh.starts_with("ssh-ed25519 "));
        assert!(first.public_openssh.ends_with(COMMENT));
        assert!(
            first
                .private
                .expose_secret()
                .contains("OPENSSH PRIVATE KEY")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = generate_deploy_key(&path).unwrap();
        assert_eq!(first.public_openssh, second.public_openssh);
        assert!(!format!("{second:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn an_unreadable_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deploy-key");
        std::fs::write(&path, "not a key").unwrap();
        let err = generate_deploy_key(&path).unwrap_err();
        assert!(err.to_string().contains("deploy-key"), "{err}");
    }
}
