//! The one integration test binary: a module per capability, sharing `support`.

mod support;

mod access;
mod age_keys;
mod ci_examples;
mod cli;
mod cluster;
mod config;
mod config_change;
mod create_env;
mod drift;
mod fleet;
mod flux_schemas;
mod gitops;
mod init;
mod lint;
mod lint_fleet;
mod operator;
mod own_layout;
mod ownership;
mod plan;
mod preflight_git;
mod profiles;
mod pull_request;
mod rebuild;
mod release;
mod reliability;
mod teardown;
mod teardown_safety;
mod terraform;
mod wait;
