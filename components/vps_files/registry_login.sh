# Log the host's Docker in to the platform's registry with the read-only pull token from
# stdin (never an argument, which any local user could read in the process list). As
# root: the credentials land in root's Docker config, mode 600, where `sudo docker
# compose pull` reads them.
set -euo pipefail
umask 077
token="$(cat)"
[[ -n "${token}" ]] || { echo "error: no pull token on stdin" >&2; exit 1; }
printf '%s' "${token}" \
  | docker login --username "${REGISTRY_USER}" --password-stdin "${REGISTRY}" >/dev/null
echo "logged in to ${REGISTRY} as ${REGISTRY_USER}"
