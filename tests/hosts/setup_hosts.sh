#!/bin/bash
# Build (idempotently) the Debian 13 "trixie" chroot holding GIMP 3.0 + Krita 5.2 (+ PyQt5, Xvfb) that the
# real-host tests run in. The machine's own apt sources are never touched: everything goes into the chroot.
#
#   sudo bash tests/hosts/setup_hosts.sh
#
# Env: KESU_HOSTROOT (default /var/cache/kesu/hostroot), KESU_MIRROR (default http://deb.debian.org/debian),
#      KESU_KEEP_DEBS=1 keeps the downloaded .debs in the chroot.
# From nothing: ~5 min (debootstrap ~1 min, ~400 MB of packages). A re-run that finds it done: ~1 s.
# Marker files in the root: .kesu_debootstrap_done (base system), .kesu_packages_done (the package list installed).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
R=${KESU_HOSTROOT:-/var/cache/kesu/hostroot}
R=${R%/}
export KESU_HOSTROOT=$R
MIRROR=${KESU_MIRROR:-http://deb.debian.org/debian}
# python3-pyqt5 is only a Recommends of krita, but Krita's Python plug-ins need it.
PKGS="gimp krita python3-pyqt5 xvfb xauth"
CH="$HERE/chroot.sh"
T0=$(date +%s)
say() { echo "[setup_hosts] $*"; }

[ "$(id -u)" = 0 ] || { echo "setup_hosts.sh must run as root (debootstrap, mount, chroot)" >&2; exit 1; }

is_done() {
  [ "$(cat "$R/.kesu_packages_done" 2>/dev/null || true)" = "$PKGS" ] \
    && [ -x "$R/usr/bin/gimp-console-3.0" ] && [ -x "$R/usr/bin/krita" ]
}
# Fast path without the lock: the marker is written last, so a finished root is safe to report while test
# sessions (which hold the lock shared) are using it.
if is_done; then
  say "already set up at $R ($(( $(date +%s) - T0 ))s)"
  exit 0
fi

mkdir -p "$(dirname "$R")"
# One builder at a time, and never while a test session has the chroot mounted (they hold it shared).
exec 9>"$R.lock"
flock 9
if is_done; then
  say "set up by another run at $R"
  exit 0
fi

# Unmount on any exit, also after a failure half-way.
trap 'bash "$CH" umount || true' EXIT

# 1. debootstrap on the host (the tool only; it does not change apt sources)
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on the host"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# 2. minimal trixie root; a half-finished one (no marker) is thrown away and rebuilt
if [ ! -f "$R/.kesu_debootstrap_done" ]; then
  bash "$CH" umount || true
  if findmnt -rn -o TARGET | grep -q "^$R/"; then
    echo "setup_hosts.sh: something is still mounted below $R; refusing to delete it" >&2; exit 1
  fi
  rm -rf --one-file-system "$R"
  t=$(date +%s)
  say "debootstrap trixie -> $R"
  debootstrap --variant=minbase trixie "$R" "$MIRROR"
  touch "$R/.kesu_debootstrap_done"
  say "debootstrap: $(( $(date +%s) - t ))s"
fi

bash "$CH" mount
# never start services inside the chroot
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
echo "deb $MIRROR trixie main" > "$R/etc/apt/sources.list"

# 3. packages
t=$(date +%s)
rm -f "$R/.kesu_packages_done"
bash "$CH" run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
bash "$CH" run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS
say "apt-get install: $(( $(date +%s) - t ))s"
[ "${KESU_KEEP_DEBS:-0}" = 1 ] || bash "$CH" run apt-get clean

# 4. sanity: both hosts and their Python bindings load
bash "$CH" run gimp-console-3.0 --version
bash "$CH" run dpkg-query -W -f='${Package} ${Version}\n' gimp krita python3-gi gir1.2-gimp-3.0 python3-pyqt5 xvfb
bash "$CH" run python3 -c 'import gi; gi.require_version("Gimp", "3.0"); from gi.repository import Gimp; import PyQt5.QtCore; print("python bindings ok")'
[ -x "$R/usr/bin/kritarunner" ] || { echo "setup_hosts.sh: kritarunner missing in the chroot" >&2; exit 1; }
echo "$PKGS" > "$R/.kesu_packages_done"
say "total: $(( $(date +%s) - T0 ))s, size: $(du -shx "$R" | cut -f1)"
