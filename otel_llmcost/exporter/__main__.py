"""``python -m otel_llmcost.exporter --follow``: the ingester process (see :mod:`.ingester`)."""

import sys

from .ingester import main

sys.exit(main())
