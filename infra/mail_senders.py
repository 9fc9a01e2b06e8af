"""The platform's command for a tenant's email senders (D-125): register an address or a domain a tenant may
send from (SES starts verifying it, tagged with the tenant), or list the tenant's. A tenant's operators then
name one of them as a program's `emailFrom`; they cannot register one themselves.

    python -m infra.mail_senders --tenant acme --register loyalty@acme.com
    python -m infra.mail_senders --tenant acme --register acme.com
    python -m infra.mail_senders --tenant acme --list
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "loyalty"))

from loyalty.domain.config import CODE_PATTERN
from loyalty.services.messages.mail_identities import TENANT_TAG, MailIdentities, SenderTaken


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenant", required=True)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--register", metavar="ADDRESS_OR_DOMAIN")
    action.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if not re.match(CODE_PATTERN, args.tenant):
        parser.error("a tenant id is letters, digits, '.', '_' or '-'")
    if args.register:
        try:
            MailIdentities().register(args.tenant, args.register)
        except SenderTaken as taken:
            parser.error(str(taken))
        print(f"{args.register} registered for {args.tenant}; SES sends from it once it is verified")
        return str(args.register)
    client, found, token = boto3.client("sesv2"), [], None
    while True:
        page = client.list_email_identities(**({"NextToken": token} if token else {}))
        for identity in page.get("EmailIdentities", []):
            tags = client.get_email_identity(EmailIdentity=identity["IdentityName"]).get("Tags") or []
            if {"Key": TENANT_TAG, "Value": args.tenant} in tags:
                found.append(f"{identity['IdentityName']}  {identity.get('VerificationStatus', '')}")
        token = page.get("NextToken")
        if not token:
            break
    print("\n".join(found) or "no senders")
    return "\n".join(found)


if __name__ == "__main__":
    main()
