"""The price table: AWS on-demand list prices per region, shipped or imported.

The shipped table (`aws_prices.json` beside this module) holds the prices as known when it
was written; `envplane prices import FILE` writes a refreshed one under ENVPLANE_HOME
(`prices/aws_prices.json`), which is used in preference. Both have the same shape.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envplane.cost.model import TableInfo
from envplane.errors import BadInput

SHIPPED = Path(__file__).with_name("aws_prices.json")
IMPORTED_NAME = Path("prices") / "aws_prices.json"
Family = Literal["ec2", "rds_postgresql", "elasticache"]
FAMILIES: tuple[Family, ...] = ("ec2", "rds_postgresql", "elasticache")
Price = Decimal


class RegionPrices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ec2: dict[str, Price] = {}  # instance type -> USD per hour, Linux, shared tenancy
    rds_postgresql: dict[str, Price] = {}  # instance class -> per hour, Single-AZ
    elasticache: dict[str, Price] = {}  # node type -> per hour
    eks_cluster_hour: Price | None = None
    nat_gateway_hour: Price | None = None
    ebs_gp3_gb_month: Price | None = None
    rds_storage_gb_month: Price | None = None  # gp3, Single-AZ
    s3_standard_gb_month: Price | None = None
    kms_key_month: Price | None = None


class Assumptions(BaseModel):
    """Sizes the matrix does not state, written in the table so every estimate says them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_volume_gb: int = Field(20, ge=0)
    db_storage_gb: int = Field(20, ge=0)
    s3_gb: int = Field(50, ge=0)
    why: str = ""


class TableDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    currency: Literal["USD"] = "USD"
    as_of: str
    source: str
    hours_per_month: Literal[730] = 730
    notes: list[str] = []
    assumptions: Assumptions = Assumptions()
    regions: dict[str, RegionPrices]


class PriceTable:
    """A checked table and where it came from."""

    def __init__(self, doc: TableDoc, info: TableInfo) -> None:
        self.doc = doc
        self.info = info
        self.assumptions = doc.assumptions

    def region(self, name: str) -> RegionPrices | None:
        return self.doc.regions.get(name)

    def dump(self) -> dict[str, Any]:
        return self.doc.model_dump(mode="json", exclude_none=True)


def parse_table(text: str, path: Path, origin: Literal["shipped", "imported"]) -> PriceTable:
    """A table from its JSON text; anything wrong is BadInput naming the file and key."""
    try:
        raw = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, InvalidOperation) as exc:
        raise BadInput(
            f"{path}: not a price table: {exc}",
            hint="re-import it with `envplane prices import FILE`, or delete it to use the "
            "shipped table",
        ) from None
    if isinstance(raw, dict):
        for key in ("format", "hours_per_month"):
            if isinstance(raw.get(key), Decimal):
                raw[key] = int(raw[key])
        if isinstance(raw.get("assumptions"), dict):
            raw["assumptions"] = {
                k: int(v) if isinstance(v, Decimal) else v for k, v in raw["assumptions"].items()
            }
    try:
        doc = TableDoc.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise BadInput(
            f"{path}: price table key {where}: {first['msg']}",
            hint="re-import it with `envplane prices import FILE`, or delete it to use the "
            "shipped table",
        ) from None
    info = TableInfo(origin=origin, path=str(path), as_of=doc.as_of, source=doc.source)
    return PriceTable(doc, info)


_cache: dict[tuple[str, int, int], PriceTable] = {}


def _read(path: Path, origin: Literal["shipped", "imported"]) -> PriceTable:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    table = _cache.get(key)
    if table is None:
        table = parse_table(path.read_text(encoding="utf-8"), path, origin)
        _cache.clear()  # one table at a time is all a process uses
        _cache[key] = table
    return table


def imported_path(home: Path) -> Path:
    return home / IMPORTED_NAME


def load_table(home: Path | None = None) -> PriceTable:
    """The imported table under `home` when there is one, else the shipped one."""
    if home is not None:
        path = imported_path(home)
        if path.is_file():
            return _read(path, "imported")
    return _read(SHIPPED, "shipped")


def shipped_table() -> PriceTable:
    return _read(SHIPPED, "shipped")


def write_table(home: Path, doc: TableDoc) -> Path:
    """Write an imported table atomically (a reader never sees half a file)."""
    path = imported_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc.model_dump(mode="json", exclude_none=True), indent=1) + "\n")
    os.replace(tmp, path)
    return path
