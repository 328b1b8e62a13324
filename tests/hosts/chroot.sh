#!/bin/bash
# Mount, unmount and enter one of the cached host chroots (GIMP 3, Krita) used by the real-host tests.
#
#   tests/hosts/chroot.sh mount [PATH...]   mount proc/sys/dev/dev-pts/shm, then bind every PATH at the same path
#   tests/hosts/chroot.sh umount            unmount everything below the root (deepest first)
#   tests/hosts/chroot.sh run CMD...        run CMD inside as root with a clean environment (mounts must exist)
#   tests/hosts/chroot.sh status            print "ready" (exit 0) or why the chroot is not usable (exit 1)
#
# Root dir: ${KESU_HOSTROOT:-/var/cache/kesu/hostroot} (the harness points it at each chroot of chroots.json).
# Must run as root (mount/chroot).
# Every mount is made private right away so nothing propagates back to the machine's own /dev, /sys, ...
set -euo pipefail
R=${KESU_HOSTROOT:-/var/cache/kesu/hostroot}
R=${R%/}

die() { echo "chroot.sh: $*" >&2; exit 1; }

_mnt() { # _mnt SRC DST [mount args...]: mount once (no-op when DST is already a mount point)
  local src=$1 dst=$2; shift 2
  mkdir -p "$dst"
  mountpoint -q "$dst" && return 0
  mount "$@" "$src" "$dst"
  mount --make-private "$dst"
}

_bind() { # _bind PATH: host PATH (dir or file) at the same path inside
  local p=$1
  p=$(realpath -m "$p")
  [ -e "$p" ] || die "cannot bind $p: it does not exist on the host"
  case $p in /|/proc*|/sys*|/dev*) die "refusing to bind $p";; esac
  if [ -d "$p" ]; then
    _mnt "$p" "$R$p" --bind
  else
    mkdir -p "$(dirname "$R$p")"; [ -e "$R$p" ] || : > "$R$p"
    mountpoint -q "$R$p" || { mount --bind "$p" "$R$p"; mount --make-private "$R$p"; }
  fi
}

do_mount() {
  [ -x "$R/usr/bin/apt-get" ] || die "no chroot at $R (run tests/hosts/setup_hosts.sh)"
  _mnt proc "$R/proc" -t proc
  _mnt /sys "$R/sys" --bind
  _mnt /dev "$R/dev" --bind
  _mnt /dev/pts "$R/dev/pts" --bind
  _mnt shm "$R/dev/shm" -t tmpfs -o mode=1777
  cp -f /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
  local p
  for p in "$@"; do _bind "$p"; done
}

do_umount() {
  # Deepest first; a busy mount (a process still inside) falls back to a lazy unmount so we never leave it behind.
  local m rc=0
  while read -r m; do
    [ -n "$m" ] || continue
    umount "$m" 2>/dev/null || umount -l "$m" || rc=1
  done < <(findmnt -rn -o TARGET | grep -F "$R/" | grep "^$R/" | sort -r)
  return $rc
}

do_run() {
  exec env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    chroot "$R" "$@"
}

do_status() {
  [ "$(id -u)" = 0 ] || { echo "not root: mount/chroot need root"; return 1; }
  [ -f "$R/.kesu_hosts" ] && [ -f "$R/.kesu_packages_pinned" ] \
    || { echo "no finished chroot at $R (run: sudo bash tests/hosts/setup_hosts.sh)"; return 1; }
  local app ver
  while read -r app ver; do
    case $app in
      krita) [ -x "$R/usr/bin/krita" ] || { echo "krita missing in $R"; return 1; } ;;
      gimp) [ -x "$R/usr/bin/gimp-console-$ver" ] || { echo "gimp-console-$ver missing in $R"; return 1; } ;;
    esac
  done < "$R/.kesu_hosts"
  echo ready
}

cmd=${1:-}; shift || true
case $cmd in
  mount) [ "$(id -u)" = 0 ] || die "must run as root"; do_mount "$@" ;;
  umount) [ "$(id -u)" = 0 ] || die "must run as root"; do_umount ;;
  run) do_run "$@" ;;
  status) do_status ;;
  *) die "usage: chroot.sh mount [PATH...] | umount | run CMD... | status" ;;
esac
