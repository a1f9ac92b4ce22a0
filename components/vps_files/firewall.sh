# The firewall, applied as a diff and never reset, so SSH keeps its rule at every moment:
# - ufw: rules missing from UFW_RULES are added first, then rules no longer in it are
#   deleted; UFW_RULES spells each rule as `ufw show added` lists it.
# - DOCKER-USER: published ports bypass ufw's INPUT rules, so the mesh policy lives in a
#   block of /etc/ufw/after.rules (between DOCKER_USER_BEGIN and DOCKER_USER_END) that
#   every `ufw reload` or boot loads again.
apply_firewall() {
  local after="${ROOT}/etc/ufw/after.rules" staged wanted current rule reload=0 edits=0
  staged="$(mktemp)"
  awk -v begin="${DOCKER_USER_BEGIN}" -v end="${DOCKER_USER_END}" '
    $0 == begin { skip = 1 }
    !skip { print }
    $0 == end { skip = 0 }' "${after}" >"${staged}"
  cat "${ROOT}${DOCKER_USER_RULES}" >>"${staged}"
  if cmp -s "${staged}" "${after}"; then
    rm -f "${staged}"
  else
    install -m 0640 "${staged}" "${after}"
    rm -f "${staged}"
    reload=1
    log "changed: ${after#"${ROOT}"} (DOCKER-USER)"
  fi

  if ! grep -q '^DEFAULT_INPUT_POLICY="DROP"' "${ROOT}/etc/default/ufw" \
    || ! grep -q '^DEFAULT_OUTPUT_POLICY="ACCEPT"' "${ROOT}/etc/default/ufw"; then
    ufw default deny incoming >/dev/null
    ufw default allow outgoing >/dev/null
    log "changed: ufw defaults (deny incoming, allow outgoing)"
  fi

  wanted="$(grep -v -e '^#' -e '^[[:space:]]*$' "${ROOT}${UFW_RULES}" | sort -u)"
  current="$(ufw show added | sed -n 's/^ufw //p' | sort -u)"
  # xargs splits each line into arguments the way a shell would ('comment' quotes).
  while IFS= read -r rule; do
    [[ -n "${rule}" ]] || continue
    printf '%s\n' "${rule}" | xargs ufw >/dev/null
    log "added: ufw ${rule}"
    edits=$((edits + 1))
  done < <(comm -13 <(printf '%s\n' "${current}") <(printf '%s\n' "${wanted}"))
  while IFS= read -r rule; do
    [[ -n "${rule}" ]] || continue
    printf '%s\n' "${rule}" | xargs ufw delete >/dev/null
    log "deleted: ufw ${rule}"
    edits=$((edits + 1))
  done < <(comm -23 <(printf '%s\n' "${current}") <(printf '%s\n' "${wanted}"))

  if ! ufw status | grep -q '^Status: active'; then
    ufw --force enable >/dev/null
    log "changed: ufw enabled"
  elif ((reload)); then
    ufw reload >/dev/null
    log "changed: ufw reloaded"
  elif ((edits == 0)); then
    log "unchanged: ufw rules"
  fi
}
