"""Floor page tests reuse the page fixtures: a stocked warehouse, sign-in, page text."""

from __future__ import annotations

from tests.integration.web.conftest import Stocked, login_as, stocked, text_of

__all__ = ["Stocked", "login_as", "stocked", "text_of"]
