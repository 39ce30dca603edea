"""`envplane prices import FILE`: refresh the price table from an AWS Price List offer file.

The bulk format (one file per service, optionally per region): `offerCode`, `version`,
`publicationDate`, `products` by SKU (`productFamily`, `attributes`), then
`terms.OnDemand[sku][offerTermCode].priceDimensions[..].pricePerUnit.USD`. Files are read
as a stream (jsonstream), so a multi-gigabyte AmazonEC2 file is fine; only the products
the table has a place for are kept. Prices found replace the table's; the rest stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from envplane.cost.jsonstream import JsonShapeError, Reader
from envplane.cost.prices import PriceTable, RegionPrices, TableDoc
from envplane.errors import BadInput

OFFERS = ("AmazonEC2", "AmazonRDS", "AmazonElastiCache")
# Older offer files name regions only by `location`.
LOCATIONS = {
    "US East (N. Virginia)": "us-east-1", "US East (Ohio)": "us-east-2",
    "US West (N. California)": "us-west-1", "US West (Oregon)": "us-west-2",
    "EU (Ireland)": "eu-west-1", "EU (Frankfurt)": "eu-central-1", "EU (London)": "eu-west-2",
    "Europe (Ireland)": "eu-west-1", "Europe (Frankfurt)": "eu-central-1",
    "Asia Pacific (Tokyo)": "ap-northeast-1", "Asia Pacific (Singapore)": "ap-southeast-1",
    "Asia Pacific (Sydney)": "ap-southeast-2", "Canada (Central)": "ca-central-1",
}  # fmt: skip
# (field of RegionPrices, key in it or None for a scalar, unit the price is in)
Slot = tuple[str, str | None, str]


@dataclass
class Imported:
    offer: str
    version: str
    published: str
    prices: dict[tuple[str, str, str | None], Decimal] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _region, slot, _key in self.prices:
            out[slot] = out.get(slot, 0) + 1
        return out


def _slot(offer: str, family: str, a: dict[str, Any]) -> Slot | None:
    """Where a product's on-demand price goes in the table, or None if it has no place."""
    itype = a.get("instanceType")
    if offer == "AmazonEC2":
        if family == "Compute Instance" and isinstance(itype, str):
            linux = a.get("operatingSystem") == "Linux" and a.get("tenancy") == "Shared"
            plain = a.get("preInstalledSw", "NA") == "NA"
            used = a.get("capacitystatus", "Used") == "Used"
            license_ok = a.get("licenseModel", "No License required") == "No License required"
            return ("ec2", itype, "Hrs") if linux and plain and used and license_ok else None
        if family == "NAT Gateway" and str(a.get("usagetype", "")).endswith("NatGateway-Hours"):
            return ("nat_gateway_hour", None, "Hrs")
        if family == "Storage" and a.get("volumeApiName") == "gp3":
            return ("ebs_gp3_gb_month", None, "GB-Mo")
        return None
    single = a.get("deploymentOption") == "Single-AZ"
    if offer == "AmazonRDS":
        postgres = a.get("databaseEngine") == "PostgreSQL"
        if family == "Database Instance" and isinstance(itype, str) and postgres and single:
            return ("rds_postgresql", itype, "Hrs")
        if (
            family == "Database Storage"
            and single
            and a.get("volumeType") == "General Purpose-GP3"
            and a.get("databaseEngine") in ("PostgreSQL", "Any", None)
        ):
            return ("rds_storage_gb_month", None, "GB-Mo")
        return None
    if family == "Cache Instance" and isinstance(itype, str) and a.get("cacheEngine") == "Redis":
        return ("elasticache", itype, "Hrs")
    return None


def _region(a: dict[str, Any]) -> str | None:
    code = a.get("regionCode")
    if isinstance(code, str):
        return code
    location = a.get("location")
    return LOCATIONS.get(location) if isinstance(location, str) else None


def _price(path: Path, sku: str, terms: Any, unit: str) -> Decimal | None:
    """The SKU's on-demand price per `unit` (the first dimension in that unit)."""
    if not isinstance(terms, dict):
        raise BadInput(f"{path}: terms.OnDemand.{sku} is not an object")
    for term in terms.values():
        dims = term.get("priceDimensions") if isinstance(term, dict) else None
        if not isinstance(dims, dict):
            raise BadInput(f"{path}: terms.OnDemand.{sku}: a term without priceDimensions")
        for dim in dims.values():
            if not isinstance(dim, dict) or dim.get("unit") != unit:
                continue
            usd = (dim.get("pricePerUnit") or {}).get("USD")
            try:
                value = Decimal(str(usd))
            except InvalidOperation:
                raise BadInput(
                    f"{path}: terms.OnDemand.{sku}: pricePerUnit.USD {usd!r} is not a number"
                ) from None
            if not value.is_finite() or value < 0:
                raise BadInput(f"{path}: terms.OnDemand.{sku}: price {usd!r} is not a price")
            if value > 0:
                return value.normalize()
    return None


