#!/usr/bin/env bash
# The README's first command on a stock Debian 12, checked in a throwaway container.
#
#   bash desktop-image/fresh-debian.sh [--root]
#
# The container is made from the mmdebstrap minbase (lib.sh): Debian's own python3 with
# PEP 668 comes only from provision.sh, and so does everything else (no pip, no
# libatomic1, no Xvfb). Its admin has done what a machine's admin does: a user `dev` with
# sudo (--root: root itself), and the build machine's extra CA certificates and pip
# certificate setting, when it has them (a proxy that intercepts TLS). Then, from a copy of
# this checkout in the user's home, in a login shell, exactly what the README says:
#   bash desktop-image/provision.sh && verifier run recipes/todo.yaml
# and provision.sh once more, which must install nothing. The container is removed at the
# end, whatever happened. Needs root; installs buildah and mmdebstrap when missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

user=dev
case "${1:-}" in
  "") ;;
  --root) user=root ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) die "unknown argument ${1@Q} (usage: fresh-debian.sh [--root])" ;;
esac

need_tools
base="$(debian_base)"
work="$(mktemp -d)"
ctr=""
cleanup() {
  if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# A machine's /etc/hosts names the machine (sudo looks its hostname up).
ctr="$(buildah from --pull=false --format docker --add-host fresh-debian:127.0.1.1 "$base")"
buildah config --hostname fresh-debian "$ctr"
as_root() { buildah run --isolation chroot "$ctr" -- "$@"; }

# === THE MACHINE, AS ITS ADMIN LEFT IT ===
ca=/usr/local/share/ca-certificates/build-machine
collect_certs "$work/ca" "$ca"
buildah copy --quiet "$ctr" "$work/ca" "$ca" >/dev/null
if [ -f "$work/ca/pip.conf" ]; then
  buildah copy --quiet "$ctr" "$work/ca/pip.conf" /etc/pip.conf >/dev/null
fi
if [ "$user" = root ]; then
  home=/root
else
  home="/home/$user"
  say "a user '$user' with sudo"
  as_root sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends sudo >/dev/null"
  as_root useradd --create-home --shell /bin/bash --groups sudo "$user"
  # No terminal here for a password: the one thing a real sudo user would type.
  as_root sh -c "echo '$user ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/$user"
fi
copy_checkout "$work/checkout"
buildah copy --quiet --chown "$user:$user" "$ctr" "$work/checkout" "$home/verifier" >/dev/null
as_user() {
  buildah run --isolation chroot --user "$user" --workingdir "$home/verifier" \
    --env HOME="$home" "$ctr" -- bash -lc "$1"
}

# === THE README'S FIRST COMMAND ===
say "as $user, in a login shell: bash desktop-image/provision.sh && verifier run recipes/todo.yaml"
start=$SECONDS
as_user "bash desktop-image/provision.sh && verifier run recipes/todo.yaml" \
  || die "FAILED: the README's first command, as $user on a stock Debian 12 (exit $?)"
say "setup and demo took $((SECONDS - start)) s"

# === WHAT IT LEFT ===
# Debian's python3, which refuses system-wide pip installs, is the venv's Python.
as_root test -f /usr/lib/python3.11/EXTERNALLY-MANAGED \
  || die "no EXTERNALLY-MANAGED: this is not Debian's python3"
prefix="$(as_user '.venv/bin/python -c "import sys; print(sys.base_prefix)"')"
[ "$prefix" = /usr ] || die "the venv's Python is ${prefix@Q}, not Debian's /usr/bin/python3"
# Every login shell finds verifier, root's too.
found="$(as_root bash -lc 'command -v verifier')"
[ "$found" = /usr/local/bin/verifier ] || die "a login shell finds verifier at ${found@Q}"
# A second run installs nothing.
again="$(as_user "bash desktop-image/provision.sh" 2>&1)"
if grep -E "provision: (installing|creating|linking)" <<<"$again"; then
  die "a second provision.sh installed something"
fi
say "passed: provision.sh and the demo on a stock Debian 12 as $user;" \
  "a second provision.sh installed nothing"
