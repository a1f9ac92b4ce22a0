# Back up this host's stateful data with restic (run by the trading-infra-backup
# service, as root, with the repository and its credentials from backup.env). Made
# consistent first: QuestDB's files are held by CHECKPOINT CREATE until CHECKPOINT
# RELEASE; Redis writes a fresh dump with BGSAVE. Every run leaves its outcome in
# ${METRICS} for the backup alerts, success or not.
set -euo pipefail
umask 077

readonly PROJECT="${APP_DIR##*/}"
mkdir -p "${METRICS%/*}"
started="$(date +%s)"
checkpoint=0

compose() {
  docker compose --env-file "${APP_DIR}/.env" -f "${APP_DIR}/docker-compose.yml" "$@"
}

questdb() {
  curl -fsS --max-time 60 -G --data-urlencode "query=$1" \
    "http://127.0.0.1:${QUESTDB_HTTP_PORT}/exec" >/dev/null
}

release_checkpoint() {
  if ((checkpoint)); then
    checkpoint=0
    questdb "CHECKPOINT RELEASE"
    echo "questdb: checkpoint released"
  fi
}

previous_success() {
  awk '$1 == "trading_infra_backup_last_success_timestamp_seconds" { print $2 }' \
    "${METRICS}" 2>/dev/null || true
}

finish() {
  local status=$? now success
  release_checkpoint || status=1
  now="$(date +%s)"
  success="$(previous_success)"
  ((status == 0)) && success="${now}"
  {
    echo "# HELP trading_infra_backup_last_run_success 1 if the last backup run succeeded."
    echo "# TYPE trading_infra_backup_last_run_success gauge"
    echo "trading_infra_backup_last_run_success $((status == 0 ? 1 : 0))"
    echo "# HELP trading_infra_backup_last_run_timestamp_seconds When the last run ended."
    echo "# TYPE trading_infra_backup_last_run_timestamp_seconds gauge"
    echo "trading_infra_backup_last_run_timestamp_seconds ${now}"
    echo "# HELP trading_infra_backup_last_success_timestamp_seconds When a run last succeeded."
    echo "# TYPE trading_infra_backup_last_success_timestamp_seconds gauge"
    echo "trading_infra_backup_last_success_timestamp_seconds ${success:-0}"
    echo "# HELP trading_infra_backup_duration_seconds How long the last run took."
    echo "# TYPE trading_infra_backup_duration_seconds gauge"
    echo "trading_infra_backup_duration_seconds $((now - started))"
  } >"${METRICS}.tmp"
  mv "${METRICS}.tmp" "${METRICS}"
  exit "${status}"
}
trap finish EXIT

# One restic job at a time on this host: a restore drill holds the same lock.
exec 9>"${LOCK}"
flock -w 600 9 || { echo "error: ${LOCK} held for 10 minutes (a restore drill?)" >&2; exit 1; }

volume() { docker volume inspect --format '{{ .Mountpoint }}' "${PROJECT}_$1"; }

paths=()
if [[ "${ROLE}" == orchestrator ]]; then
  checkpoint=1
  questdb "CHECKPOINT CREATE"
  echo "questdb: checkpoint created"
  paths+=("$(volume questdb-data)")
fi

before="$(compose exec -T redis redis-cli LASTSAVE </dev/null)"
compose exec -T redis redis-cli BGSAVE </dev/null >/dev/null
deadline=$((SECONDS + 120))
until [[ "$(compose exec -T redis redis-cli LASTSAVE </dev/null)" != "${before}" ]]; do
  ((SECONDS < deadline)) || { echo "error: redis BGSAVE did not finish in 120 s" >&2; exit 1; }
  sleep 1
done
echo "redis: dump written"
paths+=("$(volume redis-data)")

# The first run creates the repository (its own prefix of the bucket).
restic cat config >/dev/null 2>&1 || restic init
restic backup --host "${BACKUP_HOST}" --tag trading-infra "${paths[@]}"
release_checkpoint

# Forget by the retention policy; prune (rewrite packs) at most once an hour.
# shellcheck disable=SC2086 # FORGET_ARGS is a list of options, rendered shell-quoted
restic forget --host "${BACKUP_HOST}" ${FORGET_ARGS}
stamp="${METRICS%/*}/backup-pruned"
if [[ ! -f "${stamp}" ]] || (($(date +%s) - $(stat -c %Y "${stamp}") >= 3600)); then
  restic prune
  touch "${stamp}"
fi
