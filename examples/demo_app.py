"""A small LLM app for the docker-compose stack: real SDK calls, fake provider, OTLP out.

Run it under the OpenTelemetry agent, which loads the otel-llmcost instrumentor through
its entry point and exports spans to the collector; the app itself has no telemetry code:

    OTEL_SERVICE_NAME=llmcost-demo-app \\
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \\
    opentelemetry-instrument --traces_exporter otlp --metrics_exporter none --logs_exporter none \\
        python examples/demo_app.py --iterations 0

The openai and anthropic SDKs talk to otel_llmcost.demo.fakes (an in-process httpx transport):
no API key, no network besides the collector. Each round sends a support chat with a
long cacheable system prompt, a streamed autocomplete, a RAG search, an Anthropic summary
with a cache breakpoint, an agent task with a recorded outcome, and now and then a
throttled burst (429 + retry-after), a server error, and a model with no price.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import urllib.request

import otel_llmcost as llmcost
from otel_llmcost.demo.fakes import FakeLLMServer, Reply, anthropic_client, openai_client

SYSTEM = ("You are the support assistant of Acme Cloud. Follow the policy below exactly. " * 70).strip()
POLICY = ("Refund policy section: customers on annual plans may request a prorated refund. " * 60).strip()
USERS = [f"user-{i:03d}" for i in range(25)]


def wait_for(url: str, timeout_s: float) -> None:
    """Block until ``url`` answers 200 (the collector's health_check), or give up quietly."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - fixed local URL
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    print(f"demo_app: {url} not healthy after {timeout_s:.0f}s, starting anyway", file=sys.stderr)


def one_round(rng: random.Random, fake: FakeLLMServer, oai: object, claude: object, round_no: int) -> int:
    calls = 0

    def guarded(endpoint: str, feature: str, team: str, fn, **kwargs) -> None:  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        with llmcost.attributes(endpoint=endpoint, feature=feature, team=team, user=rng.choice(USERS)):
            try:
                result = fn(**kwargs)
                if kwargs.get("stream"):
                    for _ in result:
                        pass
            except Exception as exc:  # failures are part of the workload; the span records them
                print(f"demo_app: {endpoint}: {type(exc).__name__}", file=sys.stderr)

    chat = oai.chat.completions.create  # type: ignore[attr-defined]
    for _ in range(3):
        guarded("POST /chat", "assistant", "product", chat, model="gpt-4o-mini", messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"My invoice #{rng.randint(1, 9999)} looks wrong."},
        ])  # fmt: skip
    guarded("GET /autocomplete", "autocomplete", "product", chat, model="gpt-4o-mini", stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": f"Complete: how do I rese{round_no % 7}"}])  # fmt: skip
    guarded("POST /search", "search", "growth", chat, model="gpt-4o", messages=[
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": POLICY},
        {"role": "user", "content": f"Question {rng.randint(1, 50)}: can I get a refund?"},
    ])  # fmt: skip
    guarded("POST /summarize", "summaries", "docs", claude.messages.create,  # type: ignore[attr-defined]
            model="claude-sonnet-4-5", max_tokens=512,
            system=[{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": POLICY + f" Summarise for customer {round_no}."}])  # fmt: skip
    with llmcost.task(f"ticket-{os.getpid()}-{round_no}") as task:
        for step in range(rng.randint(2, 3)):
            question = f"Step {step}: diagnose build failure {round_no}"
            guarded("POST /agent", "agent", "platform", chat, model="o3-mini",
                    messages=[{"role": "user", "content": question}])  # fmt: skip
        task.success = rng.random() > 0.3
    if round_no % 10 == 9:  # a throttled burst: 429s with retry-after, retried by the SDK
        fake.enqueue(*(Reply(status=429, headers={"retry-after-ms": "1"}) for _ in range(4)))
        for i in range(3):
            guarded("POST /chat", "assistant", "product", chat, model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"burst {i}"}])  # fmt: skip
    if round_no % 15 == 14:  # a server error the SDK gives up on, and a model with no price
        fake.enqueue(*(Reply(status=500, headers={"retry-after-ms": "1"}) for _ in range(3)))
        guarded("POST /search", "search", "growth", chat, model="gpt-4o",
                messages=[{"role": "user", "content": "fails"}])  # fmt: skip
        guarded("POST /chat", "assistant", "product", chat, model="acme-finetune-7b",
                messages=[{"role": "user", "content": "hello"}])  # fmt: skip
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=0, help="rounds to run; 0 = until stopped")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--wait-for", default=os.environ.get("LLMCOST_DEMO_WAIT_FOR", ""),
                        help="URL to wait for before starting (the collector's health_check)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.wait_for:
        wait_for(args.wait_for, timeout_s=120)
    rng = random.Random(args.seed)
    fake = FakeLLMServer()
    oai = openai_client(fake, max_retries=2)
    claude = anthropic_client(fake, max_retries=2)
    round_no, total = 0, 0
    while args.iterations == 0 or round_no < args.iterations:
        total += one_round(rng, fake, oai, claude, round_no)
        round_no += 1
        if round_no % 10 == 0:
            print(f"demo_app: {round_no} rounds, {total} calls", file=sys.stderr, flush=True)
        if args.iterations == 0 or round_no < args.iterations:
            time.sleep(args.interval)
    print(f"demo_app: done, {round_no} rounds, {total} calls", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
