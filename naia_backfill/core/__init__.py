"""The engine: plain Python, no Dagster, no CLI. Copy one day from a source into its sinks (``daycopy``),
check the days in the lake (``validation``), move the Kafka topics into QuestDB (``consumer``)."""
