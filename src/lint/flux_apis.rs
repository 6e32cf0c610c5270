//! Which Flux API versions each Flux 2 minor release serves: the one table `flux-api-removed`,
//! `flux-api-deprecated` and `lint --fix` read (README "Lint rules" summarises it).
//!
//! Facts from Flux's release notes and roadmap: kustomize and source `v1` and notification
//! `Receiver` `v1` since 2.0/2.1, the Helm kinds' `v1`/`v2` since 2.3, `Bucket` `v1` since 2.4,
//! `OCIRepository` `v1` since 2.6, the image kinds' `v1` since 2.7, `Alert`/`Provider` `v1`
//! since 2.10; the `v1beta1`/`v2beta1` APIs removed in 2.7, source/kustomize `v1beta2` and helm
//! `v2beta2` in 2.8, notification and image `v1beta2` in 2.9.

/// The newest Flux minor (`2.x`) this table knows; a version it cannot read counts as this.
pub const NEWEST_MINOR: u32 = 10;

/// One API version of one kind: the minors that serve it, and from when it is deprecated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub version: &'static str,
    /// The first minor serving it.
    pub since: u32,
    /// The first minor no longer serving it.
    pub until: Option<u32>,
    /// The first minor in which a newer version replaces it.
    pub deprecated: Option<u32>,
}

impl Served {
    pub fn by(&self, minor: u32) -> bool {
        minor >= self.since && self.until.is_none_or(|until| minor < until)
    }

    pub fn deprecated_in(&self, minor: u32) -> bool {
        self.deprecated.is_some_and(|from| minor >= from)
    }
}

const fn v(
    version: &'static str,
    since: u32,
    until: Option<u32>,
    deprecated: Option<u32>,
) -> Served {
    Served {
        version,
        since,
        until,
        deprecated,
    }
}

/// A kind of a Flux API group and its versions, oldest first.
struct Kind {
    group: &'static str,
    kinds: &'static [&'static str],
    versions: &'static [Served],
}

const KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io";
const SOURCE: &str = "source.toolkit.fluxcd.io";
const HELM: &str = "helm.toolkit.fluxcd.io";
const NOTIFICATION: &str = "notification.toolkit.fluxcd.io";
const IMAGE: &str = "image.toolkit.fluxcd.io";

const TABLE: &[Kind] = &[
    Kind {
        group: KUSTOMIZE,
        kinds: &["Kustomization"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(0)),
            v("v1beta2", 0, Some(8), Some(0)),
            v("v1", 0, None, None),
        ],
    },
    Kind {
        group: SOURCE,
        kinds: &["GitRepository"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(0)),
            v("v1beta2", 0, Some(8), Some(0)),
            v("v1", 0, None, None),
        ],
    },
    Kind {
        group: SOURCE,
        kinds: &["HelmRepository", "HelmChart"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(0)),
            v("v1beta2", 0, Some(8), Some(3)),
            v("v1", 3, None, None),
        ],
    },
    Kind {
        group: SOURCE,
        kinds: &["Bucket"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(0)),
            v("v1beta2", 0, Some(8), Some(4)),
            v("v1", 4, None, None),
        ],
    },
    Kind {
        group: SOURCE,
        kinds: &["OCIRepository"],
        versions: &[v("v1beta2", 0, Some(8), Some(6)), v("v1", 6, None, None)],
    },
    Kind {
        group: HELM,
        kinds: &["HelmRelease"],
        versions: &[
            v("v2beta1", 0, Some(7), Some(2)),
            v("v2beta2", 2, Some(8), Some(3)),
            v("v2", 3, None, None),
        ],
    },
    Kind {
        group: NOTIFICATION,
        kinds: &["Alert", "Provider"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(0)),
            v("v1beta2", 0, Some(9), Some(1)),
            v("v1beta3", 1, None, Some(10)),
            v("v1", 10, None, None),
        ],
    },
    Kind {
        group: NOTIFICATION,
        kinds: &["Receiver"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(1)),
            v("v1beta2", 0, Some(9), Some(1)),
            v("v1", 1, None, None),
        ],
    },
    Kind {
        group: IMAGE,
        kinds: &["ImageRepository", "ImagePolicy"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(0)),
            v("v1beta2", 0, Some(9), Some(7)),
            v("v1", 7, None, None),
        ],
    },
    Kind {
        group: IMAGE,
        kinds: &["ImageUpdateAutomation"],
        versions: &[
            v("v1beta1", 0, Some(7), Some(3)),
            v("v1beta2", 3, Some(9), Some(7)),
            v("v1", 7, None, None),
        ],
    },
];

