//! Age key custody: where an env's key lives on this machine, and the one rule that keeps
//! secrets readable: an env whose recipient is committed in Git is never given a new key.
//! A missing key is the user's to restore, with a hint saying where. A key belongs to one env
//! of one repository (two repositories may each have an env `dev`): its file is named after
//! both, and a key of the former layout (`age/<env>.agekey`, named after the env alone) is
//! taken over only when the env's committed recipient proves it is this env's.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use crate::config::EnvConfig;
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
    /// How this run came by the key.
    pub origin: KeyOrigin,
}

/// How a run came by an env's age key: what the user is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key matching the recipient committed in Git.
    Committed,
    /// No recipient is committed yet and the key file was already there (an earlier run that
    /// stopped before its commit made it, or the user put it there).
    Reused,
    /// Created by this run.
    Generated,
    /// The key matching the committed recipient, found in a file of the former layout and
    /// copied to the env's own file.
    Adopted { from: PathBuf },
}

impl fmt::Debug for AgeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeKey")
            .field("recipient", &self.recipient)
            .field("identity", &"[redacted]")
            .field("path", &self.path)
            .field("origin", &self.origin)
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

    /// `$SOPS_AGE_KEY_FILE`, else `<config>/gitops-bootstrap/age/<host>/<repository>/<env>.agekey`
    /// (`<config>`: `$XDG_CONFIG_HOME`, else `~/.config`).
    pub fn locate(&self, owner: &KeyOwner) -> Result<PathBuf, KeyError> {
        if let Some(file) = &self.sops_age_key_file {
            return Ok(file.clone());
        }
        Ok(self
            .age_dir(&owner.env)?
            .join(&owner.repository)
            .join(format!("{}.agekey", owner.env)))
    }

    /// The key file of the former layout, named after the env alone (`age/<env>.agekey`);
    /// `None` with `$SOPS_AGE_KEY_FILE`, which names the one file to use.
    fn former(&self, env: &str) -> Result<Option<PathBuf>, KeyError> {
        if self.sops_age_key_file.is_some() {
            return Ok(None);
        }
        Ok(Some(self.age_dir(env)?.join(format!("{env}.agekey"))))
    }

    /// The env's key file as it is on this machine: its own, else one of the former layout.
    pub fn existing(&self, owner: &KeyOwner) -> Option<PathBuf> {
        let own = self.locate(owner).ok()?;
        if own.exists() {
            return Some(own);
        }
        self.former(&owner.env)
            .ok()
            .flatten()
            .filter(|path| path.exists())
    }

    fn age_dir(&self, env: &str) -> Result<PathBuf, KeyError> {
        let config = match (&self.xdg_config_home, &self.home) {
            (Some(xdg), _) => xdg.clone(),
            (None, Some(home)) => home.join(".config"),
            (None, None) => {
                return Err(KeyError::NoLocation {
                    env: env.to_owned(),
                });
            }
        };
        Ok(config.join("gitops-bootstrap").join("age"))
    }

    /// The key the env must use. With a recipient committed in Git: [`KeyStore::committed`]'s,
    /// copied to the env's own file when it was found in a file of the former layout. Without
    /// one: the first identity of the env's key file when it exists, else a new key written
    /// there (0600, directories 0700); a key of the former layout is never taken without a
    /// committed recipient proving it is this env's (it may be another repository's env of
    /// the same name).
    pub fn settle(&self, owner: &KeyOwner, committed: Option<&str>) -> Result<AgeKey, KeyError> {
        let path = self.locate(owner)?;
        let Some(recipient) = committed else {
            if !path.exists() {
                return generate(&path);
            }
            let key = read_identities(&path)?.into_iter().next();
            let key = key.ok_or(KeyError::NoIdentity { path })?;
            return Ok(AgeKey {
                origin: KeyOrigin::Reused,
                ..key
            });
        };
        let key = self.committed(owner, recipient)?;
        if key.path == path {
            Ok(key)
        } else {
            adopt(key, &path)
        }
    }

    /// The identity matching the recipient committed in Git, read only: from the env's key
    /// file, else from a file of the former layout (the key's `path` says which), else
    /// [`KeyError::MissingKey`] naming the env's own file.
    pub fn committed(&self, owner: &KeyOwner, recipient: &str) -> Result<AgeKey, KeyError> {
        let recipient = recipient.trim();
        let path = self.locate(owner)?;
        let matching = |file: &Path| -> Result<Option<AgeKey>, KeyError> {
            if !file.exists() {
                return Ok(None);
            }
            let keys = read_identities(file)?;
            Ok(keys.into_iter().find(|key| key.recipient == recipient))
        };
        if let Some(key) = matching(&path)? {
            return Ok(key);
        }
        if let Some(former) = self.former(&owner.env)?
            && let Some(key) = matching(&former)?
        {
            return Ok(key);
        }
        Err(KeyError::MissingKey {
            env: owner.env.clone(),
            recipient: recipient.to_owned(),
            path,
        })
    }
}

