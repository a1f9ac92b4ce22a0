# Shared by the bootstrap and its firewall part (components/vps.py renders them into one
# script): settings come first, as readonly variables, then these helpers.
set -euo pipefail

ROOT="${ROOT:-}"
MODE="${BOOTSTRAP_MODE:-all}"
CHANGED=()

log() { printf '%s\n' "$*"; }

# write_file PATH MODE: install stdin at ROOT/PATH when its content or mode differ.
write_file() {
  local path="${ROOT}$1" mode="$2" staged
  staged="$(mktemp)"
  cat >"${staged}"
  if [[ -f "${path}" ]] && cmp -s "${staged}" "${path}" \
    && [[ "$(stat -c '%a' "${path}")" == "${mode}" ]]; then
    rm -f "${staged}"
    log "unchanged: $1"
    return 0
  fi
  mkdir -p "$(dirname "${path}")"
  install -m "${mode}" "${staged}" "${path}"
  rm -f "${staged}"
  CHANGED+=("$1")
  log "changed: $1"
}

was_changed() {
  local item
  for item in "${CHANGED[@]:-}"; do
    [[ "${item}" == "$1" ]] && return 0
  done
  return 1
}
