"""The candidate alarms: their names (CDK builds them from these) and the EventBridge event they raise.

Every candidate alarm of a use case is named ``sluice-<usecase-with-hyphens>-candidate-<what>``; the
EventBridge rule matches that prefix. The watch-window alarms (variant ``champion``, meaningful only
while stage == watch) are ``sluice-<usecase>-candidate-watch-<what>``: during shadow or canary they
describe the old champion, so the rollback function ignores them then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasPath, BaseModel, ConfigDict, Field

ALARM_STATE = "ALARM"
EVENT_SOURCE = "aws.cloudwatch"
EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"
WATCH_MARKER = "watch-"

# The <what> part of each alarm (CDK: alarm_name=candidate_alarm_name(usecase, ERROR_RATE), ...).
ERROR_RATE = "error-rate"
LATENCY_P99 = "latency-p99"
FALLBACK_RATE = "fallback-rate"
DIVERGENCE = "divergence"
SHADOW_ERRORS = "shadow-errors"
WATCH_ERROR_RATE = f"{WATCH_MARKER}error-rate"
WATCH_LATENCY_P99 = f"{WATCH_MARKER}latency-p99"
CANDIDATE_ALARMS = (ERROR_RATE, LATENCY_P99, FALLBACK_RATE, DIVERGENCE, SHADOW_ERRORS)
WATCH_ALARMS = (WATCH_ERROR_RATE, WATCH_LATENCY_P99)


def candidate_alarm_prefix(usecase: str) -> str:
    """``sluice-<usecase-with-hyphens>-candidate-`` (the EventBridge rule's ``prefix`` match)."""
    return f"sluice-{usecase.replace('_', '-')}-candidate-"


def candidate_alarm_name(usecase: str, what: str) -> str:
    return f"{candidate_alarm_prefix(usecase)}{what}"


def is_candidate_alarm(usecase: str, alarm_name: str) -> bool:
    return alarm_name.startswith(candidate_alarm_prefix(usecase))


def is_watch_alarm(usecase: str, alarm_name: str) -> bool:
    """A watch-window alarm: it watches the (new) champion, so it only counts while stage == watch."""
    return alarm_name.startswith(candidate_alarm_prefix(usecase) + WATCH_MARKER)


class AlarmStateChange(BaseModel):
    """The parts of a "CloudWatch Alarm State Change" event the rollback function reads."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    alarm_name: str = Field(validation_alias=AliasPath("detail", "alarmName"), min_length=1)
    state: str = Field(validation_alias=AliasPath("detail", "state", "value"))
    reason: str = Field(default="", validation_alias=AliasPath("detail", "state", "reason"))
    state_timestamp: datetime = Field(validation_alias=AliasPath("detail", "state", "timestamp"))

    @property
    def is_alarm(self) -> bool:
        return self.state == ALARM_STATE

    @property
    def idempotency_key(self) -> str:
        """The same alarm entering ALARM at the same moment is the same incident (EventBridge may deliver twice)."""
        return f"{self.alarm_name}#{self.state_timestamp.isoformat()}"


def parse_alarm_event(event: dict[str, Any]) -> AlarmStateChange:
    return AlarmStateChange.model_validate(event)
