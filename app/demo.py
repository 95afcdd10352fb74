"""Demo data: deterministic warehouses, locations, categories and items DEMO-000001 ...

Only the shape of the data lives here; app.cli's seed-demo writes it through the services.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

from app.services.items import ItemInput

WAREHOUSES = (("WH1", "一号仓库 Main warehouse"), ("WH2", "二号仓库 Overflow warehouse"))
# Location codes are <warehouse>-<zone>-<aisle>-<level>: WH1-A-01-01 ... WH1-C-04-04, WH2-A-01-01 ... WH2-B-03-03.
LAYOUT = {"WH1": ("ABC", 4, 4), "WH2": ("AB", 3, 3)}
CATEGORIES = ("紧固件 Fasteners", "电气 Electrical", "包装 Packaging", "工具 Tools", "劳保 Safety")
PRODUCTS = (
    ("螺丝钉", "Screw", 0, "pcs"),
    ("六角螺母", "Hex nut", 0, "pcs"),
    ("平垫片", "Flat washer", 0, "pcs"),
    ("铜芯电缆", "Copper cable", 1, "m"),
    ("空气开关", "Circuit breaker", 1, "pcs"),
    ("瓦楞纸箱", "Corrugated carton", 2, "pcs"),
    ("封箱胶带", "Packing tape", 2, "roll"),
    ("活动扳手", "Adjustable wrench", 3, "pcs"),
    ("不锈钢丝", "Stainless wire", 3, "kg"),
    ("防护手套", "Safety gloves", 4, "pair"),
)


def location_codes(warehouse: str) -> list[str]:
    zones, aisles, levels = LAYOUT[warehouse]
    return [
        f"{warehouse}-{zone}-{aisle:02d}-{level:02d}"
        for zone in zones
        for aisle in range(1, aisles + 1)
        for level in range(1, levels + 1)
    ]


def demo_sku(n: int) -> str:
    return f"DEMO-{n:06d}"


def ean13(n: int) -> str:
    """A valid EAN-13 in the 69x (China) range, unique per n."""
    body = f"69{n:010d}"
    checksum = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return body + str(checksum)


def demo_items(numbers: Iterable[int]) -> Iterator[ItemInput]:
    for n in numbers:
        zh, en, category, unit = PRODUCTS[n % len(PRODUCTS)]
        size = f"M{4 + n % 9}" if unit == "pcs" else f"#{n % 50 + 1}"
        yield ItemInput(
            sku=demo_sku(n),
            name=f"{zh} {size} {en} {n:06d}",
            barcode=ean13(n),
            unit=unit,
            category=CATEGORIES[category],
            reorder_point=Decimal(10 + n % 40),
            reorder_quantity=Decimal(100 + 10 * (n % 10)),
        )


def opening_stock(n: int) -> list[tuple[str, Decimal]]:
    """Where item n starts and how much: most items have stock, every tenth has none."""
    if n % 10 == 0:
        return []
    wh1, wh2 = location_codes("WH1"), location_codes("WH2")
    lines = [(wh1[n % len(wh1)], Decimal(20 + (n * 37) % 480))]
    if n % 3 == 0:
        lines.append((wh2[n % len(wh2)], Decimal(5 + (n * 11) % 95)))
    return lines
