"""Every span attribute, event and metric name otel-llmcost emits, in one place.

GenAI names follow the OpenTelemetry GenAI semantic conventions (v1.41, the schema
URL our tracer declares: otel_llmcost.runtime.SCHEMA_URL). They are
spelled out here rather than imported from opentelemetry-semantic-conventions
because that package keeps them under ``_incubating`` and renames them between
releases; our ClickHouse views key on these exact strings, so they must not move
when a dependency is upgraded. ``llmcost.*`` names are ours.

The SQL in ``otel_llmcost/storage/sql`` reads the same strings; a test checks that
every name the views extract is defined here.
"""

from __future__ import annotations

from typing import Final

# Instrumentation scope of every span we emit; llm_calls_mv keeps only this scope.
INSTRUMENTATION_SCOPE: Final = "otel_llmcost"

# --- GenAI semantic conventions -------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"

# Draft cost attributes (open-telemetry/semantic-conventions-genai PR #443), emitted only with
# OTEL_LLMCOST_EMIT_DRAFT_COST_ATTRIBUTES=true: amount, ISO 4217 currency, provider | local.
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"
COST_SOURCE_PROVIDER: Final = "provider"
COST_SOURCE_LOCAL: Final = "local"

# Content events, recorded only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
EVENT_GEN_AI_INPUT_MESSAGES: Final = "gen_ai.client.inference.input_messages"
EVENT_GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.client.inference.output_messages"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"

# Values of gen_ai.operation.name.
OPERATION_CHAT: Final = "chat"
OPERATION_GENERATE_CONTENT: Final = "generate_content"
OPERATION_EMBEDDINGS: Final = "embeddings"
OPERATION_TEXT_COMPLETION: Final = "text_completion"  # a prompt, not a conversation (Ollama generate)
# The spend of an OpenAI Batch API output file, recorded when the application reads it
# (otel_llmcost.instrumentation.batches): one span per model in the file.
OPERATION_BATCH: Final = "batch"
# OpenAI's image and audio endpoints (no GenAI semconv value names them yet).
OPERATION_IMAGE_GENERATION: Final = "image_generation"
OPERATION_IMAGE_EDIT: Final = "image_edit"
OPERATION_TRANSCRIPTION: Final = "transcription"
OPERATION_TRANSLATION: Final = "translation"
OPERATION_SPEECH: Final = "speech"
# Operations whose request is no conversation: no prompt anatomy is taken of them.
NON_CONVERSATION_OPERATIONS: Final = frozenset(
    {
        OPERATION_EMBEDDINGS,
        OPERATION_IMAGE_GENERATION,
        OPERATION_IMAGE_EDIT,
        OPERATION_TRANSCRIPTION,
        OPERATION_TRANSLATION,
        OPERATION_SPEECH,
    }
)

