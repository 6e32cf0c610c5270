//! The test cluster of gitops-bootstrap's test suite: a Kubernetes API server speaking the
//! real HTTP API ([`apiserver`]), a Git server over smart HTTP and ssh ([`git`]), and
//! controllers that play Flux, the kubelet and cloud load balancers against any API server
//! ([`flux`], [`kubelet`]); and the product's config file as tests write it ([`env_config`]).
//! It never enters the product.

pub mod apiserver;
pub mod charts;
pub mod cluster;
pub mod env_config;
pub mod flux;
pub mod git;
pub mod kubelet;
pub mod shared;
pub mod sops;
pub mod tls;
