"""Token prices, used only where a result line reports no cost of its own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float


@dataclass(frozen=True)
class PriceRule:
    prefix: str  # matched against the model id, longest prefix first
    price: Price
    long_context: Price | None = None  # charged when input tokens exceed 200k


LONG_CONTEXT_TOKENS = 200_000

DEFAULT_PRICES: tuple[PriceRule, ...] = (
    PriceRule("claude-opus-4-1", Price(15, 75, 18.75, 1.50)),
    PriceRule("claude-opus-4-", Price(5, 25, 6.25, 0.50)),  # 4.5 and later 4.x
    PriceRule("claude-opus-4", Price(15, 75, 18.75, 1.50)),
    PriceRule("opus", Price(5, 25, 6.25, 0.50)),
    PriceRule("claude-sonnet-4-6", Price(3, 15, 3.75, 0.30)),
    PriceRule("claude-sonnet-4", Price(3, 15, 3.75, 0.30), Price(6, 22.50, 7.50, 0.60)),
    PriceRule("sonnet", Price(3, 15, 3.75, 0.30), Price(6, 22.50, 7.50, 0.60)),
    PriceRule("claude-haiku-4-5", Price(1, 5, 1.25, 0.10)),
    PriceRule("haiku", Price(1, 5, 1.25, 0.10)),
    PriceRule("claude-3-haiku", Price(0.25, 1.25, 0.30, 0.03)),
)

def find_price(model: str | None, rules: tuple[PriceRule, ...]) -> PriceRule | None:
    if not model:
        return None
    m = model.lower()
    best = None
    for rule in rules:
        if m.startswith(rule.prefix) and (best is None or len(rule.prefix) > len(best.prefix)):
            best = rule
    if best is not None and best.prefix == "claude-opus-4-" and m[len(best.prefix):].startswith("20"):
        # A dated id (claude-opus-4-20250514) is opus 4.0, priced like 4-1, not like 4.5.
        return next((r for r in rules if r.prefix == "claude-opus-4"), best)
    return best


def cost_nanos(model: str | None, input_tokens: int, output_tokens: int, cache_write: int, cache_read: int,
               rules: tuple[PriceRule, ...]) -> int | None:
    """Cost in nano-dollars, or None when no rule prices this model."""
    rule = find_price(model, rules)
    if rule is None:
        return None
    price = rule.price
    if rule.long_context and input_tokens + cache_write + cache_read > LONG_CONTEXT_TOKENS:
        price = rule.long_context
    # USD per million tokens is 1,000 nano-dollars per token.
    usd_e6 = (input_tokens * price.input + output_tokens * price.output
              + cache_write * price.cache_write + cache_read * price.cache_read)
    return round(usd_e6 * 1000)
