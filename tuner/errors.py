"""The one exception family for problems with the user's input.

The CLI prints these in one line and exits with code 2; anything else is a
bug in tune-loader and keeps its traceback.
"""


class TuneLoaderError(Exception):
    """Bad input: says what happened, what was expected and how to fix it."""
