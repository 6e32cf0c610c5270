#!/usr/bin/env bash
# The main job on a local sandbox: create-env through terraform/existing against the test
# cluster (a local stand-in for a real Kubernetes API server, Git host and Flux), then status.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

source tests/tools/ensure-tools.sh

echo "== building gitops-bootstrap and the test cluster"
cargo build --workspace --bins --quiet
# Wherever cargo puts its builds: CARGO_TARGET_DIR, a cargo config's target-dir, or target/.
bin="$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)/debug"

demo=$(mktemp -d "${TMPDIR:-/tmp}/gitops-bootstrap-demo.XXXXXX")
cleanup() {
  [ -n "${cluster_pid:-}" ] && kill "$cluster_pid" 2>/dev/null && wait "$cluster_pid" 2>/dev/null
  rm -rf "$demo"
}
trap cleanup EXIT

echo "== starting the sandbox: API server, Git server (HTTPS) and Flux controllers"
"$bin/test-cluster" --kubeconfig "$demo/kubeconfig" --flux \
  --git-dir "$demo/git" --seed-repo "$root/profiles" \
  --flux-manifests-out "$demo/gotk-components.yaml" >"$demo/test-cluster.log" 2>&1 &
cluster_pid=$!
for _ in $(seq 1 100); do
  [ -s "$demo/git/connection.env" ] && [ -s "$demo/kubeconfig" ] && break
  kill -0 "$cluster_pid" 2>/dev/null || { cat "$demo/test-cluster.log"; exit 1; }
  sleep 0.2
done
# GIT_URL, GIT_CA_FILE, GIT_PUSH_TOKEN_FILE, GIT_READ_TOKEN_FILE
source "$demo/git/connection.env"
DEMO_GIT_PUSH_TOKEN=$(cat "$GIT_PUSH_TOKEN_FILE")
DEMO_GIT_READ_TOKEN=$(cat "$GIT_READ_TOKEN_FILE")
export DEMO_GIT_PUSH_TOKEN DEMO_GIT_READ_TOKEN
export XDG_CONFIG_HOME="$demo/config"

cat >"$demo/gitops-bootstrap.toml" <<TOML
[envs.demo]
module = "$root/terraform/existing"
profile = "standard"
flux_version = "v2.4.0"
flux_manifests = "$demo/gotk-components.yaml"

[envs.demo.variables]
cluster_name = "demo"
kubeconfig_path = "$demo/kubeconfig"
cluster_config = { base_domain = "demo.example.test", acme_email = "platform@example.test" }

[envs.demo.repository]
url = "$GIT_URL"
branch = "main"
ca_file = "$GIT_CA_FILE"
author_name = "gitops-bootstrap demo"
author_email = "demo@example.test"
push = { method = "token", token_env = "DEMO_GIT_PUSH_TOKEN" }
read = { token_env = "DEMO_GIT_READ_TOKEN" }
TOML

cd "$demo"
echo "== gitops-bootstrap create-env demo --profile standard --yes"
"$bin/gitops-bootstrap" create-env demo --profile standard --yes
echo
echo "== gitops-bootstrap status demo"
"$bin/gitops-bootstrap" status demo

cat <<'NOTE'

This was a local sandbox: the "cluster" is the test suite's stand-in API server with test
controllers playing Flux, and the Git host is a local HTTPS server. Nothing left this machine.

To target a real cluster, write a gitops-bootstrap.toml whose env points at a real module
(terraform/aws, terraform/azure, terraform/kind, or terraform/existing with your kubeconfig)
and your real GitOps repository, then run:

  gitops-bootstrap doctor <env>
  gitops-bootstrap plan <env>
  gitops-bootstrap create-env <env> --profile standard

See README.md for the configuration file and the output contract.
NOTE
