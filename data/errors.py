"""Errors every artbias package raises for bad input.

The command line turns any ``ArtbiasError`` into a one-line message and a non-zero exit,
so raise one of these (with a message that names the problem) for anything a user did.
"""


class ArtbiasError(Exception):
    """Base class: a problem with the user's input, files or environment."""


class ConfigError(ArtbiasError, ValueError):
    """A bad argument, option or configuration value."""


class CheckpointError(ArtbiasError):
    """A model file that is missing, corrupt, unsafe or of the wrong shape."""


class WeightsNotFoundError(CheckpointError, FileNotFoundError):
    """Published weights that are neither on disk nor downloadable here."""


class DatasetError(ArtbiasError):
    """A dataset that is empty, malformed or holds files that are not images."""
