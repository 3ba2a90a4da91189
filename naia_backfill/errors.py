"""Typed errors with messages a user can act on."""


class NaiaError(Exception):
    """Base class of every error naia_backfill raises on purpose."""


class PointSetError(NaiaError):
    """A point-set file is missing, unreadable or invalid."""


class SourceError(NaiaError):
    """The source refused, failed or returned something unusable."""


class UnknownPointsError(SourceError):
    """Points named in a point set do not exist at the source."""

    def __init__(self, points: list[str], source: str) -> None:
        shown = ", ".join(points[:20]) + (f" and {len(points) - 20} more" if len(points) > 20 else "")
        super().__init__(f"{len(points)} point(s) not found at {source}: {shown}")
        self.points = points


class SinkError(NaiaError):
    """A sink could not store a day completely."""


class DayFailedError(NaiaError):
    """One day of a ranged run failed; earlier days of the run are kept."""

    def __init__(self, point_set: str, day: str, cause: BaseException) -> None:
        super().__init__(f"point set {point_set!r}, day {day} failed: {cause}")
        self.point_set = point_set
        self.day = day
