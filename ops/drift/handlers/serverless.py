"""Lambda functions (code hash, configuration, tracing), layer versions and resource
policy statements (permissions)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from botocore.exceptions import ClientError

from ops.drift.aws import Compare, Live, Reader, by, handler, name_of, unordered
from ops.drift.model import Diff
from ops.drift.state import StateResource

_FUNCTION = "aws:lambda/function:Function"
_LAYER = "aws:lambda/layerVersion:LayerVersion"
_PERMISSION = "aws:lambda/permission:Permission"


@handler(_FUNCTION, live_id=lambda r: str(r.get("name") or r.id))(
    lambda r, region, _: by(
        "FunctionName", r.items(_FUNCTION, "lambda", region, "list_functions", "Functions")
    )
)
def compare_function(state: StateResource, live: Live) -> list[Diff]:
    tracing = state.get("tracingConfig") or {}
    return (
        Compare()(
            "sourceCodeHash",
            state.get("sourceCodeHash") or state.get("codeSha256"),
            live.get("CodeSha256"),
        )("runtime", state.get("runtime"), live.get("Runtime"))(
            "handler", state.get("handler"), live.get("Handler")
        )("timeout", state.get("timeout"), live.get("Timeout"), int)(
            "memorySize", state.get("memorySize"), live.get("MemorySize"), int
        )("role", state.get("role"), live.get("Role"))(
            "tracingConfig.mode",
            tracing.get("mode") if isinstance(tracing, dict) else None,
            (live.get("TracingConfig") or {}).get("Mode"),
        )(
            "layers",
            state.get("layers"),
            [layer.get("Arn") for layer in live.get("Layers") or []],
            unordered,
        )
    ).diffs


def _fetch_layers(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    found: dict[str, Live] = {}
    for layer in sorted({str(x.get("layerName")) for x in resources if x.get("layerName")}):
        # Versions are listed per layer only.
        found |= by(
            "LayerVersionArn",
            r.items(
                _LAYER, "lambda", region, "list_layer_versions", "LayerVersions", LayerName=layer
            ),
        )
    return found


@handler(_LAYER, live_id=lambda r: str(r.get("layerVersionArn") or r.get("arn") or r.id))(
    _fetch_layers
)
def compare_layer(state: StateResource, live: Live) -> list[Diff]:
    # A layer version is immutable: present is the check, the runtimes confirm it.
    return Compare()(
        "compatibleRuntimes",
        state.get("compatibleRuntimes"),
        live.get("CompatibleRuntimes"),
        unordered,
    ).diffs


def _fetch_permissions(
    r: Reader, region: str, resources: Sequence[StateResource]
) -> dict[str, Live]:
    found: dict[str, Live] = {}
    for function in sorted(
        {name_of(str(x.get("function"))) for x in resources if x.get("function")}
    ):
        try:  # a function's statements come with its policy, one call per function
            policy = json.loads(
                r.call(_PERMISSION, "lambda", region, "get_policy", FunctionName=function)["Policy"]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            continue
        found |= {f"{function}|{s.get('Sid')}": s for s in policy.get("Statement", [])}
    return found


def _principal(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("Service") or value.get("AWS") or value)
    return str(value)


@handler(
    _PERMISSION,
    live_id=lambda r: f"{name_of(str(r.get('function')))}|{r.get('statementId') or r.id}",
)(_fetch_permissions)
def compare_permission(state: StateResource, live: Live) -> list[Diff]:
    condition = live.get("Condition") or {}
    source = (condition.get("ArnLike") or {}).get("AWS:SourceArn") or (
        condition.get("ArnEquals") or {}
    ).get("AWS:SourceArn")
    return (
        Compare()("principal", state.get("principal"), _principal(live.get("Principal")))(
            "action", state.get("action"), live.get("Action")
        )("sourceArn", state.get("sourceArn"), source)
    ).diffs
