"""``python -m cli``: the platform CLI, against AWS or the embedded cloud.

    python -m cli [--usecase FILE] [--endpoint-url URL] [--outputs-file FILE | --stack NAME] COMMAND

Commands: ``status`` (what serves, at what weights, which stage), ``models`` (registered versions),
``deploy VERSION`` (the first champion), ``promote VERSION`` (start the promotion state machine and
follow it; ``--no-wait`` returns once it started), ``rollback`` (now: to the champion during a promotion,
to the previous champion in the watch window), ``approve`` / ``abort`` (answer a promotion waiting for a
human), ``history`` (the audit log), ``monitor`` (the latest monitoring report; ``--run`` runs the monitor
first, ``--window HOURS``, ``--fail-on-violation`` exits 2 on alerts), ``backfill --contract-version X.Y.Z``
(start the backfill state machine: re-ingest the retained raw objects under the use-case file's new contract on a
Distributed Map, then switch training to that curated set; ``--no-switch``, ``--no-wait``; exits 1 when an object
failed or did not reconcile: run it again to resume), ``review next`` (claim the top item of the review queue and
print it), ``review decide ITEM --label L --taxonomy T [--note TEXT]``, ``review stats`` (queue depth, oldest age
against the SLA, decisions/hour, reviewer agreement, model-vs-reviewer disagreement; ``--window HOURS``);
``--reviewer`` (default: the OS user). Exit code 0 on success, 1 when the
command could not be carried out or the promotion failed or was rolled back (the reason is printed), 2 on a
usage error (and ``monitor --fail-on-violation`` with alerts), 130 when interrupted (a promotion being
followed goes on).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli import commands
from cli.context import DEFAULT_USECASE, CliError, StackContext, load_context
from shared.environment import USECASE_VARIABLE
from shared.exceptions import SluiceError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m cli", description=__doc__.splitlines()[0])
    root.add_argument("--usecase", type=Path, default=Path(os.environ.get(USECASE_VARIABLE, DEFAULT_USECASE)))
    root.add_argument("--endpoint-url", default=os.environ.get("SLUICE_ENDPOINT_URL"), help="the embedded cloud")
    root.add_argument("--outputs-file", type=Path, help="stack outputs (cdk deploy --outputs-file / .local)")
    root.add_argument("--stack", help="read the outputs from this CloudFormation stack")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="what serves, at what weights, in which stage")
    sub.add_parser("models", help="registered model versions with their metrics")
    deploy = sub.add_parser("deploy", help="make a registered version the first champion")
    deploy.add_argument("version", type=int)
    deploy.add_argument("--reason", default="first deployment")
    promote = sub.add_parser("promote", help="promote a registered version: gates, shadow, canary, champion")
    promote.add_argument("version", type=int)
    promote.add_argument("--no-wait", action="store_true", help="return once the promotion has started")
    promote.add_argument("--timeout", type=float, default=None, help="stop following after this many seconds")
    promote.add_argument("--poll", type=float, default=1.0, help="seconds between progress checks")
    rollback = sub.add_parser("rollback", help="roll the running promotion (or the watch window) back now")
    rollback.add_argument("--reason", default="rolled back by hand")
    for name, helptext in (
        ("approve", "let a promotion waiting for a human go on"),
        ("abort", "roll back a promotion waiting for a human"),
    ):
        decision = sub.add_parser(name, help=helptext)
        decision.add_argument("--reason", default="")
    monitor = sub.add_parser("monitor", help="the latest monitoring report: what drifted, where, how sure")
    monitor.add_argument("--window", type=float, default=None, help="only this window (hours)")
    monitor.add_argument("--run", action="store_true", help="run the monitor function now, then print")
    monitor.add_argument("--fail-on-violation", action="store_true", help="exit 2 when the report has alerts")
    backfill = sub.add_parser("backfill", help="re-ingest retained raw objects under a new contract version")
    backfill.add_argument("--contract-version", required=True, help="the version the use-case file carries")
    backfill.add_argument("--no-switch", action="store_true", help="backfill only; leave training where it is")
    backfill.add_argument("--no-wait", action="store_true", help="return once the run has started")
    batch = sub.add_parser("batch", help="score every object under an S3 prefix (a batch job)")
    batch.add_argument("uri", help="s3://bucket/prefix")
    batch.add_argument("--version", type=int, default=None, help="a registered version (default: the champion)")
    batch.add_argument("--no-wait", action="store_true", help="return once the job has started")
    history = sub.add_parser("history", help="the audit log of deployment events")
    history.add_argument("--limit", type=int, default=50)
    _review_parser(sub.add_parser("review", help="human review: claim, decide, operating metrics"))
    return root


def _review_parser(review: argparse.ArgumentParser) -> None:
    from cli.review import default_reviewer

    review.add_argument("--reviewer", default=default_reviewer(), help="who reviews (default: the OS user)")
    actions = review.add_subparsers(dest="review_command", required=True)
    actions.add_parser("next", help="claim the top item of the queue and print it")
    decide = actions.add_parser("decide", help="decide an item you claimed")
    decide.add_argument("item_id")
    decide.add_argument("--label", required=True)
    decide.add_argument("--taxonomy", required=True, help="a value of the use case's [review] taxonomy")
    decide.add_argument("--note", default="")
    stats = actions.add_parser("stats", help="queue depth, oldest age vs SLA, decisions/hour, agreement")
    stats.add_argument("--window", type=float, default=1.0, help="hours of decisions counted per hour")


def _review(ctx: StackContext, args: argparse.Namespace) -> int:
    from cli import review

    match args.review_command:
        case "next":
            review.next_item(ctx, reviewer=args.reviewer)
        case "decide":
            review.decide(
                ctx, args.item_id, reviewer=args.reviewer, label=args.label, taxonomy=args.taxonomy, note=args.note
            )
        case "stats":
            review.stats(ctx, window_hours=args.window)
    return 0


def run(ctx: StackContext, args: argparse.Namespace) -> int:
    """One command; its exit code (0 unless the command says otherwise)."""
    match args.command:
        case "status":
            commands.status(ctx)
        case "models":
            commands.models(ctx)
        case "deploy":
            commands.deploy(ctx, args.version, reason=args.reason)
        case "promote":
            commands.promote(
                ctx, args.version, wait=not args.no_wait, poll_seconds=args.poll, timeout_seconds=args.timeout
            )
        case "rollback":
            commands.rollback(ctx, reason=args.reason)
        case "approve" | "abort":
            commands.decide(ctx, approve=args.command == "approve", reason=args.reason)
        case "batch":
            from cli.batch import batch

            batch(ctx, args.uri, version=args.version, wait=not args.no_wait)
        case "history":
            commands.history(ctx, limit=args.limit)
        case "backfill":
            from cli.backfill import backfill

            reconciled = backfill(
                ctx,
                contract_version=args.contract_version,
                switch=not args.no_switch,
                requested_by=commands.actor(),
                wait=not args.no_wait,
            )
            return 0 if reconciled else 1
        case "monitor":
            alerts = commands.monitor(ctx, window=args.window, run=args.run)
            return 2 if alerts and args.fail_on_violation else 0
        case "review":
            return _review(ctx, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        ctx = load_context(
            usecase_file=args.usecase, endpoint_url=args.endpoint_url, outputs_file=args.outputs_file, stack=args.stack
        )
        return run(ctx, args)
    except (CliError, SluiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; a promotion started goes on (see `status`)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
