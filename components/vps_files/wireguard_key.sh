# WireGuard key pair, generated on the host once (as root). Only the public key leaves
# it (stdout); the private key stays in a root-only file and never enters Pulumi's state.
set -euo pipefail
umask 077
install -d -m 0700 /etc/wireguard
if [[ ! -s /etc/wireguard/private.key ]]; then
  wg genkey >/etc/wireguard/private.key.new
  mv /etc/wireguard/private.key.new /etc/wireguard/private.key
fi
chmod 0600 /etc/wireguard/private.key
private_key="$(cat /etc/wireguard/private.key)"
[[ -n "${private_key}" ]] || { echo "error: /etc/wireguard/private.key is empty" >&2; exit 1; }
printf '%s\n' "${private_key}" | wg pubkey