/// The versions of a Flux kind, oldest first; `None` for what is not a Flux kind.
pub fn versions(group: &str, kind: &str) -> Option<&'static [Served]> {
    TABLE
        .iter()
        .find(|entry| entry.group == group && entry.kinds.contains(&kind))
        .map(|entry| entry.versions)
}

/// The version of a kind to write for clusters on `minors`: the newest every one of them serves
/// and none deprecates, else the newest they all serve; `None` when they share none.
pub fn best_version(group: &str, kind: &str, minors: &[u32]) -> Option<&'static str> {
    let versions = versions(group, kind)?;
    let served_by_all = |served: &&Served| minors.iter().all(|&minor| served.by(minor));
    let current = |served: &&Served| !minors.iter().any(|&minor| served.deprecated_in(minor));
    versions
        .iter()
        .rev()
        .filter(served_by_all)
        .find(current)
        .or_else(|| versions.iter().rev().find(served_by_all))
        .map(|served| served.version)
}

/// Whether `newer` comes after `older` in a kind's history.
pub fn is_newer(group: &str, kind: &str, newer: &str, older: &str) -> bool {
    let Some(versions) = versions(group, kind) else {
        return false;
    };
    let at = |version: &str| versions.iter().position(|served| served.version == version);
    matches!((at(newer), at(older)), (Some(new), Some(old)) if new > old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(group: &str, kind: &str, version: &str, minor: u32) -> bool {
        versions(group, kind)
            .unwrap()
            .iter()
            .any(|served| served.version == version && served.by(minor))
    }

    #[test]
    fn flux_2_8_no_longer_serves_the_v1beta2_and_v2beta_apis() {
        assert!(served(SOURCE, "GitRepository", "v1beta2", 7));
        assert!(!served(SOURCE, "GitRepository", "v1beta2", 8));
        assert!(!served(KUSTOMIZE, "Kustomization", "v1beta2", 8));
        assert!(!served(HELM, "HelmRelease", "v2beta2", 8));
        assert!(!served(HELM, "HelmRelease", "v2beta1", 7));
        assert!(served(HELM, "HelmRelease", "v2", NEWEST_MINOR));
    }

    #[test]
    fn flux_2_1_has_no_helm_repository_v1() {
        assert!(!served(SOURCE, "HelmRepository", "v1", 1));
        assert_eq!(
            best_version(SOURCE, "HelmRepository", &[1]),
            Some("v1beta2")
        );
        // 2.4 deprecates v1beta2 but 2.1 has nothing newer: both serve v1beta2.
        assert_eq!(
            best_version(SOURCE, "HelmRepository", &[1, 4]),
            Some("v1beta2")
        );
        assert_eq!(best_version(SOURCE, "HelmRepository", &[3, 8]), Some("v1"));
        assert_eq!(best_version(SOURCE, "HelmRepository", &[1, 8]), None);
        assert_eq!(
            best_version(KUSTOMIZE, "Kustomization", &[1, 4]),
            Some("v1")
        );
        assert!(is_newer(SOURCE, "HelmRepository", "v1", "v1beta2"));
        assert!(!is_newer(SOURCE, "HelmRepository", "v1beta1", "v1beta2"));
    }

    #[test]
    fn every_kind_has_a_version_served_by_the_newest_flux() {
        for entry in TABLE {
            for kind in entry.kinds {
                assert!(
                    best_version(entry.group, kind, &[NEWEST_MINOR]).is_some(),
                    "{kind}"
                );
            }
        }
    }
}
