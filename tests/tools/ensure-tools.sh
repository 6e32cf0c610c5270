# Sourced by tests/run.sh and tests/demo.sh: makes sure the tools the suite drives are here,
# installing them from the package registries when they are not.
# shellcheck shell=bash

apt_install() {
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "missing $*: install them (apt-get install $*) and rerun" >&2
    return 1
  fi
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Terraform may be pointed at a CLI config that does not exist; it then warns on every command.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then
  export TF_CLI_CONFIG_FILE=/dev/null
fi

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; return 1; }
command -v git >/dev/null || apt_install git
[ -x /usr/lib/git-core/git-http-backend ] || [ -x "$(git --exec-path)/git-http-backend" ] || apt_install git
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || apt_install openssh-server openssh-client
if ! command -v kubectl >/dev/null; then
  apt_install kubernetes-client || { echo "kubectl (with kustomize) is required" >&2; return 1; }
fi

source "$(dirname "${BASH_SOURCE[0]}")/ensure-terraform.sh"

# cargo-dist builds the releases; the suite runs `dist plan` so its configuration cannot rot.
# The version is the one dist-workspace.toml pins for the release workflow. Building it takes
# about 25 minutes on a busy 2-core machine, once; its build dir is temporary.
dist_version=$(sed -n 's/^cargo-dist-version = "\(.*\)"/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../../dist-workspace.toml")
if [ "$(dist --version 2>/dev/null)" != "cargo-dist $dist_version" ]; then
  env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-dist --version "$dist_version"
fi
