"""One base error with an exit code per kind; the CLI prints one line and exits with it."""


class ItsError(Exception):
    """An error the user can act on. `return_code` is the process exit status."""

    return_code = 1


class BadInput(ItsError):
    """Unreadable, missing or malformed input given by the user (exit 2)."""

    return_code = 2


class BadCheckpoint(BadInput):
    """A checkpoint that is missing, foreign, truncated or fails its checksums (exit 2)."""


class MissingDependency(ItsError):
    """A runtime piece (espeak-ng, fonts, a backend) that this machine lacks (exit 3)."""

    return_code = 3
