"""`python -m infra.local`: start the local stack, seed the demo tenant, print and write how to reach it."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from infra.local.stack import ROOT, LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="0 = any free port")
    parser.add_argument("--state-file", type=Path, default=ROOT / ".local" / "stack.json")
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--no-seed", action="store_true", help="start empty, without the demo tenant")
    parser.add_argument(
        "--keep-data",
        type=Path,
        metavar="FILE",
        help="keep the table in FILE between runs: loaded (and migrated) at start when it exists, written at stop",
    )
    parser.add_argument(
        "--engine",
        choices=["moto", "dynamodb-local"],
        default="moto",
        help="what serves DynamoDB: the embedded moto (default) or DynamoDB Local (needs Java; `make` installs it)",
    )
    args = parser.parse_args()

    stack = LocalStack(args.template.resolve(), args.host, args.port, engine=args.engine)
    earlier = json.loads(args.state_file.read_text()) if args.keep_data and args.state_file.exists() else None
    info = stack.start(seed=not args.no_seed, data=args.keep_data, earlier=earlier)
    write_atomically(args.state_file, json.dumps(info, indent=2, ensure_ascii=False))
    print(f"Loyalty local stack on {info['baseUrl']}  (API docs: {info['docsUrl']}, OpenAPI: {info['openapiUrl']})")
    print(f"DynamoDB engine: {info['engine']} at {info['dynamodbEndpoint']}")
    if info["apiKeys"]:
        print(
            f"Demo tenant {info['tenant']!r}, program {info['programCode']!r}. "
            "API keys (send as 'Authorization: Bearer <key>'):"
        )
        for name, key in info["apiKeys"].items():
            print(f"  {name:<12} {key}  (key id {info['apiKeyIds'][name]})")
    schedules = ", ".join(info["schedules"]) or "none"
    print(f"Schedules (POST {info['baseUrl']}/_local/schedules/<name> runs one now): {schedules}")
    print(f"What messages sent (SMS, email, webhooks): GET {info['outboxUrl']}")
    print(f"The clock (POST to move it forward): {info['baseUrl']}/_local/clock; migrations: /_local/migrations")
    if args.keep_data:
        print(f"The table is kept in {args.keep_data} when the stack stops.")
    print(f"Written to {args.state_file}. Ctrl-C stops.", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    # The first signal stops at once, busy or not: what was in flight is redelivered, as on AWS. Exiting
    # without the interpreter's teardown skips collecting the emulator's heap, which took over 10 s.
    stack.stop()
    sys.stdout.flush()
    os._exit(0)


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it: a reader sees no file or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


if __name__ == "__main__":
    main()
