"""Shared pieces of the budget tests (no tests here): exact prices, a slow fake provider, a frozen clock."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otel_llmcost.budgets import BudgetConfig, Budgets
from otel_llmcost.demo.fakes import FakeLLMServer
from otel_llmcost.pricing import Pricer

# USD per million tokens: round numbers so that costs are easy to reason about.
PRICES = {
    "models": [
        {"match": "gpt-4o-mini*", "input_mtok": 1, "output_mtok": 2},
        {"match": "gpt-4o*", "input_mtok": 10, "output_mtok": 20},
    ]
}
MESSAGES = [{"role": "user", "content": "hi"}]
# "hi" with max_tokens=20 on gpt-4o-mini: estimate 8 prompt tokens (tiktoken, with the chat
# overhead) + 20 output = 48e-6 USD; the fake bills 7 + 7 tokens = 21e-6 USD.
ESTIMATE_MINI = 48e-6
ACTUAL_MINI = 21e-6
ESTIMATE_4O = 480e-6
ACTUAL_4O = 210e-6


def pricer(tmp_path: Path) -> Pricer:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(PRICES))
    return Pricer(overrides_path=path)


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 6, 11, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def budgets(config: dict[str, Any], tmp_path: Path, *, store: Any = None, clock: Any = None) -> Budgets:
    return Budgets(BudgetConfig.from_dict(config), store=store, pricer=pricer(tmp_path), clock=clock)


class SlowFake:
    """The fake provider behind a delay, so that concurrent calls really overlap."""

    def __init__(self, fake: FakeLLMServer, delay_s: float = 0.05) -> None:
        self.fake = fake
        self.delay_s = delay_s

    def sync_client(self, **kwargs: Any) -> Any:
        import httpx2
        import openai

        def handler(request: Any) -> Any:
            time.sleep(self.delay_s)
            return self.fake(request)

        return openai.OpenAI(
            base_url="https://api.openai.com/v1",
            api_key="sk-fake",
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
            **kwargs,
        )

    def async_client(self, **kwargs: Any) -> Any:
        import httpx2
        import openai

        async def handler(request: Any) -> Any:
            await asyncio.sleep(self.delay_s)
            return self.fake(request)

        return openai.AsyncOpenAI(
            base_url="https://api.openai.com/v1",
            api_key="sk-fake",
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
            **kwargs,
        )
