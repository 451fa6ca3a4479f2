"""Signals: what the application tells us beyond the SDK call.

- :mod:`.attribution`: who and what a call is for (endpoint, feature, team, user, session, task);
- :mod:`.outcomes`: whether a task succeeded (cost per successful task), and
  :mod:`.outcomes_import` for graded evaluation runs;
- :mod:`.evidence`: retrieved evidence sent with a call and what the answer cited;
- :mod:`.limiter`: the app's own rate-limiter decisions, and :mod:`.limiter_adapters`
  that record them for the ``limits`` library and slowapi with no code.
"""

from .attribution import attributes
from .evidence import evidence, record_citations
from .limiter import record_limiter_decision
from .outcomes import record_outcome, task

__all__ = ["attributes", "evidence", "record_citations", "record_limiter_decision", "record_outcome", "task"]
