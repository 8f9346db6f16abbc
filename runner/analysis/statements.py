"""pg_stat_statements' top statements matched to the op types that sent them.

The server normalizes a statement (constants become $n, IN lists may be squashed) and the
workers saw it as the driver got it (asyncpg: $n; psycopg: %(name)s; psycopg2 binds on the
client, so the server saw literals). Both sides are brought to one shape, every placeholder and
literal a `?` and every list of them one `(?)`, and compared on their common prefix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MIN_PREFIX = 24  # characters of shape two statements must share (and at least one must have)
PLACEHOLDER = re.compile(r"\$\d+|%\(\w+\)s|%s|'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
CAST = re.compile(r"::[\w ]+?(?:\[\])?(?=[\s,)]|$)")
LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
COMMENT = re.compile(r"/\*.*?\*/")


def shape(statement: str) -> str:
    """A statement with its values, casts, lists, comments, case and spacing taken out."""
    text = statement.removesuffix("...")  # the report shortens long statements
    text = COMMENT.sub("", text)
    text = PLACEHOLDER.sub("?", text)
    text = CAST.sub("", text)
    text = " ".join(text.lower().split())
    text = LIST.sub("(?)", text)
    return text.replace("( ", "(").replace(" )", ")")


def _same(a: str, b: str) -> bool:
    common = min(len(a), len(b))
    return common >= MIN_PREFIX and a[:common] == b[:common]


def match_ops(top: Iterable[dict[str, object]], texts_by_op: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """For each top statement, the op types that sent it (empty: none the workers saw)."""
    shapes = {op: [shape(t) for t in texts] for op, texts in texts_by_op.items()}
    return [sorted(op for op, mine in shapes.items() if any(_same(shape(str(e["query"])), s) for s in mine)) for e in top]
