"""The drift handlers, one module per service family; importing this package registers
every one of them in ``ops.drift.aws.HANDLERS``."""

from ops.drift.handlers import (  # noqa: F401 (registration)
    containers,
    edge,
    identity,
    load_balancing,
    network,
    observability,
    serverless,
    storage,
)
