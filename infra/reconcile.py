"""Reconcile (对账) a deployed stack's table, or the local one, and print the report as JSON:

    TABLE_NAME=<table> python -m infra.reconcile                 # every tenant
    TABLE_NAME=<table> python -m infra.reconcile --tenant acme   # one tenant

It checks, per member and point group, that the balances equal the formulas over the records and the open
lots less debt, and per coupon rule that the stock equals remaining plus issued and issued equals the
coupons that exist. It only reads. The exit status is 1 when it found a difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "loyalty"))

from loyalty.services.reconciliation import reconciler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenant", help="only this tenant's members and rules")
    args = parser.parse_args(argv)
    report = reconciler().run(tenant=args.tenant)
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    return 1 if report.differences else 0


if __name__ == "__main__":
    sys.exit(main())
