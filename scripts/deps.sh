#!/usr/bin/env bash
# Installs the Debian packages yubin needs to build and test, when any is
# missing. Idempotent, silent and fast when everything is present.
# Usage: scripts/deps.sh [build|test|bench]   (default: test — build plus test tools)
set -euo pipefail

build_pkgs=(gcc make meson ninja-build pkg-config libevent-dev libssl-dev
            libsqlite3-dev libcrypt-dev zlib1g-dev libc-ares-dev openssl)
test_pkgs=(clang libclang-rt-14-dev python3 python3-pytest curl dovecot-imapd mutt swaks unbound postfix clamav-daemon)
bench_pkgs=(dovecot-pop3d dovecot-imapd)

case "${1:-test}" in
	build) want=("${build_pkgs[@]}") ;;
	test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
	bench) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
	*) echo "usage: $0 [build|test|bench]" >&2; exit 64 ;;
esac

missing=()
for pkg in "${want[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "yubin: installing missing Debian packages: ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || { echo "yubin: run as root or install sudo" >&2; exit 1; }
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