# --- llmcost extras -------------------------------------------------------------
COST_TOTAL: Final = "llmcost.cost.total"
COST_INPUT: Final = "llmcost.cost.input"
COST_OUTPUT: Final = "llmcost.cost.output"
COST_CACHE_READ: Final = "llmcost.cost.cache_read"
COST_CACHE_WRITE: Final = "llmcost.cost.cache_write"
COST_SAVINGS: Final = "llmcost.cost.savings"
COST_CACHE_WRITE_PREMIUM: Final = "llmcost.cost.cache_write_premium"
# Which price entry priced the call: source ("genai-prices", or "override <file>:<line>"),
# data version (genai-prices release or the override file's sha256), catalogue provider
# and model, price variant ("service_tier=flex") and the UTC date the price took effect.
PRICE_SOURCE: Final = "llmcost.price.source"
PRICE_VERSION: Final = "llmcost.price.version"
PRICE_PROVIDER: Final = "llmcost.price.provider"
PRICE_MODEL: Final = "llmcost.price.model"
PRICE_VARIANT: Final = "llmcost.price.variant"
PRICE_EFFECTIVE_FROM: Final = "llmcost.price.effective_from"
# What the host says it billed (read by the provider modules), beside our own price, and where it
# was read ("usage.cost", "header x-litellm-response-cost"). Never summed with llmcost.cost.total.
COST_REPORTED: Final = "llmcost.cost.reported"
COST_REPORTED_SOURCE: Final = "llmcost.cost.reported_source"
# The 1-hour-TTL share of gen_ai.usage.cache_creation.input_tokens; set only when non-zero.
USAGE_CACHE_WRITE_1H_TOKENS: Final = "llmcost.usage.cache_write_1h_tokens"
# Audio and image subsets of the token totals (otel_llmcost.pricing.usage); set only when non-zero.
USAGE_INPUT_AUDIO_TOKENS: Final = "llmcost.usage.input_audio_tokens"
USAGE_CACHE_AUDIO_READ_TOKENS: Final = "llmcost.usage.cache_audio_read_tokens"
USAGE_OUTPUT_AUDIO_TOKENS: Final = "llmcost.usage.output_audio_tokens"
USAGE_INPUT_IMAGE_TOKENS: Final = "llmcost.usage.input_image_tokens"
USAGE_CACHE_IMAGE_READ_TOKENS: Final = "llmcost.usage.cache_image_read_tokens"
USAGE_OUTPUT_IMAGE_TOKENS: Final = "llmcost.usage.output_image_tokens"
# Vertex AI embeddings: the characters the request is billed by (metadata.billable_character_count).
USAGE_BILLABLE_CHARACTERS: Final = "llmcost.usage.billable_characters"
# Image and audio calls, in the units some of their models are billed by (recorded as the
# response or request states them). whisper-1 is priced by the audio seconds and tts-1 / tts-1-hd
# by the input characters (genai-prices' unit prices; providers.openai_media, pricing.formula);
# images are priced only from tokens.
USAGE_IMAGES: Final = "llmcost.usage.images"  # images returned
USAGE_AUDIO_SECONDS: Final = "llmcost.usage.audio_seconds"  # input audio the response billed (whisper-1)
USAGE_INPUT_CHARACTERS: Final = "llmcost.usage.input_characters"  # text sent to speech
UNPRICED: Final = "llmcost.unpriced"
USAGE_ESTIMATED: Final = "llmcost.usage.estimated"
# Reported tokens beyond belief (OTEL_LLMCOST_MAX_PLAUSIBLE_TOKENS): recorded, never priced or charged.
USAGE_IMPLAUSIBLE: Final = "llmcost.usage.implausible"
USAGE_UNCACHED_INPUT_TOKENS: Final = "llmcost.usage.uncached_input_tokens"
CACHE_WRITE_TTL: Final = "llmcost.cache.write_ttl"
CACHE_BREAKEVEN_READS: Final = "llmcost.cache.breakeven_reads"
PROMPT_PREFIX_HASH: Final = "llmcost.prompt.prefix_hash"
PROMPT_REQUEST_HASH: Final = "llmcost.prompt.request_hash"
# 64-bit SimHash (16 hex digits) of the normalized last user message: near-duplicate requests
# without content (otel_llmcost.instrumentation.similarity); recorded with the prompt hashes.
PROMPT_SIMHASH: Final = "llmcost.prompt.simhash"
PROMPT_COMPONENT_PREFIX: Final = "llmcost.prompt.component."

RATELIMIT_PREFIX: Final = "llmcost.ratelimit."
# llmcost.ratelimit.{requests,tokens,input_tokens,output_tokens}.{limit,remaining,reset_s}
RATELIMIT_KINDS: Final = ("requests", "tokens", "input_tokens", "output_tokens")
RATELIMIT_FIELDS: Final = ("limit", "remaining", "reset_s")
RETRY_COUNT: Final = "llmcost.retry.count"
RETRY_AFTER_S: Final = "llmcost.retry.after_s"
THROTTLED: Final = "llmcost.throttled"
THROTTLED_ATTEMPTS: Final = "llmcost.throttled.attempts"

