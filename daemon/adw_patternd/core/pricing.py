"""Token prices, used only where a result line reports no cost of its own (Claude Code),
and for every Codex CLI session (which reports none)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens. Cache writes come in two lifetimes (claude-session-store.md):
    ``cache_write`` is the 5-minute write (1.25x input), ``cache_write_1h`` the 1-hour one
    (2x input), which is what it is unless given."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    cache_write_1h: float | None = None

    def __post_init__(self):
        if self.cache_write_1h is None:
            object.__setattr__(self, "cache_write_1h", self.input * 2)


@dataclass(frozen=True)
class PriceRule:
    prefix: str  # matched against the model id, longest prefix first
    price: Price
    long_context: Price | None = None  # charged when input tokens exceed 200k
    # Matched whole (or with a -YYYY-MM-DD date after it), not as a prefix: OpenAI names a
    # newer, dearer model by adding to an older one's id (gpt-5 -> gpt-5.5, gpt-5-nano).
    exact: bool = False
    # Prices by prompt size (input, cache writes and reads of the one request), ascending:
    # (above, price) charges ``price`` when the prompt exceeds ``above`` tokens (Qwen's tiers).
    tiers: tuple[tuple[int, Price], ...] = ()


LONG_CONTEXT_TOKENS = 200_000

CLAUDE_PRICES: tuple[PriceRule, ...] = (
    # input, output, 5-minute cache write, cache read, 1-hour cache write
    PriceRule("claude-opus-4-1", Price(15, 75, 18.75, 1.50, 30)),
    PriceRule("claude-opus-4-", Price(5, 25, 6.25, 0.50, 10)),  # 4.5 and later 4.x
    PriceRule("claude-opus-4", Price(15, 75, 18.75, 1.50, 30)),
    PriceRule("opus", Price(5, 25, 6.25, 0.50, 10)),
    PriceRule("claude-sonnet-4-6", Price(3, 15, 3.75, 0.30, 6)),
    PriceRule("claude-sonnet-4", Price(3, 15, 3.75, 0.30, 6), Price(6, 22.50, 7.50, 0.60, 12)),
    PriceRule("sonnet", Price(3, 15, 3.75, 0.30, 6), Price(6, 22.50, 7.50, 0.60, 12)),
    PriceRule("claude-haiku-4-5", Price(1, 5, 1.25, 0.10, 2)),
    PriceRule("haiku", Price(1, 5, 1.25, 0.10, 2)),
    PriceRule("claude-3-haiku", Price(0.25, 1.25, 0.30, 0.03, 0.50)),
)

def _openai(prefix: str, input: float, cached: float, output: float) -> PriceRule:
    """An OpenAI model (USD per million tokens). Its input tokens include the cached ones,
    which the caller passes apart as cache_read; there is no cache write to pay for."""
    return PriceRule(prefix, Price(input, output, input, cached), exact=True)


# Codex CLI's models (../shared/docs/codex-sessions.md, section 9).
OPENAI_PRICES: tuple[PriceRule, ...] = (
    *(_openai(m, 1.25, 0.125, 10) for m in ("gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max")),
    _openai("gpt-5-mini", 0.25, 0.025, 2),
    *(_openai(m, 1.75, 0.175, 14) for m in ("gpt-5.2", "gpt-5.2-codex", "gpt-5.3-codex")),
    _openai("gpt-5.4", 2.50, 0.25, 15),
    _openai("gpt-5.4-mini", 0.75, 0.075, 4.50),
    _openai("gpt-5.5", 5, 0.50, 30),
)

K = 1024  # Model Studio's tiers are in K of 1,024 tokens (its 1M context is 1,048,576)


def _qwen(prefix: str, *tiers: tuple[int, float, float], cached: float = 0.2) -> PriceRule:
    """A Qwen model on Alibaba Cloud Model Studio: (prompt above, input, output) per tier, USD
    per million tokens. Cached input (implicit cache, what an OpenAI-compatible client gets)
    is ``cached`` of the input price (20%; the Qwen3.5 models 10%); an explicit cache write 125%."""
    prices = tuple((above, Price(i, o, i * 1.25, i * cached)) for above, i, o in tiers)
    return PriceRule(prefix, prices[0][1], tiers=prices[1:])


# Qwen Code's models: Alibaba Cloud Model Studio, international deployment (Singapore), pay as
# you go, https://www.alibabacloud.com/help/en/model-studio/model-pricing as of 2026-08-26 (the
# date models.dev's transcription of that page records, providers/alibaba/models/*.toml at
# anomalyco/models.dev 0654d77, read 2026-12-04; the page itself could not be fetched here).
# Corrected from it: qwen3-coder-480b's and qwen3.5-plus's higher tiers, the Qwen3.5 cache
# reads (10%). Thinking-mode output, dearer for qwen-plus and qwen-turbo, cannot be told
# apart in the logs: priced as non-thinking.
QWEN_PRICES: tuple[PriceRule, ...] = (
    _qwen("qwen3-coder-plus", (0, 1.0, 5.0), (32 * K, 1.8, 9.0), (128 * K, 3.0, 15.0), (256 * K, 6.0, 60.0)),
    _qwen("qwen3-coder-flash", (0, 0.3, 1.5), (32 * K, 0.5, 2.5), (128 * K, 0.8, 4.0), (256 * K, 1.6, 9.6)),
    _qwen("qwen3-coder-480b-a35b-instruct", (0, 1.5, 7.5), (32 * K, 2.7, 13.5), (128 * K, 4.5, 22.5),
          (256 * K, 9.0, 90.0)),
    _qwen("qwen3-max", (0, 1.2, 6.0), (32 * K, 2.4, 12.0), (128 * K, 3.0, 15.0)),
    _qwen("qwen-max", (0, 1.6, 6.4)),
    _qwen("qwen3.5-plus", (0, 0.4, 2.4), (256 * K, 0.5, 3.0), cached=0.1),
    _qwen("qwen3.5-flash", (0, 0.1, 0.4), cached=0.1),
    _qwen("qwen-plus", (0, 0.4, 1.2), (256 * K, 1.2, 3.6)),
    _qwen("qwen-flash", (0, 0.05, 0.4), (256 * K, 0.25, 2.0)),
    _qwen("qwen-turbo", (0, 0.05, 0.2)),
)


def _gemini(model: str, input: float, output: float, cached: float, long: tuple[float, float, float] | None = None):
    """A Gemini model (USD per million tokens, Google's standard paid tier). Its prompt tokens
    include the cached ones, passed apart as cache_read; output includes the thoughts; no
    cache write is billed per token (storage is billed by the hour, not here). ``long``: the
    (input, output, cached) prices of a prompt over 200k tokens. Matched whole: Google names a
    cheaper model by adding to a dearer one's id (gemini-2.5-flash -> gemini-2.5-flash-lite)."""
    over = Price(long[0], long[1], long[0], long[2]) if long else None
    return PriceRule(model, Price(input, output, input, cached), over, exact=True)


# Gemini CLI's models. Source: Google's price page (ai.google.dev/gemini-api/docs/pricing) as
# quoted by price listings of 2026 (search: docs/pages corpus): 2.5 Pro $1.25/$10 (cache
# $0.125), over 200k $2.50/$15 ($0.25); 2.5 Flash $0.30/$2.50 ($0.03); 2.5 Flash-Lite
# $0.10/$0.40 ($0.01); 3 and 3.1 Pro $2/$12 ($0.20), over 200k $4/$18 ($0.40); 3 Flash
# $0.50/$3 ($0.05); 3.1 Flash-Lite $0.25/$1.50 ($0.025); 3.5 Flash $1.50/$9 ($0.15, cache
# reads at 10% of input). Gemini CLI 0.61 also names gemini-3.8-flash and
# gemini-3.5-flash-lite, which no public price list had: they stay unpriced (one note) until
# a user prices them under `prices:`.
GEMINI_PRICES: tuple[PriceRule, ...] = (
    _gemini("gemini-2.5-pro", 1.25, 10, 0.125, (2.50, 15, 0.25)),
    _gemini("gemini-2.5-flash", 0.30, 2.50, 0.03),
    _gemini("gemini-2.5-flash-lite", 0.10, 0.40, 0.01),
    _gemini("gemini-2.0-flash", 0.10, 0.40, 0.025),
    *(_gemini(m, 2, 12, 0.20, (4, 18, 0.40)) for m in (
        "gemini-3-pro-preview", "gemini-3-pro", "gemini-3.1-pro-preview", "gemini-3.1-pro",
        "gemini-3.1-pro-preview-customtools")),
    *(_gemini(m, 0.50, 3, 0.05) for m in ("gemini-3-flash-preview", "gemini-3-flash")),
    *(_gemini(m, 0.25, 1.50, 0.025) for m in ("gemini-3.1-flash-lite-preview", "gemini-3.1-flash-lite")),
    _gemini("gemini-3.5-flash", 1.50, 9, 0.15),
)
DEFAULT_PRICES: tuple[PriceRule, ...] = CLAUDE_PRICES + OPENAI_PRICES + QWEN_PRICES + GEMINI_PRICES

_EXACT_KEY = re.compile(r"^(gpt-|codex-|o\d|gemini-)")
# A dated snapshot of a model: OpenAI's -YYYY-MM-DD, Google's -NNN and -preview-MM-YYYY.
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}|-\d{3}|-preview-\d{2}-\d{4}")


