#!/usr/bin/env bash
# Download packages of a newer Debian suite (trixie, trixie-backports, sid)
# without touching this machine's apt state: a private sources list, lists
# directory and cache under $CACHE/apt-<suite>, read by apt-get with the
# machine's Debian archive keyring, so every download is checked exactly
# as apt checks its own (Release signature, then each file's hash).
#
#   scripts/debian-fetch.sh SUITE PKG...   the .deb files of PKG into
#                                          $CACHE/apt-SUITE/debs; prints
#                                          each file's path on stdout
#   scripts/debian-fetch.sh SUITE --version PKG
#                                          the candidate version of PKG
#
# The lists are refreshed when older than a day (LV_APT_REFRESH=1: now).
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

suite=${1:?usage: debian-fetch.sh SUITE PKG...}; shift
case $suite in
trixie | trixie-backports | sid) ;;
*) die "debian-fetch: unknown suite '$suite' (trixie, trixie-backports or sid)" ;;
esac
D=$CACHE/apt-$suite
mkdir -p "$D/lists/partial" "$D/cache/archives/partial" "$D/debs"
# The mirror the machine's own sources use (deb822 or one-line format).
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p; s/^deb *\(\[[^]]*\] *\)\{0,1\}\(http[^ ]*\/debian\) .*/\2/p' \
	/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)
: "${mirror:=http://deb.debian.org/debian}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "debian-fetch: no $keyring (package debian-archive-keyring)"
src="deb [signed-by=$keyring] $mirror $suite main"
# A backports suite needs its base suite's lists too (its packages depend on it).
[ "$suite" = trixie-backports ] && src+=$'\n'"deb [signed-by=$keyring] $mirror trixie main"
printf '%s\n' "$src" >"$D/sources.list"
APT=(apt-get -q -o "Dir::Etc::sourcelist=$D/sources.list" -o Dir::Etc::sourceparts=/nonexistent
	-o "Dir::State::Lists=$D/lists" -o "Dir::Cache=$D/cache" -o Dir::State::status=/dev/null
	-o APT::Get::AllowUnauthenticated=false -o Acquire::AllowInsecureRepositories=false)
stamp=$D/lists/.updated
if [ "${LV_APT_REFRESH:-0}" = 1 ] || [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
	say "debian-fetch: apt-get update of $suite (private lists in $D)"
	"${APT[@]}" update >"$D/update.log" 2>&1 ||
		die "debian-fetch: apt-get update of $suite failed; see $D/update.log: $(tail -n 2 "$D/update.log" | tr '\n' ' ')"
	touch "$stamp"
fi
if [ "${1:-}" = --version ]; then
	v=$(apt-cache -o "Dir::Etc::sourcelist=$D/sources.list" -o Dir::Etc::sourceparts=/nonexistent \
		-o "Dir::State::Lists=$D/lists" -o "Dir::Cache=$D/cache" -o Dir::State::status=/dev/null \
		policy "$2" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	if [ -z "$v" ] || [ "$v" = "(none)" ]; then die "debian-fetch: no candidate for '$2' in $suite"; fi
	echo "$v"; exit 0
fi
cd "$D/debs"
for p in "$@"; do
	# apt-get download checks the file against the signed lists.
	"${APT[@]}" download "$p" >>"$D/download.log" 2>&1 ||
		die "debian-fetch: apt-get download $p from $suite failed; see $D/download.log: $(tail -n 2 "$D/download.log" | tr '\n' ' ')"
	name=${p%%=*}
	# shellcheck disable=SC2012 # the newest file of that package name
	f=$(ls -t "${name}"_*.deb | head -1)
	echo "$D/debs/$f"
done
