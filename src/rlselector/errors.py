"""The one exception users see for bad input: it names what is wrong and how to fix it."""


class InputError(ValueError):
    """Bad input (a file, a field, a parameter), raised before any heavy work starts.

    The message always names the offending file or field and the fix.
    """
