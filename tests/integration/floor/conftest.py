"""Floor page tests reuse the page fixtures: a stocked warehouse and page text."""

from __future__ import annotations

from tests.integration.web.conftest import Stocked, stocked, text_of

__all__ = ["Stocked", "stocked", "text_of"]
