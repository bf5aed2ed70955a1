"""The error types of lamina.data: a damaged IDX file, a wrong checksum, a data set not found."""

from __future__ import annotations


class IDXError(ValueError):
    """An IDX file is damaged or is not an IDX file; ``path`` names the file, ``field`` the part at fault.

    Fields: ``gzip``, ``magic``, ``type code``, ``ndim``, ``dims``, ``data``, ``sha256``.
    """

    def __init__(self, path, field: str, problem: str):
        super().__init__(path, field, problem)
        self.path, self.field, self.problem = str(path), field, problem

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.problem}"


class ChecksumError(IDXError):
    """The SHA-256 of an IDX file's decompressed content is not the one expected."""

    def __init__(self, path, expected: str, actual: str, hint: str = ""):
        problem = f"the decompressed content has SHA-256 {actual}, expected {expected}"
        super().__init__(path, "sha256", problem + (f"; {hint}" if hint else ""))
        self.expected, self.actual, self.hint = expected, actual, hint
        self.args = (path, expected, actual, hint)


class DatasetNotFoundError(FileNotFoundError):
    """A data set is neither installed nor downloadable; the message says where lamina looked and how to fix
    it.

    ``looked`` holds the folders searched, ``attempts`` the (url, reason) of each failed download.
    """

    def __init__(self, message: str, *, looked=(), attempts=()):
        super().__init__(message)
        self.looked, self.attempts = tuple(looked), tuple(attempts)

    def __str__(self) -> str:
        return self.args[0]
