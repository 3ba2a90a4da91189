"""A batch's Arrow table as the pandas frames ``Buffer.dataframe`` serialises fastest into the shortest ILP lines.

Rows split in two shapes: *plain* rows (no text, no state code, no flag but ``good``) -- nearly all of them --
keep only ``ts, point, seq, value, good, point_set``, so their lines carry nothing else; the rest keep every
column. Columns stay Arrow-backed (no conversion to NumPy; nulls are left out of the line instead of written as
NaN, which QuestDB stores alike), symbols become categoricals, and columns null or false in every row are left
out (QuestDB stores null and false for what a line omits). No column holds Python objects, so the serialiser
runs without the GIL.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from naia_backfill.sinks.questdb import COLUMNS, FLAGS, OPTIONAL

PLAIN_COLUMNS = ("ts", "point", "seq", "value", "good", "point_set")
SYMBOLS = ("point", "point_set")


def split_shapes(table: pa.Table) -> list[pa.Table]:
    """The plain rows (their columns only) and the rest (every column); an empty part is left out."""
    plain = pc.and_(pc.and_(table.column("text").is_null(), table.column("state_code").is_null()),
                    pc.invert(pc.or_(pc.or_(table.column("is_system"), table.column("questionable")),
                                     pc.or_(table.column("substituted"), table.column("annotated")))))
    n_plain = pc.sum(plain).as_py() or 0
    if n_plain == 0:
        return [table]
    lean = table.select(list(PLAIN_COLUMNS))
    if n_plain == table.num_rows:
        return [lean]
    return [lean.filter(plain), table.filter(pc.invert(plain))]


def ilp_frame(table: pa.Table) -> pd.DataFrame:
    """One shape's rows as a frame of Arrow-backed columns (categoricals for the symbols), in table order."""
    data = {}
    for name in COLUMNS:
        if name not in table.column_names:
            continue
        col = table.column(name).combine_chunks()
        if name in OPTIONAL and col.null_count == len(col):
            continue
        if name in FLAGS and not pc.any(col).as_py():
            continue
        if name in SYMBOLS:
            data[name] = pd.Series(col.to_pandas(), copy=False)
        else:
            data[name] = pd.Series(pd.arrays.ArrowExtensionArray(col), copy=False)
    return pd.DataFrame(data, copy=False)


def ilp_frames(table: pa.Table) -> list[pd.DataFrame]:
    """The frames for one QuestDB request: ``table`` (chunks combined once) split by shape."""
    return [ilp_frame(part) for part in split_shapes(table.combine_chunks())]
