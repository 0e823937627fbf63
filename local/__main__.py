"""``python -m local``: run the whole stack locally until Ctrl-C (what ``make local`` runs).

Synthesizes the CDK app for the use case (``--usecase``, else ``$SLUICE_USECASE``, else
``usecases/telco_churn.toml``; cached by :mod:`infra.assembly`), starts the embedded
cloud, prints the endpoint URL, the outputs file, the stack outputs and the resource types that are
not emulated, then serves until SIGINT or SIGTERM and shuts down cleanly. The outputs file is
written last, so its appearance means the cloud is ready.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from infra.assembly import usecase_file
from local.cloud import DEFAULT_STATE_DIR, EmbeddedCloud
from local.exceptions import LocalCloudError


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--usecase",
        type=Path,
        default=None,
        help="use-case file (default: $SLUICE_USECASE, a file or a use-case name, else usecases/telco_churn.toml)",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--api-port", type=int, default=0, help="port of the API Gateway front on 127.0.0.1 (default: a free one)"
    )
    parser.add_argument("--outputs-file", type=Path, default=DEFAULT_STATE_DIR / "outputs.json")
    parser.add_argument("--template", type=Path, default=None, help="a synthesized template instead of synthesizing")
    parser.add_argument("--verbose", action="store_true", help="log every moto request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        print(f"\n{signal.Signals(signum).name}: shutting down", flush=True)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    cloud = EmbeddedCloud(
        template=args.template,
        usecase=usecase_file(args.usecase),
        port=args.port,
        api_port=args.api_port,
        outputs_file=args.outputs_file.resolve(),
    )
    try:
        cloud.start()
    except LocalCloudError as exc:
        print(f"the embedded cloud did not start: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"Embedded cloud for {cloud.stack_name} ready in {cloud.startup_s:.1f}s", flush=True)
        print(f"  endpoint:     {cloud.endpoint_url}   (e.g. aws --endpoint-url {cloud.endpoint_url} s3 ls)")
        print(f"  API Gateway:  {cloud.api_url}/<stage>/<path>   (REST APIs: {len(cloud.deployment.apis.apis)})")
        for key_id in cloud.deployment.apis.keys:
            print(
                f"    API key {key_id}: aws apigateway get-api-key --api-key {key_id} --include-value "
                f"--endpoint-url {cloud.endpoint_url}   (send it as x-api-key)"
            )
        unsupported = cloud.deployment.apis.unsupported_integrations()
        if unsupported:
            print(f"    integrations not run locally: {', '.join(unsupported)}")
        print(f"  outputs file: {cloud.outputs_file}")
        print(f"  deployment:   {cloud.deployment_file}")
        print("  outputs:")
        for key, value in sorted(cloud.outputs.items()):
            print(f"    {key} = {value}")
        not_emulated = cloud.deployment.not_emulated_types
        print(f"  not emulated: {', '.join(not_emulated) if not_emulated else 'nothing'}")
        print(f"  SQS event sources polled: {len(cloud.event_sources.mappings)}")
        print(f"  SageMaker training jobs run as subprocesses; logs under {cloud.training.jobs_dir}")
        print("  SageMaker endpoints are served in-process by training/inference.py")
        print(f"    fault switch (local only): POST {cloud.api_url}/_sluice/faults {{endpoint, mode, delay_ms}}")
        print(f"    S3 read faults (local only): POST {cloud.api_url}/_sluice/faults/objects {{bucket, key, calls}}")
        print("  handler EMF output becomes CloudWatch metrics")
        print("  alarms are evaluated every second with CloudWatch's semantics; their changes reach EventBridge")
        print("  EventBridge rate(...) schedules fire on time; cron(...) ones do not (start executions explicitly)")
        print("Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
