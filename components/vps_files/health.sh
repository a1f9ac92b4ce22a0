# Wait, bounded, until every service of the deployment is running and healthy; fail the
# deployment (and print the laggards) otherwise.
set -euo pipefail
cd "${APP_DIR}"
deadline=$((SECONDS + HEALTH_TIMEOUT))
while :; do
  laggards="$(sudo docker compose --env-file .env -f docker-compose.yml ps --all \
    --format '{{.Service}} {{.State}} {{.Health}}' | awk '$2 != "running" || $3 != "healthy"')"
  if [[ -z "${laggards}" ]]; then
    echo "all services healthy"
    exit 0
  fi
  if ((SECONDS >= deadline)); then
    printf 'not healthy after %ss:\n%s\n' "${HEALTH_TIMEOUT}" "${laggards}" >&2
    exit 1
  fi
  sleep 5
done
