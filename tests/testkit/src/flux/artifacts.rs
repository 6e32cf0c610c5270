//! What source-controller serves over HTTP in real Flux: here, checkouts kept in-process and
//! handed to kustomize-controller by `namespace/name` of the source.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tempfile::TempDir;

/// One fetched revision of a source, kept on disk until replaced.
#[derive(Clone, Debug)]
pub struct StoredArtifact {
    pub revision: String,
    checkout: Arc<TempDir>,
}

impl StoredArtifact {
    pub fn new(revision: String, checkout: TempDir) -> StoredArtifact {
        StoredArtifact {
            revision,
            checkout: Arc::new(checkout),
        }
    }

    /// The working tree of the revision (read-only by convention: builds copy it).
    pub fn dir(&self) -> &Path {
        self.checkout.path()
    }
}

#[derive(Clone, Debug, Default)]
pub struct ArtifactStore(Arc<Mutex<HashMap<String, StoredArtifact>>>);

impl ArtifactStore {
    pub fn get(&self, namespace: &str, name: &str) -> Option<StoredArtifact> {
        self.lock().get(&key(namespace, name)).cloned()
    }

    pub fn put(&self, namespace: &str, name: &str, artifact: StoredArtifact) {
        self.lock().insert(key(namespace, name), artifact);
    }

    pub fn remove(&self, namespace: &str, name: &str) {
        self.lock().remove(&key(namespace, name));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredArtifact>> {
        // A panic elsewhere leaves the map consistent (single inserts/removes): keep going.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}
