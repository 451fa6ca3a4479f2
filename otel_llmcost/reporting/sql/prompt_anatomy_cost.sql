-- title: Prompt anatomy: input dollars per prompt component
-- Per endpoint and prompt component (system, tools, context, history, latest): its tokens,
-- its share of the prompt (for system: the system-prompt share) and the input dollars it
-- cost (each call's input cost split by its components' tokens). Calls without a prompt
-- anatomy are not counted.
SELECT
    ServiceName,
    Endpoint,
    Component,
    Calls,
    Tokens,
    round(TokenShare, 4) AS TokenShare,
    round(CostUsd, 6) AS CostUsd,
    round(CostShare, 4) AS CostShare,
    round(TokensPerCall, 1) AS TokensPerCall
FROM {db}.v_prompt_component_cost(since_hours = {since_hours:UInt32})
ORDER BY CostUsd DESC
LIMIT {limit:UInt32}
