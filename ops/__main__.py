"""``python -m ops <command>``: offline tools for the trading-infra program."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from ops.layer import build_layer
from ops.plan import plan_stack, render_json, render_text, save_outputs
from ops.stackfiles import StackFileError
from stacks.config import ConfigError


def _plan(args: argparse.Namespace) -> int:
    base = None
    if args.against:
        from ops.diff import PlanFileError, load_plan

        try:
            base = load_plan(args.against)
        except PlanFileError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if base["stack"] != args.stack:
            print(
                f"error: {args.against} is a plan of stack {base['stack']!r}, not "
                f"{args.stack!r}; make it with `python -m ops plan {args.stack} --json`",
                file=sys.stderr,
            )
            return 1
    plan = plan_stack(args.stack)
    save_outputs(plan)  # for the plans whose StackReference reads this stack
    print(render_json(plan) if args.json else render_text(plan, base))
    return 0


def _check(args: argparse.Namespace) -> int:
    from ops.check import check_plan, render

    result = check_plan(plan_stack(args.stack))
    print(render(args.stack, result))
    return result.exit_code


def _diff(args: argparse.Namespace) -> int:
    from ops.diff import (
        PlanFileError,
        check_same_stack,
        diff_plans,
        load_plan,
        render_markdown,
        render_text,
    )

    try:
        base, head = load_plan(args.base), load_plan(args.head)
        if not args.allow_stack_mismatch:
            check_same_stack(base, head)
    except PlanFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    diff = diff_plans(base, head)
    print(render_markdown(diff) if args.format == "markdown" else render_text(diff), end="")
    return 0


def _build_layer(args: argparse.Namespace) -> int:
    build_layer(Path(args.dir))
    print(f"layer built in {args.dir}")
    return 0


def _state_text(state: str | None, stack: str) -> str:
    """``--state``: a file, ``-`` for stdin, or none (``pulumi stack export``)."""
    from ops.drift.scan import export_state

    if state == "-":
        return sys.stdin.read()
    if state:
        return Path(state).read_text()
    return export_state(stack)


def _drift(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ops.drift.ignore import generate_ignore, read_ignore
    from ops.drift.refresh import RefreshError, run_refresh
    from ops.drift.render import render_json, render_markdown, render_table
    from ops.drift.scan import ExportError, scan
    from ops.drift.state import StateError
    from ops.drift.vps import DIGEST_KEY_ENV, scan_vps, ssh_connector

    try:
        state_text = _state_text(args.state, args.stack)
        if args.refresh_json == "-" and args.state == "-":
            raise ExportError("--state and --refresh-json cannot both read stdin")
        if args.refresh_json == "-":
            refresh_text: str | None = sys.stdin.read()
        elif args.refresh_json:
            refresh_text = Path(args.refresh_json).read_text()
        else:
            refresh_text = run_refresh(args.stack) if args.refresh else None
    except (OSError, ExportError, RefreshError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    console = Console(stderr=True)
    # A progress indicator for people; nothing on stderr when it is not a terminal.
    progress = console.status if sys.stderr.isatty() else (lambda _: nullcontext())
    connect = ssh_connector(args.ssh_key) if args.ssh_key else None
    ignore_path = Path(args.ignore)
    try:
        report, _ = scan(
            args.stack,
            state_text,
            regions=args.region or None,
            vps=lambda state: scan_vps(state, connect, os.environ.get(DIGEST_KEY_ENV, "")),
            ignore=[] if args.generate_ignore else read_ignore(ignore_path),
            refresh=refresh_text,
            progress=progress,
        )
    except (StateError, RefreshError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.generate_ignore:
        ignore_path.write_text(generate_ignore(report))
        print(f"wrote {ignore_path} with {len(report.findings) - len(report.of('ok'))} finding(s)")
        return 0
    renderers = {"table": render_table, "json": render_json, "markdown": render_markdown}
    print(renderers[args.format](report), end="")
    return report.exit_code()


def _restore_drill(args: argparse.Namespace) -> int:
    import paramiko

    from ops.drift.scan import ExportError
    from ops.drift.state import StateError, parse_state, require_stack
    from ops.drift.vps import SshRemote, expectations
    from ops.restore_drill import DrillError, document, host_of, render, rpo_of, run_drill

    try:
        state = parse_state(_state_text(args.state, args.stack))
        require_stack(state, args.stack)
        hosts = expectations(state) if args.every_host else [host_of(state, args.host)]
        rpo = args.rpo_minutes or rpo_of(state)
    except (OSError, ExportError, StateError, DrillError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = False
    documents = []
    for host in hosts:
        try:
            session = SshRemote(host, args.ssh_key)
            try:
                result = run_drill(host, session, rpo)
            finally:
                session.close()
        except (OSError, DrillError, TimeoutError, paramiko.SSHException) as error:
            # One host that cannot be drilled does not stop the others'.
            print(f"error: {host.name}: {error}", file=sys.stderr)
            if args.format == "markdown":
                print(f"## Restore drill of {host.name}: FAILED\n\n```\n{error}\n```\n")
            documents.append({"host": host.name, "passed": False, "error": str(error)})
            failed = True
            continue
        failed = failed or not result.passed
        documents.append(document(result))
        if args.format != "json":
            print(render(result, markdown=args.format == "markdown"), end="")
    if args.format == "json":
        print(json.dumps(documents if args.every_host else documents[0], indent=2))
    return 1 if failed else 0


def _config_doc(args: argparse.Namespace) -> int:
    from ops.configdoc import DOC, render

    text = render()
    if args.check:
        if DOC.is_file() and DOC.read_text() == text:
            return 0
        print(f"{DOC.name} is stale: run `python -m ops config-doc`", file=sys.stderr)
        return 1
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


def _drift_policies(args: argparse.Namespace) -> int:
    from ops.drift.permissions import drift_policy, refresh_policy, render

    if args.role == "drift":
        print(render(drift_policy()), end="")
    else:
        types = [r.type for r in plan_stack(args.stack).resources]
        print(render(refresh_policy(types)), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="show a stack's resources under the mock runtime")
    plan.add_argument("stack", help="stack name: sg, eu, ...")
    plan.add_argument("--json", action="store_true", help="stable, sorted JSON document")
    plan.add_argument(
        "--against",
        metavar="PLAN_JSON",
        help="an earlier `ops plan STACK --json` (e.g. of main): the fleet's rollout says "
        "which hosts change",
    )
    plan.set_defaults(handler=_plan)
    check = commands.add_parser("check", help="the policy pack's rules over the offline plan")
    check.add_argument("stack", help="stack name")
    check.set_defaults(handler=_check)
    diff = commands.add_parser("diff", help="resource-level diff of two `ops plan --json` files")
    diff.add_argument("base", help="plan of the base (e.g. main)")
    diff.add_argument("head", help="plan of the change")
    diff.add_argument("--format", choices=["text", "markdown"], default="text")
    diff.add_argument(
        "--allow-stack-mismatch", action="store_true", help="compare plans of two stacks"
    )
    diff.set_defaults(handler=_diff)
    doc = commands.add_parser("config-doc", help="write docs/config.md from the config models")
    doc.add_argument("--check", action="store_true", help="exit 1 when docs/config.md is stale")
    doc.set_defaults(handler=_config_doc)
    drift = commands.add_parser(
        "drift", help="compare a stack's state with live AWS and the VPS hosts"
    )
    drift.add_argument("stack", help="stack name")
    drift.add_argument("--state", help="`pulumi stack export` JSON file, or - for stdin")
    drift.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    drift.add_argument("--ignore", default=".driftignore", help="default .driftignore")
    drift.add_argument("--region", action="append", help="only these regions (repeatable)")
    drift.add_argument("--ssh-key", help="private key for the VPS hosts (vps stack)")
    provider = drift.add_mutually_exclusive_group()
    provider.add_argument(
        "--refresh-json",
        metavar="FILE",
        help="fold in the providers' view: `pulumi refresh --preview-only --json` output "
        "(a file, or - for stdin)",
    )
    provider.add_argument(
        "--refresh",
        action="store_true",
        help="run `pulumi refresh --preview-only --json` (Pulumi CLI on PATH) and fold it in",
    )
    drift.add_argument(
        "--generate-ignore", action="store_true", help="write the ignore file from the findings"
    )
    drift.set_defaults(handler=_drift)
    drill = commands.add_parser(
        "restore-drill",
        help="restore a VPS host's latest backup into scratch, check it, report RPO and time",
    )
    drill.add_argument("stack", help="stack name (the fleet's: vps)")
    which = drill.add_mutually_exclusive_group(required=True)
    which.add_argument("--host", help="the host, by its fleet.hosts name")
    which.add_argument("--every-host", action="store_true", help="each host in turn")
    drill.add_argument("--state", help="`pulumi stack export` JSON file, or - for stdin")
    drill.add_argument("--ssh-key", required=True, help="the drift user's private key")
    drill.add_argument(
        "--rpo-minutes", type=int, help="the RPO target (default: the stack's backupRpoMinutes)"
    )
    drill.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    drill.set_defaults(handler=_restore_drill)
    iam = commands.add_parser(
        "drift-policies", help="the drift job's two IAM policy documents for a stack"
    )
    iam.add_argument("stack", help="stack name")
    iam.add_argument("--role", choices=["drift", "refresh"], required=True)
    iam.set_defaults(handler=_drift_policies)
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
