"""`python -m infra.local`: start the local stack, seed the demo tenant, print and write how to reach it."""

from __future__ import annotations

import argparse
import json
import signal
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
        "--engine",
        choices=["moto", "dynamodb-local"],
        default="moto",
        help="what serves DynamoDB: the embedded moto (default) or DynamoDB Local (needs Java; `make` installs it)",
    )
    args = parser.parse_args()

    stack = LocalStack(args.template.resolve(), args.host, args.port, engine=args.engine)
    info = stack.start(seed=not args.no_seed)
    args.state_file.parent.mkdir(parents=True, exist_ok=True)
    args.state_file.write_text(json.dumps(info, indent=2, ensure_ascii=False))
    print(f"Loyalty local stack on {info['baseUrl']}  (API docs: {info['docsUrl']}, OpenAPI: {info['openapiUrl']})")
    print(f"DynamoDB engine: {info['engine']} at {info['dynamodbEndpoint']}")
    if info["apiKeys"]:
        print(
            f"Demo tenant {info['tenant']!r}, program {info['programCode']!r}. "
            "API keys (send as 'Authorization: Bearer <key>'):"
        )
        for name, key in info["apiKeys"].items():
            print(f"  {name:<12} {key}")
    schedules = ", ".join(info["schedules"]) or "none"
    print(f"Schedules (POST {info['baseUrl']}/_local/schedules/<name> runs one now): {schedules}")
    print(f"Written to {args.state_file}. Ctrl-C stops.", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    stack.stop()


if __name__ == "__main__":
    main()
