"""User-facing errors.

Every mistake a user can make (a bad configuration value, a malformed layer SPEC or CSV, a program
compiled for another configuration) raises a ``TesseraError`` whose message is one line naming the
field, the value and what is allowed. The CLI prints that line and exits non-zero; anything else that
escapes is a bug in Tessera and keeps its traceback.
"""


class TesseraError(Exception):
    """A user error with a one-line, actionable message."""


class ConfigError(TesseraError):
    """An invalid architecture configuration value or key."""


class SpecError(TesseraError):
    """A malformed layer SPEC, topology file or model description."""


class CompileError(TesseraError):
    """A layer or network that cannot be lowered onto the chosen configuration."""


class ProgramError(TesseraError):
    """A corrupt program, or one compiled for another configuration."""
