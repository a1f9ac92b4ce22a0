"""``python -m ops <command>``: offline tools for the trading-infra program."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops.layer import build_layer
from ops.plan import plan_stack, render_json, render_text
from ops.stackfiles import StackFileError
from stacks.config import ConfigError


def _plan(args: argparse.Namespace) -> int:
    plan = plan_stack(args.stack)
    print(render_json(plan) if args.json else render_text(plan))
    return 0


def _build_layer(args: argparse.Namespace) -> int:
    build_layer(Path(args.dir))
    print(f"layer built in {args.dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="show a stack's resources under the mock runtime")
    plan.add_argument("stack", help="stack name: sg, eu, ...")
    plan.add_argument("--json", action="store_true", help="stable, sorted JSON document")
    plan.set_defaults(handler=_plan)
    layer = commands.add_parser("build-layer", help="build the failover Lambda's awscrt layer")
    layer.add_argument("--dir", default="build/lambda-layer", help="target directory")
    layer.set_defaults(handler=_build_layer)

    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
