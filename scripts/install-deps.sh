#!/bin/bash
# Installs what pvboot and its tests need on Debian 12 (as root) into ./.venv. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES=(
  python3 python3-venv python3-pip
  e2fsprogs xfsprogs btrfs-progs dosfstools mtools xorriso lvm2 qemu-utils fdisk util-linux
  tmux xen-utils-4.17 grub-emu grub-common grub-pc-bin
  strace libseccomp2 lzop lz4 cpio
  python3-libfdt
)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