/// Whose age key: one env of one repository (URL and path prefix inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub env: String,
    /// `<host>/<repository path>[/<prefix>]`, a relative directory naming the repository.
    pub repository: PathBuf,
}

impl KeyOwner {
    /// `https://`, `http://` and `ssh://` URLs of one repository name the same owner: the
    /// scheme, user, port and a trailing `.git` are left out.
    pub fn new(env: &str, url: &str, prefix: &str) -> KeyOwner {
        let (host, path) = match url::Url::parse(url) {
            Ok(parsed) => (
                parsed.host_str().unwrap_or("local").to_lowercase(),
                parsed.path().to_owned(),
            ),
            Err(_) => ("local".to_owned(), url.to_owned()),
        };
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let mut repository = PathBuf::from(segment(&host));
        for part in path.split('/').chain(prefix.split('/')) {
            if !part.is_empty() {
                repository.push(segment(part));
            }
        }
        KeyOwner {
            env: env.to_owned(),
            repository,
        }
    }

    pub fn of(env: &EnvConfig) -> KeyOwner {
        KeyOwner::new(&env.name, &env.repository.url, &env.repository.path)
    }
}

/// One directory name of a key path: anything but letters, digits, `.`, `-`, `_` becomes `_`,
/// and `.` / `..` never climb.
fn segment(part: &str) -> String {
    let clean: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.chars().all(|c| c == '.') {
        clean.replace('.', "_")
    } else {
        clean
    }
}

/// A key of the former layout, proven the env's by its committed recipient, copied to the
/// env's own file (the former file stays: another repository's env may use it too).
fn adopt(key: AgeKey, path: &Path) -> Result<AgeKey, KeyError> {
    let from = key.path.clone();
    if path.exists() {
        // The env's own file holds other keys: use the former file where it is.
        return Ok(AgeKey {
            origin: KeyOrigin::Adopted { from },
            ..key
        });
    }
    let note = format!("# copied from {}", from.display());
    write_key(path, &key.recipient, &key.identity, &note)?;
    Ok(AgeKey {
        path: path.to_owned(),
        origin: KeyOrigin::Adopted { from },
        ..key
    })
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
            origin: KeyOrigin::Committed,
        })
        .collect())
}

/// A new x25519 key in age-keygen's file format, written before it is returned so a key
/// that is used has always been saved.
fn generate(path: &Path) -> Result<AgeKey, KeyError> {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let secret = SecretString::from(identity.to_string().expose_secret().to_owned());
    let created = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    write_key(path, &recipient, &secret, &format!("# created: {created}"))?;
    Ok(AgeKey {
        recipient,
        identity: secret,
        path: path.to_owned(),
        origin: KeyOrigin::Generated,
    })
}

