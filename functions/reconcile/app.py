"""The nightly reconciliation: the schedule checks every member's points and every coupon rule's stock
and reports what does not add up (logs and the ReconciliationDifferences metric). It never writes."""

from functools import lru_cache

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.services.reconciliation import Reconciler, reconciler


@lru_cache(maxsize=1)
def service() -> Reconciler:
    return reconciler()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    """A schedule's event runs the whole table; `segment`/`segments` in the event split it across runs."""
    report = service().run(segment=int(event.get("segment", 0)), segments=int(event.get("segments", 1)))
    metrics.add_metric(name="ReconciliationDifferences", unit=MetricUnit.Count, value=len(report.differences))
    metrics.add_metric(name="ReconciledMembers", unit=MetricUnit.Count, value=report.members)
    return report.as_dict()