def read_offer(path: Path) -> Imported:
    """Read an offer file; BadInput (exit 2) naming what is wrong with it."""
    try:
        stream = path.open(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with stream:
            return _walk(path, Reader(stream))
    except JsonShapeError as exc:
        raise BadInput(f"{path}: not an AWS Price List offer file: {exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text, so not an offer file") from None


def _walk(path: Path, r: Reader) -> Imported:
    head: dict[str, Any] = {}
    wanted: dict[str, tuple[str, Slot]] = {}  # sku -> (region, slot)
    on_demand: dict[str, Any] = {}  # terms read before products (not AWS's order, but valid)
    seen_products = seen_terms = False
    for key in r.members():
        if key == "products":
            _need_offer(path, head)
            seen_products = True
            for sku in r.members():
                product = r.value()
                if not isinstance(product, dict) or not isinstance(product.get("attributes"), dict):
                    raise BadInput(f"{path}: products.{sku} has no attributes object")
                attrs = product["attributes"]
                slot = _slot(head["offerCode"], str(product.get("productFamily", "")), attrs)
                region = _region(attrs)
                if slot is not None and region is not None:
                    wanted[sku] = (region, slot)
        elif key == "terms":
            _need_offer(path, head)
            seen_terms = True
            for kind in r.members():
                if kind != "OnDemand":
                    r.skip(1)
                    continue
                for sku in r.members():
                    terms = r.value()
                    if seen_products:
                        if sku in wanted:
                            on_demand[sku] = terms
                    else:
                        on_demand[sku] = terms
        elif key in ("offerCode", "version", "publicationDate", "formatVersion"):
            head[key] = r.value()
        else:
            r.skip()
    if r.peek() != "":
        raise BadInput(f"{path}: text after the offer file's closing brace")
    _need_offer(path, head)
    if not seen_products or not seen_terms:
        missing = "products" if not seen_products else "terms"
        raise BadInput(f"{path}: no `{missing}` in the offer file")
    out = Imported(
        offer=head["offerCode"],
        version=str(head.get("version", "")),
        published=str(head.get("publicationDate", "")),
    )
    for sku, (region, (name, item, unit)) in wanted.items():
        if sku not in on_demand:
            continue
        price = _price(path, sku, on_demand[sku], unit)
        if price is not None:
            out.prices[(region, name, item)] = price
    if not out.prices:
        raise BadInput(
            f"{path}: no on-demand price the table uses was found in this {out.offer} file",
            hint="the table takes Linux shared-tenancy EC2 instances, NAT gateways and gp3 "
            "volumes, RDS PostgreSQL Single-AZ instances and gp3 storage, ElastiCache Redis "
            "nodes",
        )
    return out


def _need_offer(path: Path, head: dict[str, Any]) -> None:
    code = head.get("offerCode")
    if code is None:
        raise BadInput(
            f"{path}: no `offerCode` before the products: not an AWS Price List offer file",
            hint="download one from https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/"
            "index.json (AmazonEC2, AmazonRDS or AmazonElastiCache)",
        )
    if code not in OFFERS:
        raise BadInput(
            f"{path}: offerCode {code!r} is not one the table uses ({', '.join(OFFERS)})"
        )


def merge(table: PriceTable, imported: Imported, path: Path) -> TableDoc:
    """The table with the imported prices in place; its header says where they came from."""
    regions = {name: r.model_dump() for name, r in table.doc.regions.items()}
    for (region, slot, key), price in imported.prices.items():
        prices = regions.setdefault(region, RegionPrices().model_dump())
        if key is None:
            prices[slot] = price
        else:
            prices[slot] = {**prices[slot], key: price}
    today = datetime.now(UTC).date().isoformat()
    published = imported.published[:10] or today
    source = (
        f"{imported.offer} prices from its AWS Price List offer file (version "
        f"{imported.version or '?'}, published {imported.published or '?'}), imported "
        f"{today} from {path.name}; everything else: {table.doc.source}"
    )
    return TableDoc(
        as_of=published,
        source=source,
        notes=table.doc.notes,
        assumptions=table.doc.assumptions,
        regions={name: RegionPrices.model_validate(r) for name, r in regions.items()},
    )
