"""Typed errors of human review; each carries the HTTP status a handler answers with (:data:`status`)."""

from __future__ import annotations

from shared.exceptions import SluiceError


class ReviewError(SluiceError):
    """The review store failed in a way that is not the request's fault (500)."""

    status = 500


class ReviewItemNotFoundError(ReviewError):
    """No review item of that id (404)."""

    status = 404


class InvalidDecisionError(ReviewError):
    """A decision the use case does not accept: a taxonomy value not declared, a label the contract does not
    allow (400)."""

    status = 400


class NotClaimedError(ReviewError):
    """The reviewer holds no claim on the item: another reviewer's claim is not theirs to decide (403)."""

    status = 403


class ReviewConflictError(ReviewError):
    """The item is in a state that refuses the request (409): already decided, decided by this reviewer, claimed
    by as many reviewers as it needs, or already claimed by this reviewer."""

    status = 409

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ClaimLapsedError(ReviewError):
    """The reviewer's claim lapsed before the decision came (410): the item went back to the queue."""

    status = 410
    reason = "claim_lapsed"


class QueueFullError(ReviewError):
    """The queue holds ``capacity`` undecided items: intake waits (the inbound message stays queued) (429)."""

    status = 429

    def __init__(self, undecided: int, capacity: int) -> None:
        super().__init__(f"the review queue holds {undecided} undecided items (capacity {capacity})")
        self.undecided = undecided
        self.capacity = capacity


class ConcurrentReviewError(ReviewError):
    """Someone else wrote the item between this read and this write (the store's conditional write failed)."""

    status = 409
    reason = "concurrent_update"
