# Wait, bounded, until every service of the compose file is running and healthy; fail
# the deployment (and print the laggards) otherwise. stdin is the deploy's manifest:
# what is checked is what this deploy installed.
set -euo pipefail
cd "${APP_DIR}"
sha256sum --check --strict --quiet
compose=(sudo docker compose --env-file .env -f docker-compose.yml)
expected="$("${compose[@]}" config --services </dev/null | sort)"
[[ -n "${expected}" ]] || { echo "error: the compose file defines no service" >&2; exit 1; }
deadline=$((SECONDS + HEALTH_TIMEOUT))
while :; do
  healthy="$("${compose[@]}" ps --all --format '{{.Service}} {{.State}} {{.Health}}' </dev/null \
    | awk '$2 == "running" && $3 == "healthy" { print $1 }' | sort)"
  laggards="$(comm -23 <(printf '%s\n' "${expected}") <(printf '%s\n' "${healthy}"))"
  if [[ -z "${laggards}" ]]; then
    echo "all services healthy"
    exit 0
  fi
  if ((SECONDS >= deadline)); then
    printf 'not healthy after %ss:\n%s\n' "${HEALTH_TIMEOUT}" "${laggards}" >&2
    exit 1
  fi
  sleep 2
done
