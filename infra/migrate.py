"""Tell or start the migrations of a deployed stack's table, or the local one (D-112):

    TABLE_NAME=<table> MIGRATION_QUEUE_URL=<queue> python -m infra.migrate            # status
    TABLE_NAME=<table> MIGRATION_QUEUE_URL=<queue> python -m infra.migrate --start    # start the pending ones
    python -m infra.migrate --stack .local/stack.json [--start]                       # the local stack

A deploy starts them itself (MigrationsOnDeploy); this is for looking, or for starting again after a page
was redriven from the dead-letter queue. Starting runs the first pending migration through the migration
queue, a page per message; each starts the next when it is done. The exit status is 1 while one is pending
or running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "loyalty"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", action="store_true", help="start the pending migrations")
    parser.add_argument("--stack", type=Path, help="the local stack's state file (.local/stack.json)")
    args = parser.parse_args(argv)
    if args.stack:
        stack = json.loads(args.stack.read_text())
        os.environ.update(
            AWS_ENDPOINT_URL=stack["emulatorEndpoint"],
            AWS_ENDPOINT_URL_DYNAMODB=stack["dynamodbEndpoint"],
            TABLE_NAME=stack["tableName"],
            MIGRATION_QUEUE_URL=stack["queues"]["MigrationQueue"],
        )
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")  # nosec B105: the emulator takes any
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from loyalty.services.migrations.runner import migration_runner

    runner = migration_runner()
    running = runner.start_pending() if args.start else None
    status = runner.status()
    print(json.dumps({"running": running, "migrations": status}, ensure_ascii=False, indent=2, default=str))
    return 0 if all(m["status"] == "done" for m in status) else 1


if __name__ == "__main__":
    sys.exit(main())
