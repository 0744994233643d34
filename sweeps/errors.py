"""What the client raises: one base class, so a script can catch everything this package reports.

Nothing in ``sweeps`` prints an error; the ``sweep`` command turns these into its stderr lines
and exit status 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.model.errors import SweepError


class SweepsError(Exception):
    """Anything the client reports: the API refused or failed, a query failed, a wait ran out."""


@dataclass(eq=False)  # compared and hashed as any exception is: by identity
class ApiError(SweepsError):
    """A non-2xx answer (or no answer at all), with the contract's error body: ``code`` is its
    ``error``, ``problems`` its list of ``{path, message}``; ``status`` is None when the API was
    not reached."""

    status: int | None
    code: str
    message: str
    problems: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def before_sending(cls, refused: SweepError, source: str | None = None) -> ApiError:
        """A request refused here, before it was sent (read, or estimated, by the model's own
        rules), as the API would have answered it: the error, then its problems."""
        message = f"{source}: {refused.message}" if source else refused.message
        return cls(None, refused.code, message, [p.to_dict() for p in refused.problems])

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status else ""
        return f"{where}{self.code}: {self.message}"

    def lines(self) -> list[str]:
        """What the CLI prints: the error, then one line per problem."""
        return [
            str(self),
            *(f"{p.get('path') or '/'}: {p.get('message', '')}" for p in self.problems),
        ]


class QueryError(SweepsError):
    """A query could not be prepared or run."""


class QueryFailed(QueryError):
    """Athena ended the query FAILED or CANCELLED."""

    def __init__(
        self, query_id: str, state: str, reason: str, category: int | None, error_type: int | None
    ) -> None:
        detail = f" (error category {category}, type {error_type})" if category else ""
        super().__init__(f"Athena query {query_id} {state}: {reason or 'no reason given'}{detail}")
        self.query_id = query_id
        self.state = state
        self.reason = reason
        self.category = category
        self.error_type = error_type


class QueryTimeout(QueryError):
    """The query ran longer than the engine's timeout; it was stopped."""


class OutputError(SweepsError):
    """A file the client was asked to write (a plot's PNG) could not be written."""


class WaitTimeout(SweepsError):
    """``Run.wait`` gave up before the run was complete (the run goes on)."""
