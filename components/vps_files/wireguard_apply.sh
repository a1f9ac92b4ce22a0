# Install wg0.conf from stdin (interface and peers, no private key) and apply it without
# dropping the tunnel: the private key is spliced in from the host's own key file. Runs
# as root; every file it writes is root-only.
set -euo pipefail
umask 077
staged="$(mktemp)"
trap 'rm -f "${staged}" "${staged}.conf"' EXIT
cat >"${staged}"
grep -q '^\[Interface\]$' "${staged}" || { echo "error: no [Interface] on stdin" >&2; exit 1; }
# An assignment of its own, so a failed read fails the step (set -e does not see a
# failure inside printf's arguments) and an empty key never becomes `PrivateKey = `.
private_key="$(cat /etc/wireguard/private.key)"
[[ -n "${private_key}" ]] || { echo "error: /etc/wireguard/private.key is empty" >&2; exit 1; }
{
  sed -n '1,/^\[Interface\]$/p' "${staged}"
  printf 'PrivateKey = %s\n' "${private_key}"
  sed '1,/^\[Interface\]$/d' "${staged}"
} >"${staged}.conf"
install -m 0600 "${staged}.conf" /etc/wireguard/wg0.conf
systemctl enable wg-quick@wg0 >/dev/null 2>&1
if wg show wg0 >/dev/null 2>&1; then
  wg syncconf wg0 <(wg-quick strip wg0)
else
  systemctl start wg-quick@wg0
fi
wg show wg0 peers