ENDPOINT: Final = "llmcost.endpoint"
FEATURE: Final = "llmcost.feature"
TEAM: Final = "llmcost.team"
USER: Final = "llmcost.user"
SESSION: Final = "llmcost.session"
USER_TIER: Final = "llmcost.user.tier"  # the user's plan (free, pro, ...): set like the user, never hashed
TASK_ID: Final = "llmcost.task.id"
# "true" on calls no user waits for (a nightly job, a queue worker): work the provider's
# Batch API could do at its discount (v_batch_opportunities).
BACKGROUND: Final = "llmcost.background"
TASK_SUCCESS: Final = "llmcost.task.success"
TASK_SPAN_NAME: Final = "llmcost.task"  # the outcome span of signals.outcomes.record_outcome()
ATTRIBUTION_KEYS: Final = ("endpoint", "feature", "team", "user", "session")

# Set by the llmcost exporter on a stored span whose attribute values it cut to the size limit.
ATTRIBUTES_TRUNCATED: Final = "llmcost.attributes.truncated"

BUDGET_SCOPE: Final = "llmcost.budget.scope"
BUDGET_LIMIT: Final = "llmcost.budget.limit"
BUDGET_USED: Final = "llmcost.budget.used"
# On the span: none | warn | downgrade | raise | unchecked; on budget events: notify | downgrade | refuse | unchecked
BUDGET_ACTION: Final = "llmcost.budget.action"
BUDGET_NAME: Final = "llmcost.budget.name"
BUDGET_THRESHOLD: Final = "llmcost.budget.threshold"  # on budget events: the share of the limit (the rung)
BUDGET_ORIGINAL_MODEL: Final = "llmcost.budget.original_model"  # the model asked for, before a downgrade
EVENT_BUDGET_SOFT_LIMIT: Final = "llmcost.budget.soft_limit"  # before ladders; now threshold_crossed
# Budget events on the call's span (one per budget concerned); a materialized view reads
# exactly these names, so they are a contract.
EVENT_BUDGET_THRESHOLD_CROSSED: Final = "llmcost.budget.threshold_crossed"  # at or above a notify threshold
EVENT_BUDGET_DOWNGRADED: Final = "llmcost.budget.downgraded"
EVENT_BUDGET_REFUSED: Final = "llmcost.budget.refused"
EVENT_BUDGET_UNCHECKED: Final = "llmcost.budget.unchecked"  # the store was unavailable and fail_open let it through
BUDGET_SCOPE_VALUE: Final = "llmcost.budget.scope_value"  # on events: the user/team/... (a hashed user when hashing)
BUDGET_PERIOD: Final = "llmcost.budget.period"  # day | week | month | request
BUDGET_USED_USD: Final = "llmcost.budget.used_usd"
BUDGET_LIMIT_USD: Final = "llmcost.budget.limit_usd"
BUDGET_USED_TOKENS: Final = "llmcost.budget.used_tokens"
BUDGET_LIMIT_TOKENS: Final = "llmcost.budget.limit_tokens"
BUDGET_DOWNGRADED_TO: Final = "llmcost.budget.downgraded_to"

# llmcost.prompt.component.<name>: prompt tokens by component (otel_llmcost.instrumentation.anatomy)
PROMPT_COMPONENTS: Final = ("system", "tools", "context", "history", "latest")
PROMPT_COMPONENT_SYSTEM: Final = "llmcost.prompt.component.system"
PROMPT_COMPONENT_TOOLS: Final = "llmcost.prompt.component.tools"
PROMPT_COMPONENT_CONTEXT: Final = "llmcost.prompt.component.context"
PROMPT_COMPONENT_HISTORY: Final = "llmcost.prompt.component.history"
PROMPT_COMPONENT_LATEST: Final = "llmcost.prompt.component.latest"

