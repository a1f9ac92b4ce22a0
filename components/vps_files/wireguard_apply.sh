# Install wg0.conf from stdin (interface and peers, no private key) and apply it without
# dropping the tunnel: the private key is spliced in from the host's own key file.
set -euo pipefail
staged="$(mktemp)"
trap 'rm -f "${staged}"' EXIT
cat >"${staged}"
{
  sed -n '1,/^\[Interface\]$/p' "${staged}"
  printf 'PrivateKey = %s\n' "$(sudo cat /etc/wireguard/private.key)"
  sed '1,/^\[Interface\]$/d' "${staged}"
} | sudo install -m 0600 /dev/stdin /etc/wireguard/wg0.conf
sudo systemctl enable wg-quick@wg0 >/dev/null 2>&1
if sudo wg show wg0 >/dev/null 2>&1; then
  sudo bash -c 'wg syncconf wg0 <(wg-quick strip wg0)'
else
  sudo systemctl start wg-quick@wg0
fi
sudo wg show wg0 peers
