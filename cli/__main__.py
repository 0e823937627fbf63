"""``python -m cli``: the platform CLI, against AWS or the embedded cloud.

    python -m cli [--usecase FILE] [--endpoint-url URL] [--outputs-file FILE | --stack NAME] COMMAND

Commands: ``status`` (what serves, at what weights, which stage), ``models`` (registered versions),
``deploy VERSION`` (the first champion), ``history`` (the audit log). Exit code 0 on success, 1 when
the command could not be carried out (the reason is printed), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli import commands
from cli.context import DEFAULT_USECASE, CliError, load_context
from shared.exceptions import SluiceError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m cli", description=__doc__.splitlines()[0])
    root.add_argument("--usecase", type=Path, default=Path(os.environ.get("SLUICE_USECASE", DEFAULT_USECASE)))
    root.add_argument("--endpoint-url", default=os.environ.get("SLUICE_ENDPOINT_URL"), help="the embedded cloud")
    root.add_argument("--outputs-file", type=Path, help="stack outputs (cdk deploy --outputs-file / .local)")
    root.add_argument("--stack", help="read the outputs from this CloudFormation stack")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="what serves, at what weights, in which stage")
    sub.add_parser("models", help="registered model versions with their metrics")
    deploy = sub.add_parser("deploy", help="make a registered version the first champion")
    deploy.add_argument("version", type=int)
    deploy.add_argument("--reason", default="first deployment")
    history = sub.add_parser("history", help="the audit log of deployment events")
    history.add_argument("--limit", type=int, default=50)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        ctx = load_context(
            usecase_file=args.usecase, endpoint_url=args.endpoint_url, outputs_file=args.outputs_file, stack=args.stack
        )
        match args.command:
            case "status":
                commands.status(ctx)
            case "models":
                commands.models(ctx)
            case "deploy":
                commands.deploy(ctx, args.version, reason=args.reason)
            case "history":
                commands.history(ctx, limit=args.limit)
    except (CliError, SluiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
