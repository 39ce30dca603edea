"""Masking data that leaves an approval-gated environment, inside the copy's database.

Rules come from the source environment's `data:` block in the matrix. They are checked
against the source's schema before anything is copied, then run as SQL in the copy: one
DELETE per subset table, one UPDATE per masked table, in one transaction, followed by
VACUUM FULL so the old row versions are gone from the tables' files too.

hash is deterministic (salted SHA-256, the salt a secret of the source environment), so equal
values stay equal and joins on masked columns still match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envplane.data.envs import approval_required
from envplane.errors import BadInput, Blocked
from envplane.lifecycle.common import ensure_secrets, matrix_for
from envplane.matrix.models import DataRules
from envplane.workspace import Workspace

SALT_SECRET = "masking-salt"  # noqa: S105 - the name of a secret
TEXT_TYPES = ("text", "character varying", "character", "citext")
INT_LIMITS = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}


@dataclass(frozen=True)
class Column:
    schema: str
    table: str
    name: str
    data_type: str
    max_length: int | None
    nullable: bool


@dataclass
class MaskPlan:
    source: str
    rules: DataRules
    columns: dict[str, Column] = field(default_factory=dict)

    def describe(self) -> list[str]:
        lines = [f"keep rows of {t} where {c}" for t, c in self.rules.subset.items()]
        for path, rule in self.rules.masking.items():
            shown = (
                "null"
                if rule is None
                else rule
                if rule in ("hash", "redact", "null")
                else "a fixed value"
            )
            lines.append(f"mask {path}: {shown}")
        return lines


def decide(ws: Workspace, source: str, target: str, *, unmasked: bool) -> DataRules | None:
    """The rules to apply to data copied from `source` into `target`, or None for none."""
    if not approval_required(ws, source) or approval_required(ws, target) or unmasked:
        return None
    try:
        rules = matrix_for(ws, source).environment(source).data
    except BadInput:
        rules = None
    if rules is None or not (rules.masking or rules.subset):
        raise Blocked(
            f"{source!r} requires approval and declares no masking rules: its data will not "
            f"be copied unmasked into {target!r}",
            hint=f"declare environments.{source}.data.masking in the matrix, or pass --unmasked",
        )
    return rules


def _columns(conn: Any) -> dict[str, Column]:
    rows = conn.execute(
        "SELECT table_schema, table_name, column_name, data_type, character_maximum_length, "
        "is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()
    return {f"{r[0]}.{r[1]}.{r[2]}": Column(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}


def check(rules: DataRules, source: str, conn: Any) -> MaskPlan:
    """Match every rule with the source's schema; BadInput names the first that does not fit."""
    columns = _columns(conn)
    tables = {c.rsplit(".", 1)[0] for c in columns}
    where = f"environments.{source}.data"
    for table in rules.subset:
        if table not in tables:
            raise BadInput(f"{where}.subset: no table {table} in {source}'s database")
    plan = MaskPlan(source, rules)
    for path, rule in rules.masking.items():
        col = columns.get(path)
        if col is None:
            raise BadInput(f"{where}.masking: no column {path} in {source}'s database")
        if (rule is None or rule == "null") and not col.nullable:
            raise BadInput(f"{where}.masking.{path}: null on a NOT NULL column; use hash or redact")
        if rule == "redact" and col.data_type not in TEXT_TYPES:
            raise BadInput(
                f"{where}.masking.{path}: redact needs a text column, not {col.data_type}"
            )
        if rule == "hash" and col.data_type not in (*TEXT_TYPES, *INT_LIMITS, "uuid"):
            raise BadInput(
                f"{where}.masking.{path}: hash works on text, integer and uuid columns, "
                f"not {col.data_type}; use null, redact or a fixed value"
            )
        plan.columns[path] = col
    return plan


def _expression(col: Column, rule: str | None) -> tuple[Any, list[str]]:
    """SQL for the new value of one column, and its parameters (the salt, a fixed value)."""
    from psycopg import sql

    ident = sql.Identifier(col.name)
    if rule is None or rule == "null":
        return sql.SQL("NULL"), []
    if rule == "redact":
        text = "REDACTED"[: col.max_length] if col.max_length else "REDACTED"
        return sql.SQL("CASE WHEN {c} IS NULL THEN NULL ELSE {v} END").format(
            c=ident, v=sql.Literal(text)
        ), []
    if rule == "hash":
        digest = sql.SQL("encode(sha256(convert_to(%s::text || {c}::text, 'UTF8')), 'hex')").format(
            c=ident
        )
        if col.data_type in INT_LIMITS:
            expr = sql.SQL("(('x' || left({d}, 15))::bit(60)::bigint % {m})").format(
                d=digest, m=sql.Literal(INT_LIMITS[col.data_type])
            )
        elif col.data_type == "uuid":
            expr = sql.SQL("(left({d}, 32))::uuid").format(d=digest)
        elif col.max_length:
            expr = sql.SQL("left({d}, {n})").format(d=digest, n=sql.Literal(col.max_length))
        else:
            expr = digest
        return expr, ["salt"]
    return sql.SQL("CASE WHEN {c} IS NULL THEN NULL ELSE {v} END").format(
        c=ident, v=sql.Literal(rule)
    ), []


def apply(plan: MaskPlan, salt: str, conn: Any, progress: Callable[[str], None]) -> list[str]:
    """Subset and mask in the copy; returns one line per statement run."""
    from psycopg import sql

    done: list[str] = []
    by_table: dict[tuple[str, str], list[Column]] = defaultdict(list)
    for col in plan.columns.values():
        by_table[(col.schema, col.table)].append(col)
    with conn.transaction():
        for table, clause in plan.rules.subset.items():
            schema, name = table.split(".")
            # The matrix author's own WHERE clause, run only here in the copy.
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE ({}) IS NOT TRUE").format(
                    sql.Identifier(schema, name),
                    sql.SQL(clause),
                )
            )
            done.append(f"subset {table}: {cur.rowcount} rows removed")
        for (schema, name), cols in by_table.items():
            sets, params = [], []
            for col in cols:
                expr, wanted = _expression(col, plan.rules.masking[f"{schema}.{name}.{col.name}"])
                sets.append(sql.SQL("{} = {}").format(sql.Identifier(col.name), expr))
                params += [salt for _ in wanted]
            cur = conn.execute(
                sql.SQL("UPDATE {} SET {}").format(
                    sql.Identifier(schema, name), sql.SQL(", ").join(sets)
                ),
                params,
            )
            done.append(f"masked {len(cols)} column(s) of {schema}.{name} in {cur.rowcount} rows")
    for schema, name in sorted({*by_table, *(tuple(t.split(".")) for t in plan.rules.subset)}):
        progress(f"vacuum full {schema}.{name}")
        conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(schema, name)))
    conn.execute("CHECKPOINT")
    return done


def salt(ws: Workspace, source: str) -> str:
    ensure_secrets(ws, source, (SALT_SECRET,))
    return ws.store.get_secret(source, SALT_SECRET)
