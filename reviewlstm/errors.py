"""The one error type users see: bad input, said in one line."""


class InputError(Exception):
    """Input the pipeline cannot use: which file, which row or column, what was expected.

    The command prints the message alone (no traceback) and exits with status 2.
    """
