# Host bootstrap and hardening, idempotent: every step compares before it changes and
# reports "changed:" or "unchanged:". Rendered by components/vps.py, which prepends the
# settings (readonly variables) and the files to install (install_* functions below).
#
# BOOTSTRAP_MODE=files  writes and validates the files only, under ROOT, unprivileged:
#                       what the tests run twice in a throwaway root.
# BOOTSTRAP_MODE=all    (default) also installs packages, applies ufw, reloads services.
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

validate_sshd() {
  # A bad drop-in must never reach a reload: sshd -t checks the whole configuration
  # (the main file includes sshd_config.d) before anything is applied.
  if ! sshd -t -f "${ROOT}/etc/ssh/sshd_config"; then
    log "error: sshd -t rejected the configuration; restoring the previous hardening file"
    if [[ -f "${ROOT}${SSHD_DROP_IN}.previous" ]]; then
      mv "${ROOT}${SSHD_DROP_IN}.previous" "${ROOT}${SSHD_DROP_IN}"
    else
      rm -f "${ROOT}${SSHD_DROP_IN}"
    fi
    exit 1
  fi
  log "valid: sshd configuration"
}

install_packages() {
  export DEBIAN_FRONTEND=noninteractive
  local wanted=(ca-certificates curl gnupg ufw fail2ban unattended-upgrades wireguard-tools)
  local missing=() package
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("${package}")
  done
  if ((${#missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
    log "changed: packages ${missing[*]}"
  else
    log "unchanged: packages"
  fi
  if ! command -v docker >/dev/null || ! docker compose version >/dev/null 2>&1; then
    # Docker's own repository: the engine and the compose plugin, on Debian and Ubuntu.
    # shellcheck disable=SC1091
    . /etc/os-release
    install -m 0755 -d /etc/apt/keyrings
    curl -fsSL "https://download.docker.com/linux/${ID}/gpg" -o /etc/apt/keyrings/docker.asc
    printf 'deb [arch=%s signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/%s %s stable\n' \
      "$(dpkg --print-architecture)" "${ID}" "${VERSION_CODENAME}" >/etc/apt/sources.list.d/docker.list
    apt-get update -qq
    apt-get install -y -qq docker-ce docker-ce-cli containerd.io docker-compose-plugin
    log "changed: docker engine and compose plugin"
  else
    log "unchanged: docker engine and compose plugin"
  fi
}

apply_firewall() {
  if was_changed "${UFW_RULES}" || ! ufw status | grep -q '^Status: active'; then
    ufw --force reset >/dev/null
    ufw default deny incoming
    ufw default allow outgoing
    # Each line of the rules file is one `ufw` argument list.
    while read -r -a rule; do
      [[ ${#rule[@]} -gt 0 && "${rule[0]}" != "#" ]] && ufw "${rule[@]}" >/dev/null
    done <"${ROOT}${UFW_RULES}"
    ufw --force enable >/dev/null
    log "changed: ufw rules"
  else
    log "unchanged: ufw rules"
  fi
}

# The read-only drift user: its own key, and sudo for exactly DRIFT_READS, each program
# resolved on this host (sudoers matches full paths). visudo checks the file first.
drift_user() {
  [[ -n "${DRIFT_KEY}" ]] || return 0
  if ! id "${DRIFT_USER}" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --password '*' "${DRIFT_USER}"
    log "changed: user ${DRIFT_USER}"
  fi
  local home read program rules="" staged
  home="$(getent passwd "${DRIFT_USER}" | cut -d: -f6)"
  install -d -o "${DRIFT_USER}" -g "${DRIFT_USER}" -m 0700 "${home}/.ssh"
  printf '%s\n' "${DRIFT_KEY}" >"${home}/.ssh/authorized_keys.new"
  install -o "${DRIFT_USER}" -g "${DRIFT_USER}" -m 0600 "${home}/.ssh/authorized_keys.new" \
    "${home}/.ssh/authorized_keys"
  rm -f "${home}/.ssh/authorized_keys.new"
  for read in "${DRIFT_READS[@]}"; do
    program="$(command -v "${read%% *}")"
    rules+="${DRIFT_USER} ALL=(root) NOPASSWD: ${program} ${read#* }"$'\n'
  done
  staged="$(mktemp)"
  printf '# Managed by trading-infra: ops drift reads, nothing else.\n%s' "${rules}" >"${staged}"
  visudo -cqf "${staged}"
  if [[ -f "${DRIFT_SUDOERS}" ]] && cmp -s "${staged}" "${DRIFT_SUDOERS}"; then
    rm -f "${staged}"
    log "unchanged: ${DRIFT_SUDOERS}"
  else
    install -m 0440 "${staged}" "${DRIFT_SUDOERS}"
    rm -f "${staged}"
    log "changed: ${DRIFT_SUDOERS}"
  fi
}

reload_services() {
  if was_changed "${SSHD_DROP_IN}"; then systemctl reload ssh; fi
  if was_changed /etc/docker/daemon.json; then systemctl restart docker; fi
  if was_changed /etc/fail2ban/jail.d/sshd.local; then systemctl restart fail2ban; fi
  systemctl enable --now docker fail2ban unattended-upgrades >/dev/null 2>&1
}

main() {
  if [[ "${MODE}" == "all" ]]; then
    install_packages
  fi
  if [[ -f "${ROOT}${SSHD_DROP_IN}" ]]; then
    cp -p "${ROOT}${SSHD_DROP_IN}" "${ROOT}${SSHD_DROP_IN}.previous"
  fi
  install_files
  validate_sshd
  rm -f "${ROOT}${SSHD_DROP_IN}.previous"
  if [[ "${MODE}" == "all" ]]; then
    install -d -o "${SSH_USER}" -g "${SSH_USER}" -m 0750 "${APP_DIR}"
    drift_user
    apply_firewall
    reload_services
  fi
  log "bootstrap complete: ${#CHANGED[@]} file(s) changed"
}

main
