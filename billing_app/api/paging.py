"""The list shape of dialect B (Reepay): query `size` and `next_page_token`, answer
`{"size", "count", "content", "next_page_token"}`. Rows come from `billing_app.querying`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..querying import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from .types import StrictInt

T = TypeVar("T")
R = TypeVar("R")


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    size: StrictInt = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description="How many objects a page holds at most.",
    )
    next_page_token: str | None = Field(
        default=None,
        max_length=500,
        description="The next_page_token of the previous page; omitted: the first page.",
    )


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first."""

    size: int = Field(description="The page size asked for.")
    count: int = Field(description="How many objects this page holds.")
    content: list[T] = Field(description="The objects of this page.")
    next_page_token: str | None = Field(
        description="The token that asks for the next page; null on the last page."
    )


def page_body(
    size: int,
    rows: Sequence[R],
    next_token: str | None,
    serialise: Callable[[Sequence[R]], list[dict[str, Any]]],
) -> dict[str, Any]:
    """The page as JSON; `serialise` turns all rows at once (so it can batch look-ups)."""
    content = serialise(rows)
    return {"size": size, "count": len(content), "content": content, "next_page_token": next_token}
