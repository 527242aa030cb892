"""The harness's own error types: the only exceptions the command line prints as one line.

Anything else that escapes an experiment is a bug (in the harness, or in user code such as a
generator callable): the CLI prints its traceback and says so.  ``HarnessError`` subclasses
``ValueError`` so that library users who catch ``ValueError`` around a score call keep working.
"""


class HarnessError(ValueError):
    """A user-fixable problem (missing weights, bad input, unknown name): one line, no traceback.

    The message must name the problem and the fix.  ``exit_code`` is what the CLI exits with.
    """

    exit_code = 2

    def __init__(self, message: str):
        # Keep messages to one line: the CLI prints them as `error: <message>`.
        super().__init__(" ".join(str(message).split()))


class ConfigError(HarnessError):
    """A config value of the wrong type, an unknown key, or an impossible combination."""


class MissingInputError(HarnessError):
    """A weights file or dataset that is not on disk (and cannot be downloaded).

    ``items``: one message per missing input, when several are reported at once.
    """

    def __init__(self, message: str, items: list[str] | None = None):
        super().__init__(message)
        self.items = list(items) if items else [" ".join(str(message).split())]


class ResourceUnavailable(MissingInputError):
    """The run needs something this machine lacks at this scale (a GPU, time): one line with the
    fix.
    """


class UserCodeExit(HarnessError):
    """User code (a generator callable) called ``sys.exit`` or was interrupted: the run stops."""

    exit_code = 1


class UserCodeError(RuntimeError):
    """User code (a generator callable) raised: not a harness bug and not a config problem.

    The CLI prints the traceback (it points into the user's code) and this one line.
    """
