//! Age key custody: where an env's key lives on this machine, and the one rule that keeps
//! secrets readable: an env whose recipient is committed in Git is never given a new key.
//! A missing key is the user's to restore, with a hint saying where.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Diagnose, ExitStatus};

/// The variable sops and Flux users set to point at an age key file.
pub const SOPS_AGE_KEY_FILE: &str = "SOPS_AGE_KEY_FILE";

/// An env's age key: the recipient committed in `.sops.yaml` and the identity that decrypts.
pub struct AgeKey {
    /// `age1…`
    pub recipient: String,
    /// `AGE-SECRET-KEY-1…`
    pub identity: SecretString,
    /// The file the key was read from or written to.
    pub path: PathBuf,
    /// True when this run created the key.
    pub generated: bool,
}

impl fmt::Debug for AgeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeKey")
            .field("recipient", &self.recipient)
            .field("identity", &"[redacted]")
            .field("path", &self.path)
            .field("generated", &self.generated)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no age key for env {env} matching its committed recipient {recipient} in {}",
        path.display()
    )]
    MissingKey {
        env: String,
        recipient: String,
        path: PathBuf,
    },
    #[error("failed to read age key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("age key file {} holds no age identity", path.display())]
    NoIdentity { path: PathBuf },
    #[error(
        "age key file {} is readable by others (permissions {mode:04o}): it is refused, as ssh \
         refuses such private keys",
        path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("failed to write age key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot locate the age key of env {env}: neither SOPS_AGE_KEY_FILE, XDG_CONFIG_HOME nor HOME is set"
    )]
    NoLocation { env: String },
}

impl Diagnose for KeyError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            KeyError::Write { .. } => ExitStatus::Failure,
            KeyError::MissingKey { .. }
            | KeyError::Read { .. }
            | KeyError::TooOpen { .. }
            | KeyError::NoIdentity { .. }
            | KeyError::NoLocation { .. } => ExitStatus::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            KeyError::MissingKey { env, path, .. } => Some(format!(
                "the env's secrets in Git are encrypted to that recipient; put the env's key \
                 (the AGE-SECRET-KEY-1… line, e.g. from the cluster's flux-system/sops-age \
                 Secret or your team's vault) in {}, or point {SOPS_AGE_KEY_FILE} at a file \
                 holding it. A new key is never generated for {env}: it could not decrypt \
                 what is committed.",
                path.display()
            )),
            KeyError::NoIdentity { path } => Some(format!(
                "{} must hold a line starting with AGE-SECRET-KEY-1 (as written by age-keygen)",
                path.display()
            )),
            KeyError::NoLocation { .. } => Some(format!(
                "set {SOPS_AGE_KEY_FILE} to the path of the env's age key file"
            )),
            KeyError::Read { path, .. } => Some(format!(
                "{} must be a file you can read holding the env's age key (mode 0600); fix it, \
                 or point {SOPS_AGE_KEY_FILE} at one",
                path.display()
            )),
            KeyError::TooOpen { path, .. } => Some(format!(
                "the key decrypts every secret of the env: `chmod 600 {}`, and replace the key \
                 if others may have read it",
                path.display()
            )),
            KeyError::Write { .. } => None,
        }
    }
}

