"""One exception type for problems the user can fix; the CLI prints it as one line."""


class HarnessError(Exception):
    """A user-fixable problem (missing weights, bad input, unknown name): one line, no traceback.

    The message must name the problem and the fix.
    """

    def __init__(self, message: str):
        # Keep messages to one line: the CLI prints them as `error: <message>`.
        super().__init__(" ".join(str(message).split()))


class MissingInputError(HarnessError):
    """A weights file or dataset that is not on disk (and cannot be downloaded)."""


class ResourceUnavailable(MissingInputError):
    """The run needs something this machine lacks at this scale (a GPU, time): one line with the fix."""
