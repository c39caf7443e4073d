"""Exceptions of axonseg: every failure a user can cause is one of these.

The CLI turns them into a one-line message and a non-zero exit code; the message must
name the file, dataset or parameter at fault and what was expected.
"""

from __future__ import annotations


class AxonsegError(Exception):
    """Base class of every error that axonseg raises on purpose."""


class InputError(AxonsegError):
    """An input file, dataset or array is missing or not what was expected."""


class ConfigError(AxonsegError):
    """A config file or parameter is invalid (unknown key, wrong type, missing value)."""


class OutputExistsError(AxonsegError):
    """An output exists already and ``overwrite`` was not given."""


class StageError(AxonsegError):
    """A pipeline stage failed or cannot run (for example, a stage it needs is missing)."""


class RunLockedError(AxonsegError):
    """Another running process holds the lock of the run folder (``RUN/.lock``)."""
