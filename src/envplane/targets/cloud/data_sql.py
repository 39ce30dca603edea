"""A SQL session with an RDS instance through the driver (psycopg, TLS, the master user whose
password RDS keeps in Secrets Manager): the database renamed after a clone or a restore from
another environment's snapshot, and masking run in the copy - always on the destination's
instance, never on the source's (the source is only read, for its schema).

The instance is reachable only from inside its VPC: run envplane where it can reach it (a
host or a pod in the VPC). Statements reach SQL quoted by psycopg.sql; the salt is a query
parameter; no password is printed or logged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from envplane.errors import BadInput, OperationFailed
from envplane.matrix.models import DataRules
from envplane.targets.cloud import aws
from envplane.targets.cloud.data_snapshots import db_instance
from envplane.targets.datacaps import MaskingPlan

TEXT = ("text", "character varying", "character", "citext")
INTS = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}


def connect(region: str, instance: str, dbname: str) -> Any:
    """An autocommit connection to `dbname` on the instance, as its master user."""
    import psycopg

    found = db_instance(region, instance)
    if found is None:
        raise OperationFailed(f"RDS instance {instance} does not exist")
    secret = (found.get("MasterUserSecret") or {}).get("SecretArn")
    if not secret:
        raise OperationFailed(
            f"RDS instance {instance} keeps no master password in Secrets Manager"
        )
    user = aws.secret_value(region, str(secret), "username")
    password = aws.secret_value(region, str(secret), "password")
    endpoint = found.get("Endpoint") or {}
    try:
        return psycopg.connect(
            host=str(endpoint.get("Address", "")), port=int(endpoint.get("Port") or 5432),
            dbname=dbname, user=user, password=password, sslmode="require",
            connect_timeout=20, autocommit=True,
        )  # fmt: skip
    except psycopg.Error as exc:
        raise OperationFailed(
            f"cannot open a SQL session with RDS instance {instance}: {type(exc).__name__}",
            hint="the instance is reachable only from inside its VPC: run envplane there",
        ) from None


def rename_database(region: str, instance: str, old: str, new: str) -> None:
    """After a restore from another environment's snapshot: its database takes our name."""
    from psycopg import sql

    with connect(region, instance, "postgres") as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        if new in names or old not in names:
            return  # renamed already (a resumed step), or nothing to rename
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(old), sql.Identifier(new)))  # fmt: skip


def check(region: str, instance: str, dbname: str, rules: DataRules, source: str) -> MaskingPlan:
    """The rules matched with the source's schema, read-only."""
    with connect(region, instance, dbname) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type, character_maximum_length, "
            "is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    columns = {f"{r[0]}.{r[1]}.{r[2]}": r for r in rows}
    tables = {c.rsplit(".", 1)[0] for c in columns}
    where = f"environments.{source}.data"
    for table in rules.subset:
        if table not in tables:
            raise BadInput(f"{where}.subset: no table {table} in {source}'s database")
    matched: dict[str, dict[str, Any]] = {}
    for path, rule in rules.masking.items():
        col = columns.get(path)
        if col is None:
            raise BadInput(f"{where}.masking: no column {path} in {source}'s database")
        kind, nullable = str(col[3]), bool(col[5])
        if (rule is None or rule == "null") and not nullable:
            raise BadInput(f"{where}.masking.{path}: null on a NOT NULL column; use hash or redact")
        if rule == "redact" and kind not in TEXT:
            raise BadInput(f"{where}.masking.{path}: redact needs a text column, not {kind}")
        if rule == "hash" and kind not in (*TEXT, *INTS, "uuid"):
            raise BadInput(f"{where}.masking.{path}: hash works on text, integer and uuid columns")
        matched[path] = {"schema": col[0], "table": col[1], "name": col[2], "type": kind,
                         "max_length": col[4]}  # fmt: skip
    return MaskingPlan(source, rules, matched)


def _expression(col: dict[str, Any], rule: str | None) -> tuple[Any, int]:
    from psycopg import sql

    ident, limit = sql.Identifier(col["name"]), col.get("max_length")
    if rule is None or rule == "null":
        return sql.SQL("NULL"), 0
    if rule in ("redact",) or rule != "hash":
        text = ("REDACTED"[:limit] if limit else "REDACTED") if rule == "redact" else rule
        return sql.SQL("CASE WHEN {c} IS NULL THEN NULL ELSE {v} END").format(
            c=ident, v=sql.Literal(text)), 0  # fmt: skip
    digest = sql.SQL("encode(sha256(convert_to(%s::text || {c}::text, 'UTF8')), 'hex')").format(
        c=ident
    )
    if col["type"] in INTS:
        return sql.SQL("(('x' || left({d}, 15))::bit(60)::bigint % {m})").format(
            d=digest, m=sql.Literal(INTS[col["type"]])), 1  # fmt: skip
    if col["type"] == "uuid":
        return sql.SQL("(left({d}, 32))::uuid").format(d=digest), 1
    if limit:
        return sql.SQL("left({d}, {n})").format(d=digest, n=sql.Literal(limit)), 1
    return digest, 1


def apply(
    region: str,
    instance: str,
    dbname: str,
    plan: MaskingPlan,
    salt: str,
    progress: Callable[[str], None],
) -> list[str]:
    """Subset and mask in the destination's database, one transaction, then VACUUM FULL."""
    from psycopg import sql

    done: list[str] = []
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for col in plan.details.values():
        by_table[(col["schema"], col["table"])].append(col)
    with connect(region, instance, dbname) as conn:
        with conn.transaction():
            for table, clause in plan.rules.subset.items():
                schema, name = table.split(".")
                cur = conn.execute(sql.SQL("DELETE FROM {} WHERE ({}) IS NOT TRUE").format(
                    sql.Identifier(schema, name), sql.SQL(clause)))  # fmt: skip
                done.append(f"subset {table}: {cur.rowcount} rows removed")
            for (schema, name), cols in sorted(by_table.items()):
                sets, params = [], []
                for col in cols:
                    expr, salts = _expression(
                        col, plan.rules.masking[f"{schema}.{name}.{col['name']}"]
                    )
                    sets.append(sql.SQL("{} = {}").format(sql.Identifier(col["name"]), expr))
                    params += [salt] * salts
                cur = conn.execute(sql.SQL("UPDATE {} SET {}").format(
                    sql.Identifier(schema, name), sql.SQL(", ").join(sets)), params)  # fmt: skip
                done.append(
                    f"masked {len(cols)} column(s) of {schema}.{name} in {cur.rowcount} rows"
                )
        for schema, name in sorted({*by_table, *(tuple(t.split(".")) for t in plan.rules.subset)}):
            progress(f"vacuum full {schema}.{name}")
            conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(schema, name)))
    return done
