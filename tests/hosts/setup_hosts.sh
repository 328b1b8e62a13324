#!/bin/bash
# Build (idempotently) the Debian chroots the real-host tests run in (tests/hosts/chroots.json):
#   trixie   Debian 13: GIMP 3.0 + Krita 5.2 (PyQt5)
#   sid      Debian sid: GIMP 3.2 + Krita 6.0 from experimental (Qt 6, PyQt6)
#   krita53  Debian sid: Krita 5.3 (Qt 5, PyQt5)
# The machine's own apt sources are never touched: everything goes into the chroots.
#
#   sudo bash tests/hosts/setup_hosts.sh [NAME...]      (default: every chroot in chroots.json)
#
# Env: KESU_HOSTROOT (default /var/cache/kesu/hostroot: the trixie root; the others sit beside it, e.g.
#      /var/cache/kesu/hostroot-sid), KESU_MIRROR (default: the Debian mirror of this machine's own apt sources,
#      else http://deb.debian.org/debian), KESU_KEEP_DEBS=1 keeps the downloaded .debs in the chroots.
# From nothing: a few minutes per chroot (network-bound). A re-run that finds them done: well under a second.
# Per root: .kesu_debootstrap_done (base system), .kesu_packages_pinned (the exact package=version list
# installed; a changed pin reinstalls), .kesu_hosts (the host applications and versions, read by the tests).
# A debootstrapped base per suite is cached at $KESU_HOSTROOT-base-SUITE, so sid is downloaded once for two roots.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${KESU_HOSTROOT:-/var/cache/kesu/hostroot}
BASE=${BASE%/}
CH="$HERE/chroot.sh"
CONF="$HERE/chroots.json"
T0=$(date +%s)
say() { echo "[setup_hosts] $*"; }
# sid's and experimental's Release files on some mirrors have expired (a frozen snapshot): do not refuse them
APT=(apt-get -o Acquire::Check-Valid-Until=false)

[ "$(id -u)" = 0 ] || { echo "setup_hosts.sh must run as root (debootstrap, mount, chroot)" >&2; exit 1; }

