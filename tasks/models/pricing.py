"""What a model turn cost, from the ``genai-prices`` package's bundled price list (no network)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .base import Usage

if TYPE_CHECKING:
    from tasks.config.schema import ModelPrices

PER_MILLION = 1_000_000

log = logging.getLogger(__name__)


def turn_cost(model: str, usage: Usage, *, provider_id: str = "anthropic") -> float | None:
    """The price in USD of one turn, or None when the model's price is unknown (never raises).

    Cache reads and cache writes (5-minute) are priced at their own rates. Anthropic reports
    ``input_tokens`` *excluding* cached tokens, while genai-prices expects the total input with
    the cached parts as subsets of it, hence the sum.
    """
    try:
        # 0.2 s to import, and a config with model.prices never needs it.
        from genai_prices import Usage as PriceUsage  # noqa: PLC0415
        from genai_prices import calc_price  # noqa: PLC0415

        price_usage = PriceUsage(
            input_tokens=usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens,
            cache_write_tokens=usage.cache_creation_input_tokens,
        )
        return float(calc_price(price_usage, model, provider_id=provider_id).total_price)
    except LookupError:
        log.debug("no price known for model %r; its cost is not recorded", model)
        return None
    except Exception as exc:  # noqa: BLE001 - a price estimate must never fail a run
        log.warning("could not price model %r: %s: %s", model, type(exc).__name__, exc)
        return None


def configured_cost(prices: ModelPrices, usage: Usage) -> float:
    """The price in USD of one turn at the config's ``model.prices``; cache tokens at the input
    price unless their own is given."""
    cache_read = prices.input if prices.cache_read is None else prices.cache_read
    cache_write = prices.input if prices.cache_write is None else prices.cache_write
    return (usage.input_tokens * prices.input + usage.output_tokens * prices.output
            + usage.cache_read_input_tokens * cache_read
            + usage.cache_creation_input_tokens * cache_write) / PER_MILLION
