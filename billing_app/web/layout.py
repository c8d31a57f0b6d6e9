"""Whole pages: the layout (templates/base.html) around a page's title and content, the
layout's own parts rendered once per process.

Outside its `title` and `content` blocks the layout shows constants, the CSRF token, the
header (`common.page_header`, which depends on the endpoint, the signed-in user and the
token: `common.header_key`) and the flashed messages. So when a request has no flashed
messages, the layout is rendered once per header key with a marker in each block, split
at the markers and kept; a page then renders only its two blocks, into a shell template
in place of base.html (page templates extend `page_layout`, a template global that is
"base.html" unless a render passes the shell), and is put between the kept parts. With
flashed messages the page is rendered as usual. The output is byte for byte what
render_template gives (tested): running base.html, its header call and the extends
machinery cost a page more than its own blocks' markup.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, render_template, session
from flask.globals import request_ctx
from jinja2 import Template

# No page text can hold it: NUL and 128 random bits, per process.
_MARK = f"\x00{secrets.token_hex(16)}\x00"
MAX_LAYOUTS = 10_000


class PageLayout:
    """The shell, the split layout and the kept parts of one app's layout."""

    def __init__(self, app: Flask, header_key: Callable[[], tuple[Any, ...]]) -> None:
        env = app.jinja_env
        self.header_key = header_key
        # base.html's own defaults for the two blocks.
        self.shell: Template = env.from_string(
            "{% block title %}billing_app{% endblock %}"
            + _MARK
            + "{% block content %}{% endblock %}"
        )
        self.marked: Template = env.from_string(
            '{% extends "base.html" %}{% block title %}' + _MARK + "{% endblock %}"
            "{% block content %}" + _MARK + "{% endblock %}"
        )
        self.parts: dict[tuple[Any, ...], tuple[str, str, str]] = {}

    def layout_parts(self) -> tuple[str, str, str]:
        """base.html before the title, between title and content, after the content, for
        a request without flashed messages."""
        key = self.header_key()
        parts = self.parts.get(key)
        if parts is None:
            parts = self._render_parts()
            if len(self.parts) >= MAX_LAYOUTS:
                self.parts.clear()
            self.parts[key] = parts
        return parts

    def _render_parts(self) -> tuple[str, str, str]:
        before, between, after = render_template(self.marked).split(_MARK)
        return before, between, after


def init_layout(app: Flask, header_key: Callable[[], tuple[Any, ...]]) -> None:
    """`header_key`: everything the layout's header depends on (common.header_key)."""
    app.jinja_env.globals["page_layout"] = "base.html"
    app.extensions["page_layout"] = PageLayout(app, header_key)


def render_page(template_name: str, /, **context: Any) -> str:
    """render_template(template_name, **context) for a template that extends
    `page_layout` (see the module's docstring)."""
    if request_ctx.flashes or "_flashes" in session:
        return render_template(template_name, **context)
    layout: PageLayout = current_app.extensions["page_layout"]
    before, between, after = layout.layout_parts()
    title, content = render_template(template_name, page_layout=layout.shell, **context).split(
        _MARK
    )
    return "".join((before, title, between, content, after))


def render_layout(title_html: str, content_html: str) -> str:
    """base.html around a title and content already written as HTML (escaped), as a
    template extending it with these two blocks would render."""
    layout: PageLayout = current_app.extensions["page_layout"]
    if request_ctx.flashes or "_flashes" in session:
        # The flashed messages are shown once: this render takes them, and is not kept.
        before, between, after = layout._render_parts()
    else:
        before, between, after = layout.layout_parts()
    return "".join((before, title_html, between, content_html, after))
