"""The one exception type for mistakes a user can fix (bad paths, configs, checkpoints).

The CLI catches it, prints its one-line message and exits with code 2; anything else is a bug.
"""


class QuadlensError(ValueError):
    """A user-facing error: the message says what is wrong and what to do."""
