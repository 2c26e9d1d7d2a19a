#!/usr/bin/env bash
# Build the verifier desktop image with buildah, without a Docker engine, then run the demo
# recipe in it as its non-root user.
#
#   bash desktop-image/build.sh [--tag TAG] [--base IMAGE]
#
# desktop-image/Dockerfile describes the image (it only runs provision.sh); this script
# feeds it to `buildah build --isolation chroot` (no daemon, no user namespaces). The base
# is IMAGE, else the registry's debian:bookworm, else (no registry reachable) a Debian 12
# minbase made with mmdebstrap. The build machine's extra CA certificates and pip/npm
# certificate settings go into the build (desktop-image/build-ca/README.md); nothing else
# of this machine does: the context is a clone's files. Prints `PASSED ...` from the demo
# and exits 0, or exits non-zero. Needs root; installs buildah and mmdebstrap when missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tag=verifier-desktop
base=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --base) base="${2:?--base needs a value}"; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument ${1@Q} (usage: build.sh [--tag TAG] [--base IMAGE])" ;;
  esac
done

need_tools
[ -n "$base" ] || base="$(pick_base)"

work="$(mktemp -d)"
ctr=""
cleanup() {
  if [ -n "$ctr" ]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# === BUILD ===
copy_checkout "$work/context"
collect_certs "$work/context/desktop-image/build-ca" /usr/local/share/ca-certificates/verifier-build
old="$(buildah inspect --type image --format '{{.FromImageID}}' "$tag" 2>/dev/null || true)"
say "building $tag from $base"
start=$SECONDS
# --pull=false: a base already in the store is used as it is (pick_base pulled it, or
# mmdebstrap made it); --layers=false: one layer over the base, so what the provisioning
# step removes (the certificates, apt lists, pip's cache) is in no layer at all.
buildah build --isolation chroot --pull=false --layers=false --force-rm \
  --build-arg "BASE=$base" --tag "$tag" \
  --file "$work/context/desktop-image/Dockerfile" "$work/context"
new="$(buildah inspect --type image --format '{{.FromImageID}}' "$tag")"
if [ -n "$old" ] && [ "$old" != "$new" ]; then
  buildah rmi "$old" >/dev/null 2>&1 || true  # the previous build of this tag, now untagged
fi
say "built $tag in $((SECONDS - start)) s"

# === DEMO, AS THE IMAGE'S USER ===
# `buildah run --isolation chroot` shares this machine's /dev (and /dev/shm, which
# Chromium needs), /proc and network: Xvfb, openbox, Chromium and ffmpeg run as they do on
# a machine. The container runs as the image's configured user, in its WORKDIR.
ctr="$(buildah from --pull=false "$tag")"
uid="$(buildah run --isolation chroot "$ctr" -- id -u)"
[ "$uid" != 0 ] || die "the image runs as root by default; it must not"
start=$SECONDS
record="$(buildah run --isolation chroot "$ctr" -- verifier run /opt/verifier/recipes/todo.yaml \
  --json)" || die "FAILED: the demo recipe in $tag as uid $uid (exit $?)"
say "the demo ran in $tag as uid $uid in $((SECONDS - start)) s"
# A chroot allows no user namespace: the app runs without its sandbox, the manifest says
# so, and network: loopback (which the app could leave) is refused in one line.
bundle="$(sed -n 's/.*"bundle": "\([^"]*\)".*/\1/p' <<<"$record")"
buildah run --isolation chroot "$ctr" -- grep -q '"sandbox": "no sandbox: ' "$bundle/manifest.json" \
  || die "FAILED: the demo's manifest in $tag does not say the app ran without its sandbox"
rc=0
err="$(buildah run --isolation chroot "$ctr" -- verifier run /opt/verifier/recipes/todo.yaml \
  --network loopback 2>&1 >/dev/null)" || rc=$?
[ "$rc" = 2 ] && grep -q "network: loopback needs the app's sandbox" <<<"$err" \
  || die "FAILED: network: loopback in a chroot gave exit $rc: $err"
say "in the chroot: no sandbox, said in the manifest; network: loopback refused"
