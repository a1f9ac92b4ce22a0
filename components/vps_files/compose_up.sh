# Start or update the role's services; orphans of an older file are removed. stdin is
# the deploy's manifest: the files must be exactly the ones this deploy installed.
set -euo pipefail
cd "${APP_DIR}"
sha256sum --check --strict --quiet
sudo docker compose --env-file .env -f docker-compose.yml pull --quiet
sudo docker compose --env-file .env -f docker-compose.yml up -d --remove-orphans
