-- title: Savings opportunities
-- What to change to spend less, largest saving first (items can overlap: rank them, do not add them up).
SELECT
    Kind,
    ServiceName,
    Key,
    Provider,
    Model,
    MonthlySavingUsd,
    SeenSavingUsd,
    DaysSeen,
    Evidence,
    Action
FROM {db}.v_opportunities(since_hours = {since_hours:UInt32})
WHERE has({kinds:Array(String)}, Kind) OR empty({kinds:Array(String)})
ORDER BY MonthlySavingUsd DESC, Kind, ServiceName, Key, Model
LIMIT {limit:UInt32}
