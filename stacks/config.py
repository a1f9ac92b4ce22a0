"""Typed, validated stack configuration.

Every stack reads its config once, here, before any resource is registered. Values are
validated as a whole and every problem is reported at once, each naming the full config
key (``trading-infra:network.cidr``) and how to fix it.

Pulumi hands the program every config value as a string: scalars as written, objects
and lists as JSON. Top-level values are decoded as JSON where they parse, so
``production: true`` arrives as a boolean while ``role: primary`` stays a string;
inside objects, YAML types are kept and checked strictly (``"3"`` is not a number).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from components.network import SubnetCarvingError, carve_subnets

PROJECT = "trading-infra"
"""The Pulumi project name, and so the namespace of the program's own config keys."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""Relative paths in config (build contexts) are resolved against the project root."""

REGION_KEY = "aws:region"

CLOUDWATCH_RETENTION_DAYS = frozenset(
    {
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    }
)
"""The values CloudWatch Logs accepts for a log group's retention."""

DEFAULT_EXCHANGE_ACCESS_REGIONS = ("ap-southeast-1", "eu-central-1")
"""Regions from which Binance.com accepts API requests (it refuses us-east-1)."""


class ConfigError(pulumi.RunError):
    """All of a stack's config problems, raised before any resource is registered.

    A ``RunError`` so that ``pulumi up`` prints the messages without a traceback.
    """

    def __init__(self, stack: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"stack {stack!r} has {len(self.problems)} config error(s):\n{lines}")


class _Section(BaseModel):
    """Config object conventions: camelCase keys, no unknown keys, no type coercion."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )


def _private_cidr(value: str, *, min_prefix: int, max_prefix: int) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not an IPv4 network ({error}); write it as a.b.c.d/n"
        ) from None
    if not network.is_private:
        raise ValueError(
            f"{value} is not a private range; use one inside 10.0.0.0/8, "
            "172.16.0.0/12 or 192.168.0.0/16"
        )
    if not min_prefix <= network.prefixlen <= max_prefix:
        raise ValueError(
            f"{value} is a /{network.prefixlen}; choose a prefix from "
            f"/{min_prefix} to /{max_prefix}"
        )
    return str(network)


class NetworkConfig(_Section):
    """``trading-infra:network``: the region's VPC."""

    cidr: str
    """VPC CIDR: private, /16 to /24, disjoint from every ``peerCidrs`` entry. Required."""
    az_count: Annotated[int, Field(ge=2, le=3)] = 3
    """Availability zones to spread subnets over, 2 or 3. Default 3."""
    private_subnet_prefix: Annotated[int, Field(ge=17, le=28)] = 20
    """Prefix length of each private (task) subnet. Default 20 (4,096 addresses)."""
    public_subnet_prefix: Annotated[int, Field(ge=17, le=28)] = 24
    """Prefix length of each public (NAT/ALB) subnet. Default 24."""
    nat: Literal["none", "single", "per-az"] = "single"
    """NAT strategy: ``none`` (VPC endpoints only), ``single`` (one NAT gateway, cheaper,
    one AZ's outage cuts egress) or ``per-az`` (one per AZ). Default ``single``."""
    flow_log_retention_days: int = 365
    """Retention of the VPC flow log group, a CloudWatch Logs value. Default 365."""
    endpoints: list[Literal["ecr.api", "ecr.dkr", "s3", "logs", "secretsmanager"]] = Field(
        default_factory=list
    )
    """VPC endpoints to create so tasks reach AWS APIs without NAT. Default none."""
    peer_cidrs: list[str] = Field(default_factory=list)
    """The other regions' VPC CIDRs; this VPC must not overlap them (future peering)."""

    @field_validator("cidr")
    @classmethod
    def _cidr_is_private(cls, value: str) -> str:
        return _private_cidr(value, min_prefix=16, max_prefix=24)

    @field_validator("peer_cidrs")
    @classmethod
    def _peers_are_networks(cls, values: list[str]) -> list[str]:
        return [_private_cidr(value, min_prefix=8, max_prefix=28) for value in values]

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention_is_valid(cls, value: int) -> int:
        return _retention(value)

    @field_validator("endpoints")
    @classmethod
    def _endpoints_unique(cls, values: list[str]) -> list[str]:
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            raise ValueError(f"lists {', '.join(duplicates)} more than once; list each once")
        return values

    @model_validator(mode="after")
    def _layout_fits(self) -> NetworkConfig:
        vpc = ipaddress.IPv4Network(self.cidr)
        for peer in self.peer_cidrs:
            if vpc.overlaps(ipaddress.IPv4Network(peer)):
                raise ValueError(
                    f"cidr {self.cidr} overlaps peer network {peer}; choose a VPC range "
                    "disjoint from the other regions' so they can be peered"
                )
        try:
            carve_subnets(
                self.cidr, self.az_count, self.private_subnet_prefix, self.public_subnet_prefix
            )
        except SubnetCarvingError as error:
            raise ValueError(str(error)) from None
        return self


class BuildConfig(_Section):
    """``trading-infra:registry.build``: how to build the service image."""

    context: str = "app"
    """Build context directory, relative to the project root. Default ``app``."""
    dockerfile: str = "Dockerfile"
    """Dockerfile path relative to the context. Default ``Dockerfile``."""
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    """Target platform; must match the Fargate runtime platform. Default ``linux/amd64``."""

    @model_validator(mode="after")
    def _paths_exist(self) -> BuildConfig:
        context = PROJECT_ROOT / self.context
        if not context.is_dir():
            raise ValueError(
                f"context {self.context!r} is not a directory under the project root; "
                "point it at the folder holding the Dockerfile"
            )
        if not (context / self.dockerfile).is_file():
            raise ValueError(
                f"dockerfile {self.dockerfile!r} does not exist in {self.context!r}; "
                "give its path relative to the context"
            )
        return self

    @property
    def context_path(self) -> Path:
        return PROJECT_ROOT / self.context


