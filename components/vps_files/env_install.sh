# Install the services' .env from stdin, readable by its owner only.
set -euo pipefail
umask 077
cat >"${APP_DIR}/.env.new"
mv "${APP_DIR}/.env.new" "${APP_DIR}/.env"
