"""Masking in the local target's PostgreSQL (DataTarget.check_masking / apply_masking).

Rules are checked against the source's information_schema before anything is copied, then
run in the copy (a staged one, pgmask.py; or a restored one, in place): one DELETE per subset
table, one UPDATE per masked table, in one transaction, then VACUUM (FULL, ANALYZE): no old row
version left in the tables' files, statistics made again from the masked rows. hash is
salted SHA-256, deterministic: joins on masked columns still match. Names and values reach SQL
quoted by psycopg.sql (Identifier / Literal); the salt is a query parameter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envplane.errors import BadInput
from envplane.matrix.models import DataRules
from envplane.render.model import Resource
from envplane.targets.datacaps import MaskingPlan
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.kinds import postgres
from envplane.targets.local.specs import spec_port, spec_str

TEXT_TYPES = ("text", "character varying", "character", "citext")
INT_LIMITS = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}


@dataclass(frozen=True)
class Column:
    """What the plan keeps of one masked column (MaskingPlan.details, by its path)."""

    schema: str
    table: str
    name: str
    data_type: str
    max_length: int | None
    nullable: bool


def _connect(env: LocalEnv, res: Resource) -> Any:
    """A superuser connection to the resource's app database (autocommit)."""
    port = spec_port(res.spec, "port", res.key)
    return postgres.superuser(env, port, dbname=spec_str(res.spec, "database", res.key))


def _columns(conn: Any) -> dict[str, Column]:
    rows = conn.execute(
        "SELECT table_schema, table_name, column_name, data_type, character_maximum_length, "
        "is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()
    return {f"{r[0]}.{r[1]}.{r[2]}": Column(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}


def check(env: LocalEnv, res: Resource, rules: DataRules, source: str) -> MaskingPlan:
    """Match every rule with the schema; BadInput names the first that does not fit."""
    with _connect(env, res) as conn:
        columns = _columns(conn)
    tables = {c.rsplit(".", 1)[0] for c in columns}
    where = f"environments.{source}.data"
    for table in rules.subset:
        if table not in tables:
            raise BadInput(f"{where}.subset: no table {table} in {source}'s database")
    matched: dict[str, Column] = {}
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
        matched[path] = col
    return MaskingPlan(source, rules, matched)


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


def apply(
    env: LocalEnv, res: Resource, plan: MaskingPlan, salt: str, progress: Callable[[str], None]
) -> list[str]:
    """Subset and mask in the copy; returns one line per statement run."""
    with _connect(env, res) as conn:
        done = run_masking(conn, plan, salt, progress)
        conn.execute("CHECKPOINT")
    return done


def run_masking(
    conn: Any, plan: MaskingPlan, salt: str, progress: Callable[[str], None]
) -> list[str]:
    """The subset and the UPDATEs in one transaction over `conn` (a superuser's, autocommit,
    to the copy's app database), then VACUUM (FULL, ANALYZE) of every table touched: no old row
    version left in their files, and their statistics (pg_stats' most common values and
    histograms, readable by the tables' owner) computed again from the masked rows."""
    from psycopg import sql

    done: list[str] = []
    by_table: dict[tuple[str, str], list[Column]] = defaultdict(list)
    for col in plan.details.values():
        by_table[(col.schema, col.table)].append(col)
    with conn.transaction():
        for table, clause in plan.rules.subset.items():
            schema, name = table.split(".")
            # The matrix author's own WHERE clause, run only here in the copy.
            cur = conn.execute(
                sql.SQL("DELETE FROM {} WHERE ({}) IS NOT TRUE").format(
                    sql.Identifier(schema, name), sql.SQL(clause)
                )
            )
            done.append(f"subset {table}: {cur.rowcount} rows removed")
        for (schema, name), cols in by_table.items():
            sets, params = [], []
            for col in cols:
                rule = plan.rules.masking[f"{schema}.{name}.{col.name}"]
                expr, wanted = _expression(col, rule)
                sets.append(sql.SQL("{} = {}").format(sql.Identifier(col.name), expr))
                params += [salt for _ in wanted]
            cur = conn.execute(
                sql.SQL("UPDATE {} SET {}").format(
                    sql.Identifier(schema, name), sql.SQL(", ").join(sets)
                ),
                params,
            )
            done.append(f"masked {len(cols)} column(s) of {schema}.{name} in {cur.rowcount} rows")
    tables = {*by_table, *(tuple(t.split(".")) for t in plan.rules.subset)}
    for schema, name in sorted(tables):
        progress(f"vacuum full {schema}.{name}")
        conn.execute(sql.SQL("VACUUM (FULL, ANALYZE) {}").format(sql.Identifier(schema, name)))
    # ANALYZE left the statistics it replaced as dead rows of the catalog: rewritten too.
    conn.execute("VACUUM FULL pg_catalog.pg_statistic, pg_catalog.pg_statistic_ext_data")
    return done
