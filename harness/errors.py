"""The one exception type that the scripts turn into a plain message and exit status 2."""


class UserError(Exception):
    """A mistake the user can fix: a missing file, a bad value, a corrupt input.

    The message is one sentence saying what is wrong and what to do; the scripts
    print it without a traceback.
    """


class DataError(UserError):
    """A data file is missing, corrupt or in the wrong format."""
