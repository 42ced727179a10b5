"""The one exception type users see: its message names the problem and the fix."""


class EdgeAEError(Exception):
    """A problem with the user's input or environment (not a bug): printed as one line, exit code 2."""