/// Writes a key file as age-keygen does (a comment, the public key, the identity), 0600 in
/// directories made 0700, never over a file that appeared since the caller looked.
fn write_key(
    path: &Path,
    recipient: &str,
    identity: &SecretString,
    note: &str,
) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(write_error)?;
    }
    let contents = SecretString::from(format!(
        "{note}\n# public key: {recipient}\n{}\n",
        identity.expose_secret()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(contents.expose_secret().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)
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

    fn dev() -> KeyOwner {
        KeyOwner::new("dev", "https://git.example.com/platform/fleet.git", "")
    }

    fn owner(env: &str) -> KeyOwner {
        KeyOwner::new(env, "https://git.example.com/platform/fleet.git", "")
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
        assert_eq!(store.locate(&dev()).unwrap(), Path::new("/keys/all.agekey"));
        store.sops_age_key_file = None;
        assert_eq!(
            store.locate(&dev()).unwrap(),
            Path::new("/xdg/gitops-bootstrap/age/git.example.com/platform/fleet/dev.agekey")
        );
        store.xdg_config_home = None;
        assert_eq!(
            store.locate(&dev()).unwrap(),
            Path::new(
                "/home/me/.config/gitops-bootstrap/age/git.example.com/platform/fleet/dev.agekey"
            )
        );
        store.home = None;
        let err = store.locate(&dev()).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
    }

    #[test]
    fn generates_a_0600_key_in_age_keygen_format() {
        let dir = tempfile::tempdir().unwrap();
        let key = store_in(dir.path()).settle(&dev(), None).unwrap();
        assert_eq!(key.origin, KeyOrigin::Generated);
        assert!(key.recipient.starts_with("age1"));
        assert_eq!(
            key.path,
            dir.path()
                .join("xdg/gitops-bootstrap/age/git.example.com/platform/fleet/dev.agekey")
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
        let first = store.settle(&dev(), None).unwrap();
        let again = store.settle(&dev(), None).unwrap();
        assert_eq!(
            again.origin,
            KeyOrigin::Reused,
            "never passed off as up to date"
        );
        assert_eq!(again.recipient, first.recipient);
        let committed = store.settle(&dev(), Some(&first.recipient)).unwrap();
        assert_eq!(committed.origin, KeyOrigin::Committed);
        assert_eq!(
            committed.identity.expose_secret(),
            first.identity.expose_secret()
        );
    }

    #[test]
    fn an_owner_is_the_repository_whatever_the_url_form() {
        let https = KeyOwner::new("dev", "https://GitHub.com/acme/fleet.git", "");
        let ssh = KeyOwner::new("dev", "ssh://git@github.com:22/acme/fleet", "");
        assert_eq!(https, ssh);
        assert_eq!(https.repository, Path::new("github.com/acme/fleet"));
        let prefixed = KeyOwner::new("dev", "https://github.com/acme/fleet.git", "teams/a");
        assert_eq!(
            prefixed.repository,
            Path::new("github.com/acme/fleet/teams/a")
        );
        let other = KeyOwner::new("dev", "https://github.com/acme/other.git", "");
        assert_ne!(https, other);
        let odd = KeyOwner::new("dev", "https://h.example/a/../b%20c.git", "");
        assert!(
            odd.repository
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        );
    }

    /// Issue 20 item 2: env `dev` of a second repository gets a key of its own, and a key of the
    /// former layout (`age/dev.agekey`) is taken only with a committed recipient proving it.
    #[test]
    fn two_repositories_with_env_dev_never_share_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let first = store.settle(&dev(), None).unwrap();
        let second_repo = KeyOwner::new("dev", "https://git.example.com/other/fleet.git", "");
        let second = store.settle(&second_repo, None).unwrap();
        assert_eq!(second.origin, KeyOrigin::Generated);
        assert_ne!(second.recipient, first.recipient);

        // A key of the former layout, named after the env alone.
        let former = dir.path().join("xdg/gitops-bootstrap/age/staging.agekey");
        let identity = age::x25519::Identity::generate();
        write_private(&former, identity.to_string().expose_secret());
        let staging = owner("staging");
        let fresh = store.settle(&staging, None).unwrap();
        assert_eq!(fresh.origin, KeyOrigin::Generated, "not taken unproven");
        std::fs::remove_file(&fresh.path).unwrap();
        let recipient = identity.to_public().to_string();
        // doctor's look is read only: the former file named, nothing copied.
        let found = store.committed(&staging, &recipient).unwrap();
        assert_eq!(found.path, former);
        assert!(!store.locate(&staging).unwrap().exists());
        let adopted = store.settle(&staging, Some(&recipient)).unwrap();
        assert_eq!(
            adopted.origin,
            KeyOrigin::Adopted {
                from: former.clone()
            }
        );
        assert_eq!(adopted.path, store.locate(&staging).unwrap());
        assert_eq!(mode(&adopted.path), 0o600);
        assert!(former.exists(), "the former file stays");
        let again = store.settle(&staging, Some(&recipient)).unwrap();
        assert_eq!(again.origin, KeyOrigin::Committed);
        assert_eq!(again.path, adopted.path);
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
        let key = store.settle(&owner("prod"), Some(&recipient)).unwrap();
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
        let err = store.settle(&owner("prod"), Some(&stranger)).unwrap_err();
        assert!(matches!(err, KeyError::MissingKey { .. }), "{err}");
        assert_eq!(err.exit_status(), ExitStatus::BadInput);
        let path = store.locate(&owner("prod")).unwrap();
        assert!(
            !path.exists(),
            "no key may be generated for an env that has one"
        );
        assert!(err.hint().unwrap().contains(&path.display().to_string()));

        store.settle(&owner("prod"), None).unwrap();
        let err = store.settle(&owner("prod"), Some(&stranger)).unwrap_err();
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
        let err = store.settle(&dev(), None).unwrap_err();
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
        let err = store.settle(&dev(), None).unwrap_err();
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
            origin: KeyOrigin::Committed,
        };
        let debug = format!("{key:?}");
        assert!(!debug.contains("CANARY"), "{debug}");
        assert!(debug.contains("age1recipient"));
    }
}
