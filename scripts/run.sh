#!/usr/bin/env bash
# make run: set up, build, boot a guest, insmod, demo (qemu/demo.sh), rmmod.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"
exec "$TOP/scripts/guest.sh" "$TOP/qemu/demo.sh" --timeout 600