/// Where keys are looked up: the environment variables that decide it, passed explicitly so
/// tests (and callers) need not touch the process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyStore {
    pub sops_age_key_file: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl KeyStore {
    /// The key store of this process: `SOPS_AGE_KEY_FILE`, `XDG_CONFIG_HOME`, `HOME`.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        KeyStore {
            sops_age_key_file: var(SOPS_AGE_KEY_FILE),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            home: var("HOME"),
        }
    }

    /// `$SOPS_AGE_KEY_FILE`, else `$XDG_CONFIG_HOME/gitops-bootstrap/age/<env>.agekey`, else
    /// `~/.config/gitops-bootstrap/age/<env>.agekey`.
    pub fn locate(&self, env: &str) -> Result<PathBuf, KeyError> {
        if let Some(file) = &self.sops_age_key_file {
            return Ok(file.clone());
        }
        let config = match (&self.xdg_config_home, &self.home) {
            (Some(xdg), _) => xdg.clone(),
            (None, Some(home)) => home.join(".config"),
            (None, None) => {
                return Err(KeyError::NoLocation {
                    env: env.to_owned(),
                });
            }
        };
        Ok(config
            .join("gitops-bootstrap")
            .join("age")
            .join(format!("{env}.agekey")))
    }

    /// The key the env must use. With a recipient committed in Git: the identity in the key
    /// file that matches it, or [`KeyError::MissingKey`]. Without one: the first identity of
    /// the key file when it exists, else a new key written there (0600, directories 0700).
    pub fn settle(&self, env: &str, committed_recipient: Option<&str>) -> Result<AgeKey, KeyError> {
        let path = self.locate(env)?;
        match committed_recipient {
            Some(recipient) => {
                let missing = || KeyError::MissingKey {
                    env: env.to_owned(),
                    recipient: recipient.to_owned(),
                    path: path.clone(),
                };
                if !path.exists() {
                    return Err(missing());
                }
                read_identities(&path)?
                    .into_iter()
                    .find(|key| key.recipient == recipient.trim())
                    .ok_or_else(missing)
            }
            None if path.exists() => read_identities(&path)?
                .into_iter()
                .next()
                .ok_or(KeyError::NoIdentity { path }),
            None => generate(&path),
        }
    }
}

