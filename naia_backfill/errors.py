"""Typed errors with messages a user can act on."""

from __future__ import annotations


class NaiaError(Exception):
    """Base class of every error naia_backfill raises on purpose."""


class PointSetError(NaiaError):
    """A point-set file is missing, unreadable or invalid."""


class SinkConfigError(PointSetError):
    """The point set's sinks cannot work together or with this lake; refused before anything is written."""


class SourceError(NaiaError):
    """The source refused, failed or returned something unusable."""


class UnknownPointsError(SourceError):
    """Points named in a point set do not exist at the source."""

    def __init__(self, points: list[str], source: str) -> None:
        shown = ", ".join(points[:20]) + (f" and {len(points) - 20} more" if len(points) > 20 else "")
        super().__init__(f"{len(points)} point(s) not found at {source}: {shown}")
        self.points = points

    @classmethod
    def from_file(cls, missing: int, total: int, path: object, lines: str, source: str) -> UnknownPointsError:
        """Names read from a points file: the message gives line numbers, never the file's contents."""
        err = cls.__new__(cls)
        SourceError.__init__(err, f"{missing} of the {total} point names in {path} are not at {source} (lines {lines})")
        err.points = []
        return err


class CredentialsError(SourceError):
    """The source refused the credentials (or none were given where it needs some)."""


class NoMatchingPointsError(SourceError):
    """A point set's filter matches no point at the source."""


class LakeError(NaiaError):
    """The lake cannot be used: a folder that cannot be written, an unreachable bucket, refused credentials."""


class SinkError(NaiaError):
    """A sink could not store a day completely."""


class DayFailedError(NaiaError):
    """One day of a ranged run failed; earlier days of the run are kept."""

    def __init__(self, point_set: str, day: str, cause: BaseException) -> None:
        super().__init__(f"point set {point_set!r}, day {day} failed: {cause}")
        self.point_set = point_set
        self.day = day
