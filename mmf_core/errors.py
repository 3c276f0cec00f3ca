"""User-facing errors.

Every bad input raises :class:`MMFError` with ONE line that says what is wrong and what to
do about it. The CLI prints it as ``error: <message>`` and exits with status 2; the
dashboard shows it with ``st.error``. Anything else that escapes is a bug.
"""


class MMFError(ValueError):
    """A bad input or an unmet precondition, described in one line for a person."""

    def __init__(self, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


def positive_float(value, name: str) -> float:
    """Parse ``value`` as a finite float > 0, or raise a one-line :class:`MMFError`."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise MMFError(f"{name} must be a positive number, got {value!r}; pass e.g. {name}=0.01") from None
    if not (x > 0 and x != float("inf")):
        raise MMFError(f"{name} must be a positive number, got {value!r}; pass e.g. {name}=0.01")
    return x
