"""``otel-llmcost demo``: a realistic LLM workload, no keys, no network, no servers.

The REAL openai and anthropic SDKs talk to the in-process fake provider
(:mod:`otel_llmcost.demo.fakes`) with the instrumentation on; spans go through the
``llmcost`` exporter into an embedded ClickHouse (chdb) database, and the report
is read back from its views. Nothing in the report is computed by the demo itself.

To give the anomaly view the history it needs (7 days), the workload is replayed
for each of the last 15 days with the span clock shifted back by whole days
(:class:`DayShift`); everything else about those calls is real. Today's traffic
adds what a team would want to catch: a throttled burst, failures, a cache that
never pays back, a prompt prefix that is never cached, a cost spike on one
endpoint, and the app's own per-user limiter refusing a free-tier user on
``POST /chat`` (decisions recorded with ``record_limiter_decision``, today only:
event timestamps are not shifted back with the spans). ``POST /search`` declares its
retrieved passages with ``llmcost.evidence`` and records which ones each answer cited.
``POST /summarize`` goes through an OpenRouter-style gateway that returns the cost it
billed, and after the run the catalogue is synced with a price for the fine-tune that was
unpriced when it was called (``otel-llmcost prices sync``), so the repricing and
reported-cost reports have something to say.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

DAY_NS = 86_400 * 1_000_000_000
HISTORY_DAYS = 15
SERVICE_NAME = "llmcost-demo"

# ~1,120 tokens of stable instructions (tiktoken o200k; ~1,360 by the fake provider's 4
# characters a token): over the 1,024-token minimum that OpenAI and Anthropic cache.
LONG_SYSTEM = ("You are the support assistant of Acme Cloud. Follow the policy below exactly. " * 70).strip()
POLICY_DOC = ("Refund policy section: customers on annual plans may request a prorated refund. " * 60).strip()
# POLICY_DOC as the six retrieved passages POST /search declares as evidence (llmcost.evidence).
_SENTENCES = POLICY_DOC.split(". ")
POLICY_SECTIONS = {f"policy-{n}": ". ".join(_SENTENCES[n * 10 : n * 10 + 10]) for n in range(6)}


# The gateway's models: (model, its billed cost over our price, billed USD when we have no price).
# It agrees with us on gpt-4o-mini, adds 5% on claude, and bills a model no catalogue knows.
GATEWAY_URL = "https://openrouter.ai/api/v1"
GATEWAY_MODELS = (
    ("openai/gpt-4o-mini", 1.0, 0.0),
    ("anthropic/claude-3.5-haiku", 1.05, 0.0),
    ("acme/router-special-1", 1.0, 0.0006),
)
# The demo's own price file: the fine-tune the demo calls had no price when the calls were made;
# the negotiated price below is loaded with `prices sync` after the run, which reprices them.
DEMO_PRICES = """\
models:
  - model: acme-finetune-7b
    provider: openai
    input_mtok: 0.40
    output_mtok: 1.60
