"""One Logger and one Metrics instance for the whole service (Powertools reads its settings from env).

There is deliberately no Tracer: Lambda's active tracing records each invocation without the X-Ray SDK,
which costs more cold start than any other single import (docs/decisions.md, D-004).
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
