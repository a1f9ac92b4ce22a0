# Restore drill (python -m ops restore-drill): this host's latest snapshot restored into
# a scratch directory, verified, checked, and removed. Run as root through sudo (the
# drift user may run exactly this, with no arguments). Prints "### name" sections that
# ops restore-drill reads; what they mean (RPO, sizes) is decided there.
set -euo pipefail
umask 077

# backup.env (systemd EnvironmentFile syntax: KEY="value"), read without evaluating it.
while IFS= read -r line; do
  [[ "${line}" =~ ^([A-Z_]+)=\"(.*)\"$ ]] || continue
  export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
done <"${BACKUP_ENV}"

# One restic job at a time on this host: a backup run holds the same lock (restic's
# check and forget need the repository to themselves).
exec 9>"${LOCK}"
flock -w 600 9 || { echo "error: a backup held ${LOCK} for 10 minutes" >&2; exit 1; }

mkdir -p "${SCRATCH_PARENT}"
scratch="$(mktemp -d "${SCRATCH_PARENT}/restore-drill.XXXXXX")"
trap 'rm -rf "${scratch}"' EXIT

section() { printf '### %s\n' "$1"; }
# Everything from the repository itself, nothing from the backups' local cache.
restic() { command restic --no-cache "$@"; }

section now
date +%s
section snapshot
restic snapshots --json --host "${BACKUP_HOST}" latest
section files
restic ls --json --host "${BACKUP_HOST}" latest

started="$(date +%s%N)"
restored=0
restic restore latest --host "${BACKUP_HOST}" --target "${scratch}" --verify >&2 || restored=$?
ended="$(date +%s%N)"
section restore
echo "${restored} $(((ended - started) / 1000000))"
section restored
find "${scratch}" -type f -printf '%s /%P\n'

checked=0
restic check >&2 || checked=$?
section check
echo "${checked}"
