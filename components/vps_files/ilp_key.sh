# The host's QuestDB ILP key (ECDSA P-256), generated on the host once, as root. The
# private half stays in a root-only env file the host's services read (QuestDB's TCP
# clients take username, token, token_x, token_y); only the public half leaves (stdout,
# one line of QuestDB's ILP auth file: KEY_ID ec-p-256-sha256 X Y, base64url).
set -euo pipefail
umask 077
env_file="${APP_DIR}/ilp.env"
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
if [[ ! -s "${env_file}" ]]; then
  der="$(mktemp)"
  trap 'rm -f "${der}"' EXIT
  openssl ecparam -name prime256v1 -genkey -noout | openssl ec -outform DER -out "${der}" 2>/dev/null
  # SEC1 ECPrivateKey (RFC 5915) with the named curve: 121 bytes; d at byte 7, the
  # public point 04||X||Y at byte 56. The fixed bytes around them are checked first.
  [[ "$(stat -c %s "${der}")" == 121 \
    && "$(od -An -tx1 -N7 "${der}" | tr -d ' \n')" == 30770201010420 \
    && "$(od -An -tx1 -j51 -N6 "${der}" | tr -d ' \n')" == a14403420004 ]] \
    || { echo "error: unexpected EC key encoding from openssl" >&2; exit 1; }
  {
    printf 'QUESTDB_ILP_USERNAME=%s\n' "${KEY_ID}"
    printf 'QUESTDB_ILP_TOKEN=%s\n' "$(tail -c +8 "${der}" | head -c 32 | b64url)"
    printf 'QUESTDB_ILP_TOKEN_X=%s\n' "$(tail -c +58 "${der}" | head -c 32 | b64url)"
    printf 'QUESTDB_ILP_TOKEN_Y=%s\n' "$(tail -c +90 "${der}" | head -c 32 | b64url)"
  } >"${env_file}.new"
  mv "${env_file}.new" "${env_file}"
fi
chmod 0600 "${env_file}"
value() { sed -n "s/^$1=//p" "${env_file}"; }
x="$(value QUESTDB_ILP_TOKEN_X)"
y="$(value QUESTDB_ILP_TOKEN_Y)"
[[ "$(value QUESTDB_ILP_USERNAME)" == "${KEY_ID}" && ${#x} == 43 && ${#y} == 43 ]] \
  || { echo "error: ${env_file} holds no valid ILP key" >&2; exit 1; }
printf '%s ec-p-256-sha256 %s %s\n' "${KEY_ID}" "${x}" "${y}"