/// Every x25519 identity in an age key file (comments and other lines are skipped). A file of
/// the user's that group or others may read is refused, as ssh does.
fn read_identities(path: &Path) -> Result<Vec<AgeKey>, KeyError> {
    let metadata = std::fs::metadata(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if metadata.is_file() && metadata.uid() == nix::unistd::geteuid().as_raw() && mode & 0o077 != 0
    {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let contents = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let contents = SecretString::from(contents);
    Ok(contents
        .expose_secret()
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("AGE-SECRET-KEY-1"))
        .filter_map(|line| age::x25519::Identity::from_str(line).ok())
        .map(|identity| AgeKey {
            recipient: identity.to_public().to_string(),
            identity: SecretString::from(identity.to_string().expose_secret().to_owned()),
            path: path.to_owned(),
            generated: false,
        })
        .collect())
}

/// A new x25519 key in age-keygen's file format, written before it is returned so a key
/// that is used has always been saved.
fn generate(path: &Path) -> Result<AgeKey, KeyError> {
    let write_error = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = SecretString::from(identity.to_string().expose_secret().to_owned());
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(write_error)?;
    }
    let created = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    let contents = SecretString::from(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        secret.expose_secret()
    ));
    // create_new: never overwrite a key that appeared since we looked.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(contents.expose_secret().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    Ok(AgeKey {
        recipient,
        identity: secret,
        path: path.to_owned(),
        generated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_in(dir: &Path) -> KeyStore {
        KeyStore {
            sops_age_key_file: None,
            xdg_config_home: Some(dir.join("xdg")),
            home: Some(dir.join("home")),
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn locate_prefers_sops_age_key_file_then_xdg_then_home() {
        let mut store = KeyStore {
            sops_age_key_file: Some("/keys/all.agekey".into()),
            xdg_config_home: Some("/xdg".into()),
            home: Some("/home/me".into()),
        };
        assert_eq!(store.locate("dev").unwrap(), Path::new("/keys/all.agekey"));
        store.sops_age_key_file = None;
        assert_eq!(
            store.locate("dev").unwrap(),
            Path::new("/xdg/gitops-bootstrap/age/dev.agekey")
        );
        store.xdg_config_home = None;
        assert_eq!(
            store.locate("dev").unwrap(),
            Path::new("/home/me/.config/gitops-bootstrap/age/dev.agekey")
        );
        store.home = None;
        let err = store.locate("dev").unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }

    #[test]
    fn generates_a_0600_key_in_age_keygen_format() {
        let dir = tempfile::tempdir().unwrap();
        let key = store_in(dir.path()).settle("dev", None).unwrap();
        assert!(key.generated);
        assert!(key.recipient.starts_with("age1"));
        assert_eq!(
            key.path,
            dir.path().join("xdg/gitops-bootstrap/age/dev.agekey")
        );
        assert_eq!(mode(&key.path), 0o600);
        assert_eq!(mode(key.path.parent().unwrap()), 0o700);
        let contents = std::fs::read_to_string(&key.path).unwrap();
        let lines: Vec<&str> = contents.lines().collect();
        assert!(lines[0].starts_with("# created: "), "{}", lines[0]);
        assert_eq!(lines[1], format!("# public key: {}", key.recipient));
        assert_eq!(lines[2], key.identity.expose_secret());
    }

    #[test]
    fn reuses_the_local_key_before_and_after_it_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let first = store.settle("dev", None).unwrap();
        let again = store.settle("dev", None).unwrap();
        assert!(!again.generated);
        assert_eq!(again.recipient, first.recipient);
        let committed = store.settle("dev", Some(&first.recipient)).unwrap();
        assert!(!committed.generated);
        assert_eq!(
            committed.identity.expose_secret(),
            first.identity.expose_secret()
        );
    }

    #[test]
    fn picks_the_identity_matching_the_committed_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let file = dir.path().join("keys.txt");
        let contents = format!(
            "# other\n{}\n\n# wanted\n{}\n",
            other.to_string().expose_secret(),
            wanted.to_string().expose_secret()
        );
        write_private(&file, &contents);
        let store = KeyStore {
            sops_age_key_file: Some(file.clone()),
            ..store_in(dir.path())
        };
        let recipient = wanted.to_public().to_string();
        let key = store.settle("prod", Some(&recipient)).unwrap();
        assert_eq!(key.recipient, recipient);
        assert_eq!(key.path, file);
        assert_eq!(
            key.identity.expose_secret(),
            wanted.to_string().expose_secret()
        );
    }

    #[test]
    fn a_committed_recipient_without_its_key_is_bad_input_and_nothing_is_generated() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let stranger = age::x25519::Identity::generate().to_public().to_string();
        let err = store.settle("prod", Some(&stranger)).unwrap_err();
        assert!(matches!(err, KeyError::MissingKey { .. }), "{err}");
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        let path = store.locate("prod").unwrap();
        assert!(
            !path.exists(),
            "no key may be generated for an env that has one"
        );
        assert!(err.hint().unwrap().contains(&path.display().to_string()));

        store.settle("prod", None).unwrap();
        let err = store.settle("prod", Some(&stranger)).unwrap_err();
        assert!(matches!(err, KeyError::MissingKey { .. }), "{err}");
    }

    #[test]
    fn a_key_file_without_identities_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.agekey");
        write_private(&file, "# nothing here\n");
        let store = KeyStore {
            sops_age_key_file: Some(file),
            ..KeyStore::default()
        };
        let err = store.settle("dev", None).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }

    /// A key file as age-keygen writes it: the owner's alone.
    fn write_private(path: &Path, contents: &str) {
        std::fs::write(path, contents).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("open.agekey");
        let identity = age::x25519::Identity::generate();
        write_private(&file, identity.to_string().expose_secret());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = KeyStore {
            sops_age_key_file: Some(file.clone()),
            ..KeyStore::default()
        };
        let err = store.settle("dev", None).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        assert!(err.to_string().contains("permissions 0644"), "{err}");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains(&format!("chmod 600 {}", file.display())),
            "{hint}"
        );
    }

    #[test]
    fn debug_never_shows_the_identity() {
        let canary = "AGE-SECRET-KEY-1CANARYCANARYCANARY";
        let key = AgeKey {
            recipient: "age1recipient".into(),
            identity: SecretString::from(canary),
            path: "/k".into(),
            generated: false,
        };
        let debug = format!("{key:?}");
        assert!(!debug.contains("CANARY"), "{debug}");
        assert!(debug.contains("age1recipient"));
    }
}
