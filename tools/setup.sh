#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Set up (or refresh) everything the demo and the tests need, then export the
# environment for them. Sourced by tools/demo and tools/test; cheap to rerun:
# each step checks first and does nothing when its result is already there.
#
#   - Debian packages: podman (runc, uidmap, slirp4netns), debootstrap, and the
#     rpm/dnf tools the RHEL stand-in needs
#   - .venv with the pinned Python toolchain (requirements/constraints-py3.X.txt)
#   - .build/collections/ansible_collections/vllm_infra/profiling -> this checkout
#   - CONTAINERS_CONF -> tools/containers/containers.conf (never edits /etc)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

DEBIAN_PACKAGES=(
  # catatonit is podman's init binary (--init): only a Recommends of podman, so
  # --no-install-recommends leaves it out and `podman run --init` fails without it.
  podman catatonit runc uidmap slirp4netns fuse-overlayfs
  debootstrap ca-certificates curl
  rpm createrepo-c libmodulemd-tools dnf python3-dnf python3-rpm gnupg
  dpkg-dev apt-utils
  chromium  # headless rendering test of trace_summary's HTML report
  docker-registry apache2-utils openssl  # a real registry (distribution 2.8), htpasswd -B, a test CA (tests/support/registry.py)
  busybox-static  # a 2 MB image for the registry tests' fleet (tests/integration/test_registry.py)
  openssh-server  # the test's own sshd: the GPU host an execution environment reaches over SSH (tests/integration/test_execution_environment.py)
)

setup_debian_packages() {
  local missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}" ${VLLM_INFRA_EXTRA_DEBS:-}; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root or install them first)"
    return 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  # ansible-core 2.21 needs Python >= 3.12; 3.11 still gets a working toolchain (ansible-core 2.19).
  local candidate
  for candidate in python3.13 python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python3" python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      local minor
      minor=$("$candidate" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      if [ -f "$REPO/requirements/constraints-py${minor}.txt" ]; then
        echo "$candidate"
        return 0
      fi
    fi
  done
  log "no Python 3.11+ with a lock file in requirements/ found"
  return 1
}

setup_venv() {
  local py minor lock stamp want
  py=$(pick_python)
  minor=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  lock="$REPO/requirements/constraints-py${minor}.txt"
  stamp="$REPO/.venv/.installed"
  want="$minor $(cat "$lock" "$REPO/requirements/dev.in" | sha256sum | cut -c1-16)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  # Several shells may set up at once (parallel test runs): one at a time, and
  # update the venv in place rather than deleting it under the others' feet.
  exec 9>"$REPO/.venv.lock"
  flock 9
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if [ ! -x "$REPO/.venv/bin/python" ] || ! "$REPO/.venv/bin/python" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$minor')"; then
      log "creating .venv with $py"
      rm -rf "$REPO/.venv"
      "$py" -m venv "$REPO/.venv"
    fi
    log "installing the pinned toolchain into .venv (lock: ${lock#"$REPO"/})"
    "$REPO/.venv/bin/python" -m pip install --quiet --upgrade pip
    # pip byte-compiles what it installs one file at a time (here 48-66 s of a fresh .venv); compileall does it
    # on every core (13 s of pip + 25 s here). The bytecode must be there: with PYTHONDONTWRITEBYTECODE set (this
    # machine's environment sets it) every process would compile what it imports again (ansible-playbook's
    # own imports: 1.2 CPU-s instead of 0.35).
    "$REPO/.venv/bin/python" -m pip install --quiet --no-compile -r "$REPO/requirements/dev.in" -c "$lock"
    "$REPO/.venv/bin/python" -m compileall -q -j 0 "$("$REPO/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null ||
      log "compileall could not compile every module of .venv (as pip, it only saves time: going on)"
    echo "$want" > "$stamp"
  fi
  flock -u 9
}

setup_collection_link() {
  local parent="$REPO/.build/collections/ansible_collections/vllm_infra"
  mkdir -p "$parent"
  ln -sfn ../../../.. "$parent/profiling"
}

setup_debian_packages
setup_venv
setup_collection_link

export PATH="$REPO/.venv/bin:$PATH"
export VIRTUAL_ENV="$REPO/.venv"
export CONTAINERS_CONF="$REPO/tools/containers/containers.conf"
export ANSIBLE_CONFIG="$REPO/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections"
export PYTHONPATH="$REPO/.build/collections${PYTHONPATH:+:$PYTHONPATH}"
