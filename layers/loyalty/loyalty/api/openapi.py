"""One OpenAPI document for the whole API, generated from the routers (`python -m loyalty.api.openapi`).

docs/openapi.json is this output, committed; a test fails when it is stale.
"""

from __future__ import annotations

import importlib
import json
import pkgutil

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from loyalty.api import routes
from loyalty.api.resolver import build_app

TITLE = "Loyalty platform API"
VERSION = "0.1.0"
DESCRIPTION = (
    "Channels (POS, app, mini-program, web shop) use channel keys on /v1/...; operators use operator keys on "
    "/v1/admin/.... Send the key as `Authorization: Bearer <key>`. Errors are RFC 9457 problem JSON with a "
    "stable `code`. POSTs with an effect accept `Idempotency-Key`: a retry with the same key gets the first answer."
)


def document() -> dict:
    routers = [
        importlib.import_module(f"{routes.__name__}.{m.name}").router for m in pkgutil.iter_modules(routes.__path__)
    ]
    app = build_app(*routers)
    schema = app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes={"apiKey": HTTPBearer(description="A channel or operator API key")},
        security=[{"apiKey": []}],
    )
    return json.loads(schema)


if __name__ == "__main__":
    print(json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=True))
