"""The one exception type for mistakes a user can fix (bad paths, configs, checkpoints).

The CLI catches it, prints its one-line message and exits with code 2; anything else is a bug.
"""


class QuadlensError(ValueError):
    """A user-facing error: the message says what is wrong and what to do."""


class DivergedError(QuadlensError):
    """Training reached a non-finite loss; `member` is the index of the model in its batch."""

    def __init__(self, message: str, member: int) -> None:
        super().__init__(message)
        self.member = member
