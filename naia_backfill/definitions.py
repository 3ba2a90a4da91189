"""The code location: every point set in naia_backfill/point_sets/ and in $NAIA_POINT_SETS."""

import dagster as dg

from naia_backfill.lib.definitions import build_definitions
from naia_backfill.settings import extra_locations, load_point_sets


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_point_sets(extra_locations()))