machine_mirror() { # the first Debian mirror in this machine's own apt sources (one-line or deb822 format)
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -v '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${KESU_MIRROR:-$(machine_mirror)}
MIRROR=${MIRROR%/}

# chroots.json, read once (one python3 start): CONFV[NAME/FIELD] holds each field as shell words
declare -A CONFV
NAMES=()
while IFS=$'\t' read -r n f v; do
  [ "$f" = name ] && NAMES+=("$n")
  CONFV["$n/$f"]=$v
done < <(python3 - "$CONF" <<'PY'
import json, sys
for name, c in json.load(open(sys.argv[1])).items():
    if name.startswith("_"):
        continue
    fields = {
        "name": name,
        "packages": " ".join(f"{k}={v}" for k, v in c["packages"].items()),
        "names": " ".join(c["packages"]),
        "hosts": ";".join(f"{k} {v}" for k, v in c["hosts"].items()),
        "apt": " ".join(c["apt"]),
        "root": c["root"], "suite": c["suite"], "qt": c["qt"],
    }
    for k, v in fields.items():
        print(f"{name}\t{k}\t{v}")
PY
)
[ ${#NAMES[@]} -gt 0 ] || { echo "setup_hosts.sh: no chroot in $CONF" >&2; exit 1; }

conf() { # conf NAME FIELD: one field of chroots.json (hosts: one "app version" per line)
  [ -n "${CONFV["$1/name"]+x}" ] || { echo "setup_hosts.sh: no chroot '$1' in $CONF" >&2; exit 1; }
  local v=${CONFV["$1/$2"]}
  [ "$2" != hosts ] || v=${v//;/$'\n'}
  printf '%s\n' "$v"
}

binaries_ok() { # binaries_ok ROOT NAME: the host programs the tests call are there
  local r=$1 app ver
  while read -r app ver; do
    case $app in
      krita) [ -x "$r/usr/bin/krita" ] && [ -x "$r/usr/bin/kritarunner" ] || return 1 ;;
      gimp) [ -x "$r/usr/bin/gimp-console-$ver" ] || return 1 ;;
    esac
  done < <(conf "$2" hosts)
}

is_done() { # is_done ROOT NAME
  [ "$(cat "$1/.kesu_packages_pinned" 2>/dev/null || true)" = "$(conf "$2" packages)" ] \
    && [ -f "$1/.kesu_hosts" ] && binaries_ok "$1" "$2"
}

debootstrap_base() { # debootstrap_base SUITE: a cached minimal root of SUITE (made once), printed
  local suite=$1 b="$BASE-base-$1"
  if [ ! -f "$b/.kesu_debootstrap_done" ]; then
    if ! command -v debootstrap >/dev/null; then
      say "installing debootstrap on the host" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    rm -rf --one-file-system "$b"
    local t; t=$(date +%s)
    say "debootstrap $suite -> $b ($MIRROR)" >&2
    debootstrap --variant=minbase "$suite" "$b" "$MIRROR" >&2
    touch "$b/.kesu_debootstrap_done"
    say "debootstrap $suite: $(( $(date +%s) - t ))s" >&2
  fi
  echo "$b"
}

build() { # build NAME
  local name=$1 r suffix suite t
  suffix=$(conf "$name" root)
  r="$BASE$suffix"
  suite=$(conf "$name" suite)
  # Fast path without the lock: the markers are written last, so a finished root is safe to report while test
  # sessions (which hold the lock shared) are using it.
  if is_done "$r" "$name"; then
    say "$name: ready at $r ($(tr '\n' ' ' < "$r/.kesu_hosts"))"
    return
  fi
  mkdir -p "$(dirname "$r")"
  # One builder at a time, and never while a test session has the chroot mounted (they hold it shared).
  exec 9>"$r.lock"
  flock 9
  if is_done "$r" "$name"; then
    say "$name: set up by another run at $r"
    exec 9>&-
    return
  fi
  export KESU_HOSTROOT=$r
  # Unmount on any exit, also after a failure half-way.
  trap 'bash "$CH" umount || true' EXIT

  # 1. the minimal root: a copy of the suite's cached debootstrap; a half-finished one is thrown away
  if [ ! -f "$r/.kesu_debootstrap_done" ]; then
    bash "$CH" umount || true
    if findmnt -rn -o TARGET | grep -q "^$r/"; then
      echo "setup_hosts.sh: something is still mounted below $r; refusing to delete it" >&2; exit 1
    fi
    local b; b=$(debootstrap_base "$suite")
    rm -rf --one-file-system "$r"
    cp -a "$b" "$r"
  fi

  bash "$CH" mount
  # never start services inside the chroot
  printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  local s
  for s in $(conf "$name" apt); do echo "deb $MIRROR $s main"; done > "$r/etc/apt/sources.list"

  # 2. packages, at their pinned versions
  t=$(date +%s)
  rm -f "$r/.kesu_packages_pinned" "$r/.kesu_hosts"
  bash "$CH" run env DEBIAN_FRONTEND=noninteractive "${APT[@]}" update -qq
  # shellcheck disable=SC2046  # word splitting of the package list is wanted
  bash "$CH" run env DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -q --no-install-recommends \
    $(conf "$name" packages)
  say "$name: apt-get install: $(( $(date +%s) - t ))s"
  [ "${KESU_KEEP_DEBS:-0}" = 1 ] || bash "$CH" run apt-get clean

  # 3. sanity: the hosts and their Python bindings load; print what is installed
  # shellcheck disable=SC2046
  bash "$CH" run dpkg-query -W -f='${Package} ${Version}\n' $(conf "$name" names) python3
  local app ver qt
  qt=$(conf "$name" qt)
  while read -r app ver; do
    case $app in
      gimp)
        bash "$CH" run "gimp-console-$ver" --version
        bash "$CH" run python3 -c 'import gi; gi.require_version("Gimp", "3.0"); from gi.repository import Gimp; print("GIMP Python binding ok")' ;;
      krita)
        bash "$CH" run python3 -c "from $qt import QtCore; print('$qt', QtCore.PYQT_VERSION_STR, 'Qt', QtCore.QT_VERSION_STR)" ;;
    esac
  done < <(conf "$name" hosts)
  binaries_ok "$r" "$name" || { echo "setup_hosts.sh: a host program is missing in $r" >&2; exit 1; }
  conf "$name" hosts > "$r/.kesu_hosts"
  conf "$name" packages > "$r/.kesu_packages_pinned"
  # the package names, for older checkouts' setup_hosts.sh (they compare this file's content)
  [ "$name" != trixie ] || echo "gimp krita python3-pyqt5 xvfb xauth" > "$r/.kesu_packages_done"
  bash "$CH" umount || true
  trap - EXIT
  exec 9>&-
  say "$name: ready at $r, size $(du -shx "$r" | cut -f1)"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${NAMES[@]}")
for n in "${names[@]}"; do
  build "$n"
done
say "total: $(( $(date +%s) - T0 ))s"
