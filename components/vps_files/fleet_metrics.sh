# Write this host's container, WireGuard and disk metrics to ${METRICS} in Prometheus'
# text format, for the node exporter's textfile collector (the alert rules read them).
# Run each minute by a systemd timer, as root. A service of the compose file with no
# container counts as neither running nor healthy, so a removed container alerts too.
set -euo pipefail

series() { # NAME HELP TYPE: the HELP and TYPE lines of a metric family
  printf '# HELP %s %s\n# TYPE %s %s\n' "$1" "$2" "$1" "$3"
}

label() { # a label value, escaped as the text format wants: \ " and newline
  local value="${1//\\/\\\\}"
  value="${value//\"/\\\"}"
  printf '%s' "${value//$'\n'/\\n}"
}

containers() {
  local compose=(docker compose --env-file "${APP_DIR}/.env" -f "${APP_DIR}/docker-compose.yml")
  local services ids service state health restarts
  declare -A seen=()
  series trading_infra_container_running "1 if the compose service's container is running." gauge
  series trading_infra_container_healthy "1 if it is running and its health check passes." gauge
  series trading_infra_container_restarts_total "Times the engine restarted the container." counter
  # Before the first deploy there is no compose file: no service, nothing to report.
  [[ -r "${APP_DIR}/docker-compose.yml" ]] || return 0
  services="$("${compose[@]}" config --services </dev/null | sort)" || services=""
  ids="$("${compose[@]}" ps --all --quiet </dev/null)" || ids=""
  if [[ -n "${ids}" ]]; then
    # shellcheck disable=SC2086 # one argument per container id
    while read -r service state health restarts; do
      [[ -n "${service}" && -z "${seen[${service}]:-}" ]] || continue
      seen[${service}]=1
      service="$(label "${service}")"
      printf 'trading_infra_container_running{service="%s"} %d\n' "${service}" \
        "$([[ "${state}" == running ]] && echo 1 || echo 0)"
      printf 'trading_infra_container_healthy{service="%s"} %d\n' "${service}" \
        "$([[ "${state}" == running && "${health}" =~ ^(healthy|none)$ ]] && echo 1 || echo 0)"
      printf 'trading_infra_container_restarts_total{service="%s"} %d\n' "${service}" "${restarts}"
    done < <(docker inspect --format \
      '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}}' \
      ${ids} </dev/null)
  fi
  while read -r service; do
    [[ -n "${service}" && -z "${seen[${service}]:-}" ]] || continue
    service="$(label "${service}")"
    printf 'trading_infra_container_running{service="%s"} 0\n' "${service}"
    printf 'trading_infra_container_healthy{service="%s"} 0\n' "${service}"
    printf 'trading_infra_container_restarts_total{service="%s"} 0\n' "${service}"
  done <<<"${services}"
}

wireguard() {
  # Peer names from the comments the stack writes above each [Peer] ("# name (role)").
  declare -A names=()
  local name="" key value
  series trading_infra_wireguard_latest_handshake_seconds \
    "Unix time of the peer's latest handshake (0: never)." gauge
  [[ -r "${WG_CONFIG}" ]] || return 0
  while read -r key value; do
    case "${key}" in
      "#") name="${value%% *}" ;;
      PublicKey) [[ -z "${name}" ]] || names[${value#= }]="${name}" ;;
    esac
  done <"${WG_CONFIG}"
  local public_key epoch
  while read -r public_key epoch; do
    [[ -n "${public_key}" ]] || continue
    printf 'trading_infra_wireguard_latest_handshake_seconds{peer="%s"} %d\n' \
      "$(label "${names[${public_key}]:-${public_key}}")" "${epoch}"
  done < <(wg show "${WG_INTERFACE}" latest-handshakes)
}

filesystems() {
  series trading_infra_filesystem_size_bytes "Size of the filesystem the path is on." gauge
  series trading_infra_filesystem_avail_bytes "Bytes free to unprivileged users." gauge
  local target size avail paths=()
  declare -A seen=()
  for target in ${DATA_PATHS}; do
    [[ ! -e "${target}" ]] || paths+=("${target}")
  done
  while read -r target size avail; do
    [[ -z "${seen[${target}]:-}" ]] || continue
    seen[${target}]=1
    printf 'trading_infra_filesystem_size_bytes{mountpoint="%s"} %d\n' "$(label "${target}")" "${size}"
    printf 'trading_infra_filesystem_avail_bytes{mountpoint="%s"} %d\n' "$(label "${target}")" "${avail}"
  done < <(df -B1 --output=target,size,avail "${paths[@]}" 2>/dev/null | tail -n +2)
}

mkdir -p "${METRICS%/*}"
{
  containers
  wireguard
  filesystems
} >"${METRICS}.tmp"
chmod 644 "${METRICS}.tmp"
mv "${METRICS}.tmp" "${METRICS}"
