"""Sample trading API: a region-aware health endpoint, the default image of the stacks."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

REGION = os.environ.get("AWS_REGION", "unknown")
VERSION = os.environ.get("APP_VERSION", "dev")

app = FastAPI(title="trading-api", version=VERSION)


@app.middleware("http")
async def region_header(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every response names the region that served it, so failover is visible."""
    response = await call_next(request)
    response.headers["X-Region"] = REGION
    return response


@app.get("/health")
async def health() -> dict[str, str]:
    """Load balancer and container health check."""
    return {"status": "ok", "region": REGION, "version": VERSION}
