"""One run, start to finish: the only module that knows the whole sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutcomeStatus = Literal["succeeded", "skipped", "failed", "awaiting_approval"]


@dataclass(frozen=True)
class RunOutcome:
    """What a run ended with; the worker stores it and the status comment shows it."""

    status: OutcomeStatus
    message: str
    branch: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
