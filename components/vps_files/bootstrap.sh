# Host bootstrap and hardening, idempotent: every step compares before it changes and
# reports "changed:" or "unchanged:". Rendered by components/vps.py, which prepends the
# settings (readonly variables) and the files to install (install_* functions below).
#
# BOOTSTRAP_MODE=files  writes and validates the files only, under ROOT, unprivileged:
#                       what the tests run twice in a throwaway root.
# BOOTSTRAP_MODE=all    (default) also installs packages, applies ufw, reloads services.

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
  local wanted=(ca-certificates curl gnupg ufw fail2ban unattended-upgrades wireguard-tools restic)
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
  if ! docker_is_recent || ! docker compose version >/dev/null 2>&1; then
    # Docker's own repository: the engine and the compose plugin, on Debian and Ubuntu;
    # installing replaces an older engine (or the distribution's docker.io).
    # shellcheck disable=SC1091
    . /etc/os-release
    install -m 0755 -d /etc/apt/keyrings
    curl -fsSL "https://download.docker.com/linux/${ID}/gpg" -o /etc/apt/keyrings/docker.asc
    printf 'deb [arch=%s signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/%s %s stable\n' \
      "$(dpkg --print-architecture)" "${ID}" "${VERSION_CODENAME}" >/etc/apt/sources.list.d/docker.list
    apt-get update -qq
    apt-get install -y -qq docker-ce docker-ce-cli containerd.io docker-compose-plugin
    log "changed: docker engine and compose plugin"
    docker_is_recent || {
      log "error: docker engine $(docker_version) is older than ${MIN_DOCKER_VERSION}"
      exit 1
    }
  else
    log "unchanged: docker engine $(docker_version) and compose plugin"
  fi
}

# The installed engine's version (docker-ce's package version without epoch and
# revision), empty when Docker's engine package is not installed.
docker_version() {
  dpkg-query -W -f='${Version}' docker-ce 2>/dev/null | sed -E 's/^[0-9]+://; s/[-~+].*$//'
}

# Docker >= MIN_DOCKER_VERSION drops other hosts' traffic to loopback-published ports.
docker_is_recent() {
  local version
  version="$(docker_version)"
  [[ -n "${version}" ]] \
    && [[ "$(printf '%s\n%s\n' "${MIN_DOCKER_VERSION}" "${version}" | sort -V | head -n1)" \
      == "${MIN_DOCKER_VERSION}" ]]
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
  # Unit drop-ins take effect on daemon-reload; so does the sshd drop-in's Port on
  # Ubuntu >= 24.04, whose ssh.socket generator reads it.
  if was_changed "${SSHD_DROP_IN}" || was_changed "${SSH_SOCKET_DROP_IN}" \
    || was_changed "${DOCKER_DROP_IN}"; then
    systemctl daemon-reload
  fi
  if was_changed "${SSHD_DROP_IN}" || was_changed "${SSH_SOCKET_DROP_IN}"; then
    if systemctl is-enabled --quiet ssh.socket 2>/dev/null; then
      # Socket-activated sshd (Ubuntu >= 22.10) listens where ssh.socket says; each
      # connection's sshd reads the drop-in. Open sessions stay up.
      systemctl restart ssh.socket
    else
      systemctl reload ssh
    fi
  fi
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