# --- batch jobs (OpenAI Batch API; otel_llmcost.instrumentation.batches) -------------
# The spans of batches.create / batches.retrieve are named BATCH_CREATE_SPAN_NAME /
# BATCH_RETRIEVE_SPAN_NAME and carry no gen_ai.operation.name: they cost nothing, and
# llm_calls (which keys on gen_ai.operation.name) must not count them as calls. The
# spend is on the OPERATION_BATCH spans of the output file, priced at the batch price
# variant (llmcost.price.variant "processing=batch").
BATCH_CREATE_SPAN_NAME: Final = "batch.create"
BATCH_RETRIEVE_SPAN_NAME: Final = "batch.retrieve"
BATCH_OUTPUT_SPAN_NAME: Final = "batch.output"  # an output file that could not be read (see BATCH_UNUSABLE)
BATCH_ID: Final = "llmcost.batch.id"
BATCH_ENDPOINT: Final = "llmcost.batch.endpoint"  # /v1/chat/completions, /v1/embeddings, /v1/responses
BATCH_STATUS: Final = "llmcost.batch.status"  # validating, in_progress, completed, failed, expired, ...
BATCH_INPUT_FILE_ID: Final = "llmcost.batch.input_file_id"
BATCH_OUTPUT_FILE_ID: Final = "llmcost.batch.output_file_id"
BATCH_REQUESTS_TOTAL: Final = "llmcost.batch.requests.total"  # the batch's request_counts
BATCH_REQUESTS_COMPLETED: Final = "llmcost.batch.requests.completed"
BATCH_REQUESTS_FAILED: Final = "llmcost.batch.requests.failed"
# On an output span: the file read (the key that counts a file once), and the lines of this
# model summed into its usage (requests that succeeded; a failed one is not billed).
BATCH_FILE_ID: Final = "llmcost.batch.file_id"
BATCH_LINES: Final = "llmcost.batch.lines"
# A batch output file whose lines could not all be read: nothing priced, nothing counted.
BATCH_UNUSABLE: Final = "llmcost.batch.unusable"
PRICE_CONTEXT_PROCESSING: Final = "processing"  # genai-prices' price-variant key for batch prices
PROCESSING_BATCH: Final = "batch"

# --- app-side signals: evidence, citations, prefix length ----------------------------
# Tokens of the cacheable prefix (system, tools, every message but the last: what
# llmcost.prompt.prefix_hash covers), counted offline by otel_llmcost.instrumentation.anatomy.
PROMPT_PREFIX_TOKENS: Final = "llmcost.prompt.prefix_tokens"
# Retrieved evidence the app declared for a call (otel_llmcost.signals.evidence): ids and
# per-item token counts, never text. Ids and tokens are parallel arrays.
EVIDENCE_SET_ID: Final = "llmcost.evidence.set_id"
EVIDENCE_IDS: Final = "llmcost.evidence.ids"
EVIDENCE_TOKENS: Final = "llmcost.evidence.tokens"
EVIDENCE_TOTAL_TOKENS: Final = "llmcost.evidence.total_tokens"  # every item, also those past the cap
EVIDENCE_CITED_IDS: Final = "llmcost.evidence.cited_ids"  # on the citations span
CITATIONS_SPAN_NAME: Final = "llmcost.citations"  # the span of evidence.record_citations()

# --- app rate limiters (otel_llmcost.signals.limiter) ---------------------------------
# The application's OWN rate limits (per user, route, tier, or a client-side limiter in
# front of a provider), as opposed to the provider's headers (llmcost.ratelimit.*).
# One event per decision, on the current span (or on a short span of its own when none
# is recording); llm_limiter_decisions (storage/sql/007_limits.sql) is built from these events.
EVENT_LIMITER_DECISION: Final = "llmcost.limiter.decision"
LIMITER_SPAN_NAME: Final = "llmcost.limiter"  # the span a decision gets when no span is recording
LIMITER_LIMIT: Final = "llmcost.limiter.limit"  # which limit: one of LIMITER_LIMITS or your own name
LIMITER_KEY: Final = "llmcost.limiter.key"  # who was limited; an HMAC with OTEL_LLMCOST_USER_HASH_KEY
LIMITER_ACTION: Final = "llmcost.limiter.action"  # one of LIMITER_ACTIONS
LIMITER_REMAINING: Final = "llmcost.limiter.remaining"  # requests or tokens left in the window
LIMITER_TIER: Final = "llmcost.limiter.tier"  # the user's plan; also read from baggage of that name
LIMITER_ROUTE: Final = "llmcost.limiter.route"  # "<METHOD> <route>", the llmcost.endpoint of LLM calls
LIMITER_RULE: Final = "llmcost.limiter.rule"  # the rule, e.g. "5 per 1 minute"
LIMITER_SOURCE: Final = "llmcost.limiter.source"  # who recorded it: app | limits | slowapi
# On the span carrying decision events: how many (a span-level mark, so a collector filter
# that keeps only llmcost spans can keep these too; events are not visible to it).
LIMITER_DECISION_COUNT: Final = "llmcost.limiter.decision_count"
LIMITER_LIMITS: Final = ("per-user", "per-route", "per-tier", "provider", "global")
# allowed: served. throttled: refused for now (429, retry later). rejected: refused for
# good (quota spent, blocked). queued: held until capacity frees up. retried: refused and
# retried by the caller (a client-side limiter in front of a provider).
LIMITER_ACTIONS: Final = ("allowed", "throttled", "rejected", "queued", "retried")

