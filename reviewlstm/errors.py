"""The one error type users see: bad input, said in one line; and the OS error inside another."""

from __future__ import annotations

import re


class InputError(Exception):
    """Input the pipeline cannot use: which file, which row or column, what was expected.

    The command prints the message alone (no traceback) and exits with status 2.
    """


def os_error_code(exc: BaseException) -> int | None:
    """The errno of an OSError, or of one a library names only in its message (polars: "(os error 28)")."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    match = re.search(r"\(os error (\d+)\)", str(exc))
    return int(match.group(1)) if match else None
