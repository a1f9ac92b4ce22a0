# Start or update the role's services; orphans of an older file are removed.
set -euo pipefail
cd "${APP_DIR}"
sudo docker compose --env-file .env -f docker-compose.yml pull --quiet
sudo docker compose --env-file .env -f docker-compose.yml up -d --remove-orphans