def exact_key(prefix: str) -> bool:
    """Whether a `prices:` key names an OpenAI or Gemini model, matched whole (see PriceRule.exact)."""
    return bool(_EXACT_KEY.match(prefix))


def _matches(rule: PriceRule, model: str) -> bool:
    if not model.startswith(rule.prefix):
        return False
    rest = model[len(rule.prefix):]
    return not rule.exact or not rest or bool(_DATE_SUFFIX.fullmatch(rest))


def find_price(model: str | None, rules: tuple[PriceRule, ...]) -> PriceRule | None:
    if not model:
        return None
    m = model.lower()
    best = None
    for rule in rules:
        if _matches(rule, m) and (best is None or len(rule.prefix) > len(best.prefix)):
            best = rule
    if best is not None and best.prefix == "claude-opus-4-" and m[len(best.prefix):].startswith("20"):
        # A dated id (claude-opus-4-20250514) is opus 4.0, priced like 4-1, not like 4.5.
        return next((r for r in rules if r.prefix == "claude-opus-4"), best)
    return best


def cost_nanos(model: str | None, input_tokens: int, output_tokens: int, cache_write: int, cache_read: int,
               rules: tuple[PriceRule, ...], cache_write_1h: int = 0) -> int | None:
    """Cost in nano-dollars, or None when no rule prices this model. ``cache_write`` is all
    cache writes; ``cache_write_1h`` how many of them were 1-hour writes (the rest: 5-minute)."""
    rule = find_price(model, rules)
    if rule is None:
        return None
    price = rule.price
    prompt = input_tokens + cache_write + cache_read
    if rule.long_context and prompt > LONG_CONTEXT_TOKENS:
        price = rule.long_context
    for above, tier in rule.tiers:
        if prompt > above:
            price = tier
    # USD per million tokens is 1,000 nano-dollars per token.
    write_1h = min(cache_write_1h, cache_write)
    usd_e6 = (input_tokens * price.input + output_tokens * price.output + (cache_write - write_1h) * price.cache_write
              + write_1h * price.cache_write_1h + cache_read * price.cache_read)
    return round(usd_e6 * 1000)
