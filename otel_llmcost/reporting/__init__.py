"""Reporting: what the views say, for people.

- :mod:`.reports` and ``sql/``: the named report queries (one ``.sql`` file each);
- :mod:`.reader`: opening a database for reading (ingest first when embedded);
- :mod:`.terminal`: reports as tables, JSON or CSV;
- :mod:`.html`: the Grafana dashboards as one static page, with :mod:`.grafana_macros`
  expanding their SQL exactly as the ClickHouse data source does;
- :mod:`.prefix_verdict`: why prompt caching pays or not, in one line per endpoint.
"""

from .reports import DEFAULT_REPORTS, Report, run, what_if

__all__ = ["DEFAULT_REPORTS", "Report", "run", "what_if"]
