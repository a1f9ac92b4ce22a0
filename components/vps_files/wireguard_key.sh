# WireGuard key pair, generated on the host once. Only the public key leaves it (stdout);
# the private key stays in a root-only file and never enters Pulumi's state.
set -euo pipefail
sudo install -d -m 0700 /etc/wireguard
if ! sudo test -s /etc/wireguard/private.key; then
  wg genkey | sudo tee /etc/wireguard/private.key >/dev/null
  sudo chmod 0600 /etc/wireguard/private.key
fi
sudo cat /etc/wireguard/private.key | wg pubkey
