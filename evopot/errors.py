"""The one exception a user sees: a mistake in something they gave us."""


class EvopotError(Exception):
    """A user-facing error: names the file, the field and the fix.

    The command line prints it on one line and exits with status 2; the Python API
    lets it propagate. Anything else that escapes is a bug in evopot.
    """


def brief(text: object, limit: int = 200) -> str:
    """``text`` (an exception a library raised, say) as one line of at most ``limit``
    characters, to quote inside an :class:`EvopotError`."""
    return " ".join(str(text).split())[:limit]
