"""The platform's API-key command, for a deployed stack (or the local one): issue a tenant's first key, and
list, rotate or revoke any of a tenant's keys (its operators do the same through /v1/admin/api-keys):

    TABLE_NAME=<table> python -m infra.keys --tenant acme --role operator --name "acme admin"
    TABLE_NAME=<table> python -m infra.keys --tenant acme --role channel --channel POS --name "store tills"
    TABLE_NAME=<table> python -m infra.keys --tenant acme --list
    TABLE_NAME=<table> python -m infra.keys --tenant acme --rotate <keyId> [--grace-hours 24]
    TABLE_NAME=<table> python -m infra.keys --tenant acme --revoke <keyId>

A secret is printed once; only its digest is stored. Every action is recorded as the platform's.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "loyalty"))

from loyalty.domain.config import CODE_PATTERN
from loyalty.services.auth import MAX_GRACE_HOURS, Rotation, api_key_service


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenant", required=True)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the tenant's keys (never their secrets)")
    action.add_argument("--rotate", metavar="KEY_ID", help="a new secret for this key")
    action.add_argument("--revoke", metavar="KEY_ID", help="revoke this key")
    parser.add_argument("--grace-hours", type=int, default=24, help=f"with --rotate: 0 to {MAX_GRACE_HOURS}")
    parser.add_argument("--role", choices=["channel", "operator"])
    parser.add_argument("--channel", help="the sales channel a channel key speaks for, e.g. POS")
    parser.add_argument("--name", help="what the key is for, shown in lists and audits")
    args = parser.parse_args(argv)
    if not re.match(CODE_PATTERN, args.tenant):
        parser.error("a tenant id is letters, digits, '.', '_' or '-'")
    service = api_key_service()
    if args.list:
        lines, cursor = [], None
        while True:
            page, cursor = service.list_page(args.tenant, 100, cursor)
            lines += [
                f"{k.key_id}  {k.status:8} {k.role:9} {k.channel:14} used {k.last_used_on or '-'}  {k.name}"
                for k in page
            ]
            if cursor is None:
                break
        print("\n".join(lines) or "no keys")
        return "\n".join(lines)
    if args.rotate:
        if not 0 <= args.grace_hours <= MAX_GRACE_HOURS:
            parser.error(f"--grace-hours is 0 to {MAX_GRACE_HOURS}")
        rotated = service.rotate(args.tenant, args.rotate, Rotation(grace_hours=args.grace_hours))
        print(f"key {rotated.key_id} of tenant {args.tenant}, new secret: {rotated.secret}")
        return rotated.secret
    if args.revoke:
        revoked = service.revoke(args.tenant, args.revoke)
        print(f"key {revoked.key_id} of tenant {args.tenant} revoked at {revoked.revoked_at}")
        return revoked.key_id
    if not args.role or not args.name:
        parser.error("issuing a key needs --role and --name")
    if args.role == "channel" and not args.channel:
        parser.error("a channel key needs --channel")
    key, principal = service.issue(args.tenant, args.role, args.channel or "operator", args.name)
    print(f"{principal.role} key {principal.key_id} for tenant {principal.tenant}: {key}")
    return key


if __name__ == "__main__":
    main()
