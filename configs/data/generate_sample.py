"""Generate the bundled sample dataset: two years of daily retail sales (synthetic, CC0).

Deterministic (fixed seed), so the shipped CSV and the demo's replayed transcript stay in step.
Run: python configs/data/generate_sample.py
"""

from __future__ import annotations

import csv
import math
import random
from datetime import date, timedelta
from pathlib import Path

REGIONS = {"north": 1.0, "south": 0.8, "east": 1.25, "west": 0.95}
PRODUCTS = {"espresso": 3.2, "latte": 4.5, "tea": 2.8, "pastry": 3.9, "sandwich": 7.5}
START, DAYS = date(2024, 1, 1), 731


def rows(seed: int = 7):
    rng = random.Random(seed)
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        weekly = 1.25 if day.weekday() >= 5 else 1.0
        seasonal = 1 + 0.18 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365)
        trend = 1 + 0.25 * offset / DAYS
        for region, region_factor in REGIONS.items():
            # The east region's stores open a second café in April 2025: a step change to find.
            step = 1.3 if region == "east" and day >= date(2025, 4, 1) else 1.0
            for product, price in PRODUCTS.items():
                mean = 40 * region_factor * weekly * seasonal * trend * step * (1.4 if product == "latte" else 1)
                units = max(0, int(rng.gauss(mean, mean * 0.15)))
                promo = rng.random() < 0.05
                unit_price = round(price * (0.8 if promo else 1.0), 2)
                yield [day.isoformat(), region, product, units, unit_price, round(units * unit_price, 2), promo]


def main() -> None:
    out = Path(__file__).with_name("retail_sales.csv")
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "region", "product", "units", "unit_price", "revenue", "promo"])
        writer.writerows(rows())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
