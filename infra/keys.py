"""Issue an API key for a tenant on a deployed stack (or the local one):

    TABLE_NAME=<table> python -m infra.keys --tenant acme --role operator --name "acme admin"
    TABLE_NAME=<table> python -m infra.keys --tenant acme --role channel --channel POS --name "store tills"

The key is printed once; only its digest is stored.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "loyalty"))

from loyalty.domain.config import CODE_PATTERN
from loyalty.services.auth import api_key_service


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--role", choices=["channel", "operator"], required=True)
    parser.add_argument("--channel", help="the sales channel a channel key speaks for, e.g. POS")
    parser.add_argument("--name", required=True, help="what the key is for, shown in audits")
    args = parser.parse_args(argv)
    if not re.match(CODE_PATTERN, args.tenant):
        parser.error("a tenant id is letters, digits, '.', '_' or '-'")
    if args.role == "channel" and not args.channel:
        parser.error("a channel key needs --channel")
    key, principal = api_key_service().issue(args.tenant, args.role, args.channel or "operator", args.name)
    print(f"{principal.role} key {principal.key_id} for tenant {principal.tenant}: {key}")
    return key


if __name__ == "__main__":
    main()
