"""One Logger and one Metrics instance for the whole service (Powertools reads its settings from env).

There is deliberately no Tracer: Lambda's active tracing records each invocation without the X-Ray SDK,
which costs more cold start than any other single import (docs/decisions.md, D-004).
"""

import logging

from aws_lambda_powertools import Logger, Metrics

from loyalty.domain.personal_data import redacted

_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({})))  # a LogRecord's own attributes, not `extra`


class PersonalDataFilter(logging.Filter):
    """Masks personal fields and operators' free text wherever a log line's `extra` carries them (D-123), so
    a field logged by mistake shows as 138****8000 or ***, never whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS:
                setattr(record, name, redacted({name: value})[name])
        return True


logger = Logger()
logger.addFilter(PersonalDataFilter())
metrics = Metrics()
