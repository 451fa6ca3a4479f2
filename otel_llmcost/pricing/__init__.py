"""Pricing: what a call costs, at the price in force when it was made.

- :mod:`.usage`: the normalized token record every provider's usage is read into;
- :mod:`.formula`: the cost formula, once (rates x tokens, per part);
- :mod:`.pricer`: which price is in force for a call (genai-prices, the override file);
- :mod:`.overrides`: the price override file and its errors;
- :mod:`.catalogue`: ``otel-llmcost prices sync``, the catalogue in ClickHouse.
"""

from .formula import Cost, PriceEntry, Rates, cost_of
from .overrides import PriceFileError
from .pricer import Pricer, genai_prices_version
from .usage import Usage

__all__ = ["Cost", "PriceEntry", "PriceFileError", "Pricer", "Rates", "Usage", "cost_of", "genai_prices_version"]