"""


class DayShift(SpanProcessor):
    """Moves span timestamps back by ``days`` whole days (history replay only)."""

    def __init__(self) -> None:
        self.days = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.days:
            span._start_time -= self.days * DAY_NS

    def on_end(self, span: Any) -> None:
        if self.days and span._end_time is not None:
            span._end_time -= self.days * DAY_NS


@dataclass
class DemoResult:
    dsn: str
    database: str
    calls: int
    days: int
    prices_file: Path | None = None


# The SDKs the workload drives (the fakes answer them), and how to install them from a checkout.
DEMO_SDKS = ("openai", "anthropic")
DEMO_INSTALL = 'pip install -e ".[all]" in the otel-llmcost checkout'


def missing_sdks() -> list[str]:
    """The SDKs of :data:`DEMO_SDKS` that are not installed (checked without importing them)."""
    missing = []
    for name in DEMO_SDKS:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def demo_dsn(data_dir: Path) -> str:
    return f"chdb://{data_dir / 'demo' / 'chdb'}"


def run_demo(
    dsn: str,
    *,
    database: str = "otel",
    days: int = HISTORY_DAYS,
    seed: int = 7,
    progress: Callable[[str, int, int], None] | None = None,
    fresh_path: Path | None = None,
) -> DemoResult:
    """Run the workload into ``dsn``; ``fresh_path`` (a chdb directory) is wiped first."""
    from .. import signals as llmcost
    from ..exporter import LLMCostSpanExporter
    from ..instrumentation import LLMCostInstrumentor
    from ..pricing import Pricer, Usage
    from .fakes import FakeLLMServer, Reply, anthropic_client, openai_client

    if fresh_path is not None and fresh_path.exists():
        shutil.rmtree(fresh_path)
    rng = random.Random(seed)
    cite_rng = random.Random(seed + 1)  # its own sequence: the rest of the workload stays as it was
    shift = DayShift()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(shift)
    # The demo is a CLI command: it ingests in-process when the workload ends, no ingester needed.
    exporter = LLMCostSpanExporter(dsn=dsn, database=database, ingester="off")
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=2048, schedule_delay_millis=60_000))
    instrumentor = LLMCostInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider, pricer=Pricer(overrides_path=""))

    fake = FakeLLMServer()
    oai = openai_client(fake, max_retries=2)
    gateway = openai_client(fake, max_retries=2, base_url=GATEWAY_URL)
    gateway_pricer = Pricer(overrides_path="")
    gateway_rng = random.Random(seed + 2)  # its own sequence: the rest of the workload stays as it was
    savings_rng = random.Random(seed + 3)  # the same, for the traffic the opportunities point at
    claude = anthropic_client(fake, max_retries=2)
    users = [f"user-{i:03d}" for i in range(40)]
    calls = 0
    limiting = False  # today: POST /chat goes through the app's per-user limiter first

    def tier(user: str) -> str:
        return "free" if int(user[-3:]) < 20 else "pro"

    def chat(endpoint: str, feature: str, team: str, user: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        with llmcost.attributes(endpoint=endpoint, feature=feature, team=team, user=user):
            if limiting and endpoint == "POST /chat":
                llmcost.record_limiter_decision(limit="per-user", key=user, action="allowed", tier=tier(user))
            try:
                oai.chat.completions.create(**kwargs)
            except Exception:
                pass  # failures are part of the workload; the span records them

    def stream(endpoint: str, feature: str, team: str, user: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        with llmcost.attributes(endpoint=endpoint, feature=feature, team=team, user=user):
            for _ in oai.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs):
                pass

    def claude_call(endpoint: str, feature: str, team: str, user: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        with llmcost.attributes(endpoint=endpoint, feature=feature, team=team, user=user):
            try:
                claude.messages.create(max_tokens=512, **kwargs)
            except Exception:
                pass

    def summarize(model: str) -> None:
        nonlocal calls
        calls += 1
        with llmcost.attributes(endpoint="POST /summarize", feature="summaries", team="docs"):
            gateway.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Summarize this ticket thread."}]
            )

    def background_job(user: str, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        with llmcost.attributes(feature="nightly-digest", team="growth", user=user, background=True):
            oai.chat.completions.create(**kwargs)

    def one_day(day: int) -> None:
        nonlocal limiting
        today = day == 0
        limiting = today
        for _ in range(rng.randint(14, 18)):
            user = rng.choice(users)
            chat(
                "POST /chat",
                "assistant",
                "product",
                user,
                model="gpt-4o-mini",
                messages=[
                    {"role": "system", "content": LONG_SYSTEM},
                    {"role": "user", "content": f"My invoice #{rng.randint(1, 9999)} looks wrong."},
                ],
            )
        for i in range(rng.randint(5, 7)):
            stream(
                "GET /autocomplete",
                "autocomplete",
                "product",
                rng.choice(users),
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"Complete: how do I rese{i}"}],
            )
        # Search: a RAG prompt whose long context repeats, so OpenAI's automatic cache hits.
        # Its six retrieved sections are declared as evidence; each answer cites one or two.
        for _ in range(rng.randint(6, 8)):
            with llmcost.evidence(POLICY_SECTIONS) as evidence:
                chat(
                    "POST /search",
                    "search",
                    "growth",
                    rng.choice(users),
                    model="gpt-4o",
                    messages=[
                        {"role": "system", "content": LONG_SYSTEM},
                        {"role": "user", "content": POLICY_DOC},
                        {"role": "user", "content": f"Question {rng.randint(1, 50)}: can I get a refund?"},
                    ],
                )
                evidence.record_citations(cite_rng.sample(sorted(POLICY_SECTIONS), cite_rng.randint(1, 2)))
        # Summaries: Anthropic with an explicit cache breakpoint on the system prompt.
        # x24, not x20: a spike's hour is judged pro-rated while it lasts and as a whole
        # after; at x20 the whole hour scored 9.9 against the one-hour threshold of 10, so
        # the spend anomaly the demo shows vanished at the top of the hour.
        spike = 24 if today else 1
        for i in range(rng.randint(4, 6) * spike):
            claude_call(
                "POST /summarize",
                "summaries",
                "docs",
                rng.choice(users),
                model="claude-sonnet-4-20250514",
                system=[{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": POLICY_DOC + f" Summarise for customer {i}."}],
            )
        # Translations: the same long system prompt every time but no cache breakpoint, so
        # Anthropic never caches it -- the missed-caching view should point at it.
        for _ in range(3):
            claude_call(
                "POST /translate",
                "translate",
                "docs",
                rng.choice(users),
                model="claude-sonnet-4-20250514",
                system=LONG_SYSTEM,
                messages=[{"role": "user", "content": f"Translate note {rng.randint(1, 999)} to French."}],
            )
        # Agent tasks: reasoning model, several calls per task, some tasks fail.
        for t in range(3):
            with llmcost.task(f"ticket-{day}-{t}") as task:
                for step in range(rng.randint(2, 3)):
                    chat(
                        "POST /agent",
                        "agent",
                        "platform",
                        rng.choice(users),
                        model="o3-mini",
                        messages=[{"role": "user", "content": f"Step {step}: diagnose build failure {t}"}],
                    )
                task.success = rng.random() > 0.3
        # Through an OpenRouter-style gateway that returns what it billed (usage.cost).
        for model, markup, flat in GATEWAY_MODELS:
            prompt, completion = gateway_rng.randint(800, 1600), gateway_rng.randint(100, 300)
            ours = gateway_pricer.price(
                Usage(input_tokens=prompt, output_tokens=completion), model, api_url=GATEWAY_URL
            )
            billed = ours.total * markup if ours is not None else flat
            fake.enqueue(
                Reply(
                    usage={
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                        "cost": round(billed, 8),
                    }
                )
            )
            summarize(model)
        if today:
            # A cache that never pays back: a unique long system prompt per call, written, never read.
            for i in range(4):
                claude_call(
                    "POST /report",
                    "weekly-report",
                    "docs",
                    rng.choice(users),
                    model="claude-3-5-haiku-latest",
                    system=[
                        {
                            "type": "text",
                            "text": LONG_SYSTEM + f" Report {i} " + POLICY_DOC[: 200 + i],
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                    messages=[{"role": "user", "content": "Write this week's report."}],
                )
            # A throttled burst: 429s with retry-after, retried by the SDK; two give up.
            fake.enqueue(*(Reply(status=429, headers={"retry-after-ms": "1"}) for _ in range(8)))
            for i in range(6):
                chat(
                    "POST /chat",
                    "assistant",
                    "product",
                    rng.choice(users),
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"burst {i}"}],
                )
            # Our own limit: a free-tier user retrying in a loop is refused before any LLM call.
            for _ in range(6):
                with llmcost.attributes(endpoint="POST /chat"):
                    llmcost.record_limiter_decision(
                        limit="per-user", key="user-007", action="throttled", remaining=0, tier="free"
                    )
            # Failures: server errors the SDK gives up on.
            fake.enqueue(*(Reply(status=500, headers={"retry-after-ms": "1"}) for _ in range(3)))
            chat(
                "POST /search",
                "search",
                "growth",
                rng.choice(users),
                model="gpt-4o",
                messages=[{"role": "user", "content": "fails"}],
            )
            # A model with no known price: reported as unpriced, never as $0.
            chat(
                "POST /chat",
                "assistant",
                "product",
                rng.choice(users),
                model="acme-finetune-7b",
                messages=[{"role": "user", "content": "hello"}],
            )

        # Routing: one-line ticket labels sent to gpt-4o; gpt-4o-mini answers such small
        # requests for a fraction of the price (the routing opportunity).
        for _ in range(savings_rng.randint(8, 10)):
            chat(
                "POST /classify",
                "triage",
                "support",
                savings_rng.choice(users),
                model="gpt-4o",
                messages=[
                    {"role": "user", "content": f"Label ticket {savings_rng.randint(1, 9999)}: billing, bug or other?"}
                ],
            )
        if day == 1:
            # Yesterday's one-off welcome packs, each with its own cache breakpoint: written,
            # never read before they expired (a cache that did not pay back).
            for i in range(3):
                claude_call(
                    "POST /onboarding",
                    "onboarding",
                    "growth",
                    savings_rng.choice(users),
                    model="claude-3-5-haiku-latest",
                    system=[
                        {
                            "type": "text",
                            "text": LONG_SYSTEM + f" Welcome pack {i} " + POLICY_DOC[: 300 + i],
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                    messages=[{"role": "user", "content": "Write the welcome email."}],
                )
        # A nightly digest no user waits for, marked background: the Batch API would run it
        # at half price (the batch opportunity).
        for user in savings_rng.sample(users, 6):
            background_job(
                user,
                model="gpt-4o",
                messages=[{"role": "user", "content": f"Write the daily digest for {user}: " + POLICY_DOC}],
            )

    try:
        for index, day in enumerate(range(days - 1, -1, -1)):
            shift.days = day
            one_day(day)
            if progress is not None:
                progress(f"day -{day}" if day else "today", index + 1, days)
    finally:
        shift.days = 0
        instrumentor.uninstrument()
        provider.shutdown()
    prices_file = _sync_demo_prices(dsn, database)
    return DemoResult(dsn=dsn, database=database, calls=calls, days=days, prices_file=prices_file)


def _sync_demo_prices(dsn: str, database: str) -> Path:
    """Write the demo's price file and load the catalogue with it (``otel-llmcost prices sync``)."""
    from .. import storage
    from ..config import Settings
    from ..exporter import ingest_pending
    from ..pricing import Pricer, catalogue

    path = Settings.load().home / "demo" / "prices.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEMO_PRICES, encoding="utf-8")
    pricer = Pricer(overrides_path="")
    pricer.load_overrides(path, strict=True)
    ingest_pending(dsn, database, wait_s=30.0)
    with storage.open_client(dsn) as client:
        storage.migrate(client, database=database)
        catalogue.sync(client, pricer, database=database)
    return path