# --- other instrumentations' names (read, never emitted: storage/sql/015_foreign_calls.sql) ---
# The scope names identify the source of a foreign span (otel_traces.ScopeName).
# contrib opentelemetry-instrumentation-openai-v2: tracer = get_tracer(__name__) in
# opentelemetry/instrumentation/openai_v2/__init__.py.
SCOPE_CONTRIB_OPENAI_V2: Final = "opentelemetry.instrumentation.openai_v2"
# OpenLLMetry opentelemetry-instrumentation-openai: get_tracer(__name__) in
# opentelemetry/instrumentation/openai/v1/__init__.py (v0/ for openai<1).
SCOPE_OPENLLMETRY_OPENAI_V1: Final = "opentelemetry.instrumentation.openai.v1"
SCOPE_OPENLLMETRY_OPENAI_V0: Final = "opentelemetry.instrumentation.openai.v0"
# OpenLIT: every instrumentation uses the tracer of openlit/otel/tracing.py (get_tracer(__name__)).
SCOPE_OPENLIT: Final = "openlit.otel.tracing"
# Provider before gen_ai.provider.name (semconv <= 1.36; contrib openai-v2, OpenLLMetry and
# OpenLIT still set it).
GEN_AI_SYSTEM: Final = "gen_ai.system"
# OpenLLMetry (opentelemetry-semantic-conventions-ai SpanAttributes, releases before the
# move to gen_ai.usage.input_tokens): LLM_USAGE_PROMPT_TOKENS / LLM_USAGE_COMPLETION_TOKENS,
# LLM_USAGE_CACHE_READ_INPUT_TOKENS / LLM_USAGE_CACHE_CREATION_INPUT_TOKENS,
# LLM_USAGE_REASONING_TOKENS; and llm.usage.total_tokens (SpanAttributes.LLM_USAGE_TOTAL_TOKENS).
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_OLD: Final = "gen_ai.usage.cache_read_input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_OLD: Final = "gen_ai.usage.cache_creation_input_tokens"
GEN_AI_USAGE_REASONING_TOKENS_OLD: Final = "gen_ai.usage.reasoning_tokens"
LLM_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
# OpenLIT's own price of the call (openlit.semcov.SemanticConvention.GEN_AI_USAGE_COST), USD.
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"

# --- metrics --------------------------------------------------------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_COST: Final = "llmcost.cost"
METRIC_CACHE_SAVINGS: Final = "llmcost.cache.savings"
METRIC_UNPRICED_CALLS: Final = "llmcost.unpriced.calls"
METRIC_THROTTLED: Final = "llmcost.throttled.requests"
METRIC_BUDGET_EVENTS: Final = "llmcost.budget.events"
# App rate-limiter decisions by limit, action, route, tier and source (never the key).
METRIC_LIMITER_DECISIONS: Final = "llmcost.limiter.decisions"
# The llmcost span exporter's own health: spans that never reach storage (attribute
# ``reason``), and attribute values it cut to the size limit.
METRIC_EXPORTER_DROPPED_SPANS: Final = "llmcost.exporter.dropped_spans"
METRIC_EXPORTER_TRUNCATED_ATTRIBUTES: Final = "llmcost.exporter.truncated_attributes"

TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# Bucket boundaries recommended by the GenAI semconv for the two client histograms.
TOKEN_USAGE_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)


def ratelimit_attribute(kind: str, field: str) -> str:
    return f"{RATELIMIT_PREFIX}{kind}.{field}"


def attribution_attribute(key: str) -> str:
    return f"llmcost.{key}"
