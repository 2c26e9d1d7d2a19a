# Shared by build.sh and fresh-debian.sh (sourced, never run): the tools they need on the
# build machine, the Debian 12 base image, a clean copy of the checkout, and the build
# machine's certificates. Nothing here installs anything into an image: provision.sh does.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGISTRY_BASE=docker.io/library/debian:bookworm
# Made with mmdebstrap when no registry is reachable: what `debootstrap --variant=minbase`
# gives, configured like the registry's debian image (PATH, bash).
DEBIAN_BASE=localhost/verifier-debian:12
DEBIAN_SOURCES=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
# Which base the build uses: the registry's, when reachable within this many seconds.
PULL_TIMEOUT=60

say() { echo "$(basename "$0" .sh): $*" >&2; }
die() { say "$*"; exit 1; }

# buildah (and the mmdebstrap it takes to make a base) on this machine. They build the
# image; the image itself has no use for them, so provision.sh does not install them.
need_tools() {
  [ "$(id -u)" -eq 0 ] \
    || die "needs root (buildah's chroot isolation, mmdebstrap's root mode); run it with sudo"
  local missing=() tool
  for tool in buildah mmdebstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The Debian 12 base image made with mmdebstrap (made once, then kept in buildah's store).
debian_base() {
  if ! buildah inspect --type image "$DEBIAN_BASE" >/dev/null 2>&1; then
    say "making a Debian 12 minbase with mmdebstrap: $DEBIAN_BASE"
    local tar ctr
    tar="$(mktemp --suffix=.tar)"
    mmdebstrap --variant=minbase --quiet bookworm "$tar" "${DEBIAN_SOURCES[@]}" \
      || { rm -f "$tar"; die "mmdebstrap failed"; }
    ctr="$(buildah from scratch)"
    buildah add --quiet "$ctr" "$tar" / >/dev/null \
      && buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd bash "$ctr" \
      && buildah commit --quiet "$ctr" "$DEBIAN_BASE" >/dev/null
    local rc=$?
    buildah rm "$ctr" >/dev/null
    rm -f "$tar"
    [ "$rc" -eq 0 ] || die "could not import the mmdebstrap base"
  fi
  echo "$DEBIAN_BASE"
}

# The registry's debian:bookworm when it is in the store or can be pulled, else ours.
pick_base() {
  if buildah inspect --type image "$REGISTRY_BASE" >/dev/null 2>&1 \
    || timeout "$PULL_TIMEOUT" buildah pull --quiet "$REGISTRY_BASE" >/dev/null 2>&1; then
    echo "$REGISTRY_BASE"
  else
    say "no registry reachable for $REGISTRY_BASE"
    debian_base
  fi
}

# Copy the checkout into $1 as a clone would have it: tracked and untracked files that git
# does not ignore (so no .venv, artifacts or caches), without .git.
copy_checkout() {
  local dest="$1"
  mkdir -p "$dest"
  if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$repo" ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do
          { [ -e "$repo/$f" ] || [ -L "$repo/$f" ]; } && printf '%s\0' "$f"
        done \
      | tar -C "$repo" -c --null -T - | tar -x -C "$dest"
  else
    tar -C "$repo" -c --exclude=./.git --exclude=./.venv --exclude=./artifacts \
      --exclude=./.cache . | tar -x -C "$dest"
  fi
}

# The build machine's extra CA certificates (a TLS-intercepting proxy's, as on corporate
# networks) and its pip and npm certificate settings, into folder $1, which the build sees
# at $2: *.crt for update-ca-certificates, pip.conf and npmrc naming copies of the files
# the settings name. Nothing else of this machine goes in.
collect_certs() {
  local dest="$1" inside="$2" file
  mkdir -p "$dest"
  if [ -d /usr/local/share/ca-certificates ]; then
    find /usr/local/share/ca-certificates -name '*.crt' -type f -exec cp {} "$dest/" \;
  fi
  file="$(pip_cert)"
  if [ -n "$file" ] && [ -f "$file" ]; then
    cp "$file" "$dest/pip-cert.pem"
    printf '[global]\ncert = %s/pip-cert.pem\n' "$inside" >"$dest/pip.conf"
  fi
  file="$(npm_cafile)"
  if [ -n "$file" ] && [ -f "$file" ]; then
    cp "$file" "$dest/npm-cafile.pem"
    printf 'cafile=%s/npm-cafile.pem\n' "$inside" >"$dest/npmrc"
  fi
}

# pip's `cert` setting: PIP_CERT, else the first `cert =` in pip's configuration files,
# the ones that win first.
pip_cert() {
  if [ -n "${PIP_CERT:-}" ]; then echo "$PIP_CERT"; return 0; fi
  local f value
  for f in "${PIP_CONFIG_FILE:-}" "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" \
    "$HOME/.pip/pip.conf" /etc/pip.conf /etc/xdg/pip/pip.conf; do
    if [ -n "$f" ] && [ -f "$f" ]; then
      value="$(sed -n 's/^[[:space:]]*cert[[:space:]]*=[[:space:]]*//p' "$f" | tail -n 1)"
      if [ -n "$value" ]; then echo "$value"; return 0; fi
    fi
  done
}

# npm's `cafile` setting: npm's own answer when npm is here, else NPM_CONFIG_CAFILE.
npm_cafile() {
  local value="${NPM_CONFIG_CAFILE:-${npm_config_cafile:-}}"
  if [ -z "$value" ] && command -v npm >/dev/null 2>&1; then
    value="$(npm config get cafile 2>/dev/null || true)"
  fi
  case "$value" in null | undefined) value="" ;; esac
  echo "$value"
}
