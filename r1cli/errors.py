"""The one exception for a user's mistake.

`UserError("...")` carries a single line that names the thing and what to do. The CLI
prints it to stderr and exits 2 with no traceback; anything else is a bug and may
traceback. Raise it before the first expensive step (model load, generation).
"""


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class DiskFull(UserError):
    """The filesystem ran out of space while a stage wrote `path`: the CLI prints one line saying
    how to continue (exit 2). OUT.partial/ is kept, unlike for other user errors."""

    def __init__(self, path):
        self.path = str(path)
        super().__init__(f"no space left on device while writing {self.path}")