class RegistryConfig(_Section):
    """``trading-infra:registry``: the ECR repository and the image the service runs."""

    repository_name: Annotated[
        str, Field(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
    ] = "trading-api"
    """ECR repository name (lower case). Default ``trading-api``."""
    build: BuildConfig | None = None
    """Build the image from a context. Default: build ``app/`` when ``imageUri`` is unset."""
    image_uri: Annotated[str, Field(pattern=r"^[^@\s]+@sha256:[0-9a-f]{64}$")] | None = None
    """A prebuilt image pinned by digest (``repo@sha256:…``) instead of a build."""
    keep_last_images: Annotated[int, Field(ge=1, le=1000)] = 30
    """Tagged images the lifecycle policy keeps. Default 30."""
    untagged_expiry_days: Annotated[int, Field(ge=1, le=365)] = 7
    """Days after which untagged images expire. Default 7."""
    kms_key_arn: Annotated[str, Field(pattern=r"^arn:aws[\w-]*:kms:")] | None = None
    """Encrypt the repository with this customer-managed KMS key. Default AES-256."""

    @model_validator(mode="after")
    def _one_image_source(self) -> RegistryConfig:
        if self.build is not None and self.image_uri is not None:
            raise ValueError(
                "build and imageUri are both set; keep build to build the image here, "
                "or imageUri to run a prebuilt one"
            )
        return self

    @property
    def image_build(self) -> BuildConfig | None:
        """The build to run, or None when a prebuilt image is configured."""
        if self.image_uri is not None:
            return None
        return self.build or BuildConfig()


class RegionalStackConfig(_Section):
    """Config of a regional stack (``sg`` primary, ``eu`` fallback)."""

    role: Literal["primary", "fallback"]
    """The stack's role: ``primary`` (backend + edge) or ``fallback`` (backend). Required."""
    production: bool = False
    """Production stacks protect stateful resources from deletion. Default false."""
    exchange_access_regions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCHANGE_ACCESS_REGIONS)
    )
    """Regions the exchanges accept API calls from. Default ap-southeast-1, eu-central-1."""
    region: str = Field(alias=REGION_KEY)
    """The stack's AWS region (``aws:region``); must be in ``exchangeAccessRegions``."""
    network: NetworkConfig
    """The VPC. Required (its ``cidr`` has no default)."""
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    """The ECR repository and image. Default: build ``app/`` into ``trading-api``."""

    @field_validator("region")
    @classmethod
    def _region_reaches_exchanges(cls, value: str, info: ValidationInfo) -> str:
        allowed = info.data.get("exchange_access_regions")
        if allowed is not None and value not in allowed:
            raise ValueError(
                f"{value} is not in {PROJECT}:exchangeAccessRegions ({', '.join(allowed)}); "
                "the exchanges refuse API requests from it (Binance.com refuses us-east-1). "
                "Deploy to an allowed region"
            )
        return value


StackConfig = RegionalStackConfig
"""The typed config of any stack; later roles widen this union."""


def _retention(value: int) -> int:
    if value not in CLOUDWATCH_RETENTION_DAYS:
        allowed = ", ".join(str(days) for days in sorted(CLOUDWATCH_RETENTION_DAYS))
        raise ValueError(f"{value} is not a CloudWatch Logs retention; use one of {allowed}")
    return value


def _decode(value: Any) -> Any:
    """Decode a top-level value the way Pulumi serialised it (JSON where it parses)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _key_for(loc: tuple[int | str, ...]) -> str:
    """``("network", "cidr")`` -> ``trading-infra:network.cidr``; lists as ``[i]``."""
    if not loc:
        return PROJECT
    head, *rest = loc
    key = str(head) if str(head) == REGION_KEY else f"{PROJECT}:{head}"
    for part in rest:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key


def _keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The valid keys of the object at ``loc`` inside ``model``, for typo suggestions."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = next(
            (f for name, f in current.model_fields.items() if part in (name, f.alias)), None
        )
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = error["loc"]
    # Errors of a model validator carry the model's own location; name the object.
    key = _key_for(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        candidates = _keys_at(model, loc[:-1])
        if len(loc) == 1:
            candidates = [f"{PROJECT}:{c}" if c != REGION_KEY else c for c in candidates]
            name = key
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(candidates)}"
        return f"{key}: unknown key; {hint}"
    if kind == "missing":
        return f"{key}: required but not set; set it in the stack's Pulumi.<stack>.yaml"
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind == "literal_error":
        return f"{key}: {message} (got {error['input']!r})"
    return f"{key}: {message}"


def parse_stack_config(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate a stack's raw config (``{"trading-infra:network": "{...}"}``).

    Keys of other namespaces than the project's are provider settings and pass through,
    except ``aws:region``, the stack's region. Raises ``ConfigError`` listing every
    problem.
    """
    document: dict[str, Any] = {}
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        if key == REGION_KEY:
            document[REGION_KEY] = value
        elif namespace == PROJECT:
            document[name] = _decode(value)
    try:
        return StackConfig.model_validate(document)
    except ValidationError as error:
        problems = sorted({_describe(detail, StackConfig) for detail in error.errors()})
        raise ConfigError(stack, problems) from None


def load_stack_config() -> StackConfig:
    """Read and validate the running stack's config from the Pulumi engine.

    ``pulumi.Config`` reads one key at a time and cannot list the keys that were set, so
    a misspelt key would go unnoticed; the runtime's config map has them all.
    """
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse_stack_config(raw, pulumi.get_stack())
