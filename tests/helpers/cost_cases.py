"""One table of cost cases, computed by hand, that the Python formula and the SQL
repricing view must both reproduce (tests/pricing/test_cost_formula.py).

Prices are USD per million tokens, from an override file (so genai-prices releases
cannot move them); each expected amount is tokens x rate written out in the comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otel_llmcost.pricing import Usage

PRICES_YAML = """\
models:
  - model: case-text           # no cache or reasoning prices: they fall back to input / output
    input_mtok: 2
    output_mtok: 8
  - model: case-cache
    input_mtok: 3
    output_mtok: 15
    cache_read_mtok: 0.3
    cache_write_mtok: 3.75
    cache_write_1h_mtok: 6
  - model: case-reasoning
    input_mtok: 1
    output_mtok: 4
    output_reasoning_mtok: 6
  - model: case-audio
    input_mtok: 2.5
    output_mtok: 10
    cache_read_mtok: 1.25
    input_audio_mtok: 40
    cache_audio_read_mtok: 2.5
    output_audio_mtok: 80
"""


@dataclass(frozen=True)
class CostCase:
    name: str
    model: str
    usage: Usage = field(compare=False)
    total: float
    parts: dict[str, float]  # Cost attribute -> USD


CASES = (
    CostCase(
        "uncached input and output",
        "case-text",
        Usage(input_tokens=1000, output_tokens=500),
        total=0.006,
        parts={"input": 1000 * 2 / 1e6, "output": 500 * 8 / 1e6, "cache_read": 0.0, "cache_write": 0.0},
    ),
    CostCase(
        "cache reads with no read price cost the input price",
        "case-text",
        Usage(input_tokens=1000, cache_read_tokens=400),
        total=0.002,
        parts={"input": 600 * 2 / 1e6, "cache_read": 400 * 2 / 1e6, "output": 0.0},
    ),
    CostCase(
        "reads, 5-minute and 1-hour writes",
        "case-cache",
        Usage(
            input_tokens=10_000,  # 2,000 uncached + 5,000 read + 3,000 written (1,000 of them for 1 hour)
            cache_read_tokens=5000,
            cache_write_tokens=3000,
            cache_write_1h_tokens=1000,
            output_tokens=200,
        ),
        total=0.024,
        parts={
            "input": 2000 * 3 / 1e6,
            "cache_read": 5000 * 0.3 / 1e6,
            "cache_write": (2000 * 3.75 + 1000 * 6) / 1e6,
            "output": 200 * 15 / 1e6,
        },
    ),
    CostCase(
        "reasoning tokens at their own price",
        "case-reasoning",
        Usage(input_tokens=100, output_tokens=1000, reasoning_tokens=600),
        total=0.0053,
        parts={"input": 100 * 1 / 1e6, "output": (400 * 4 + 600 * 6) / 1e6},
    ),
    CostCase(
        "audio tokens at the audio prices, the rest at text prices",
        "case-audio",
        Usage(
            input_tokens=2000,  # 300 read from cache (100 of them audio); 500 audio in all
            cache_read_tokens=300,
            output_tokens=100,  # 40 of them audio
            input_audio_tokens=500,
            cache_audio_read_tokens=100,
            output_audio_tokens=40,
        ),
        total=0.02355,
        parts={
            "input": (400 * 40 + 1300 * 2.5) / 1e6,
            "cache_read": (100 * 2.5 + 200 * 1.25) / 1e6,
            "output": (40 * 80 + 60 * 10) / 1e6,
        },
    ),
)
