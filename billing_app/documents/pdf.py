"""HTML to PDF with WeasyPrint, fenced in and deterministic.

- WeasyPrint is imported once per process, on first use (≈ 0.4 s), never per request.
- The URL fetcher answers from memory: the print stylesheet and fonts bundled under
  `static/print/` (read once per process) and the one logo handed to this render. Every
  other URL is refused, whatever its scheme (`file:`, `http:`, `data:` …), so no render
  can read the server's files or reach the network, and there are no redirects to follow.
- Attachments (`<link rel=attachment>`) are dropped from the document before it is written,
  and none are passed in: the PDF never carries an embedded file.
- Same HTML in, same bytes out: the creation and modification dates come from the HTML
  (`dcterms.created`, the issue date), the file identifier is a hash of the content, and
  WeasyPrint names font subsets by a hash of their content.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# The origin every bundled asset is addressed under in the PDF's HTML. `.invalid` never
# resolves (RFC 2606): even a fetch that slipped past the fetcher could not go anywhere.
ASSET_ORIGIN = "https://billing-app.invalid"
ASSET_BASE = f"{ASSET_ORIGIN}/static/"
PRINT_ASSETS_DIR = "print"
_CONTENT_TYPES = {
    ".css": "text/css",
    ".ttf": "font/ttf",
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

_lock = threading.Lock()
_weasyprint: Any = None


def weasyprint_module() -> Any:
    """The weasyprint module, imported on first use and kept for the process."""
    global _weasyprint
    if _weasyprint is None:
        with _lock:
            if _weasyprint is None:
                import weasyprint

                _weasyprint = weasyprint
    return _weasyprint


def renderer_name() -> str:
    return f"WeasyPrint {weasyprint_module().__version__}"


@lru_cache(maxsize=4)
def bundled_assets(static_folder: str) -> Mapping[str, tuple[bytes, str]]:
    """Every file under static/print/, by its URL under ASSET_BASE, read once."""
    root = Path(static_folder)
    assets: dict[str, tuple[bytes, str]] = {}
    for path in sorted((root / PRINT_ASSETS_DIR).rglob("*")):
        content_type = _CONTENT_TYPES.get(path.suffix.lower())
        if path.is_file() and content_type:
            url = ASSET_BASE + path.relative_to(root).as_posix()
            assets[url] = (path.read_bytes(), content_type)
    return assets


def logo_path(sha256: str) -> str:
    """Where the print HTML refers to the issuer's logo, relative to ASSET_BASE."""
    return f"logos/{sha256}"


def logo_url(sha256: str) -> str:
    return ASSET_BASE + logo_path(sha256)


class RefusedURL(ValueError):
    """A URL the PDF renderer does not serve."""


def _fetcher_class() -> type:
    """A WeasyPrint URLFetcher subclass (made lazily: WeasyPrint is imported on first use)."""
    weasyprint = weasyprint_module()
    from weasyprint.urls import URLFetcherResponse

    class MemoryFetcher(weasyprint.URLFetcher):  # type: ignore[name-defined]
        """Serves the given resources from memory and refuses every other URL.

        Built without urllib's handlers: nothing here can open a file or a socket."""

        def __init__(self, resources: Mapping[str, tuple[bytes, str]]):
            # OpenerDirector.__init__ only, on purpose: no HTTP/file/data handlers at all.
            super(weasyprint.URLFetcher, self).__init__()
            self._fail_on_errors = False
            self._timeout = 0
            self._http_headers: dict[str, str] = {}
            self._allowed_protocols = ("https",)
            self._request = None
            self.resources = resources
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            key = url.split("#", 1)[0]
            found = self.resources.get(key)
            if found is None:
                self.refused.append(url[:200])
                raise RefusedURL(f"not a bundled asset: {url[:200]}")
            data, content_type = found
            return URLFetcherResponse(key, data, {"Content-Type": content_type})

    return MemoryFetcher


@lru_cache(maxsize=1)
def _memory_fetcher() -> type:
    return _fetcher_class()


def make_fetcher(resources: Mapping[str, tuple[bytes, str]]) -> Any:
    return _memory_fetcher()(resources)


@dataclass
class RenderResult:
    pdf: bytes
    sha256: str
    pages: int
    refused_urls: list[str] = field(default_factory=list)


def html_to_pdf(
    html: str,
    *,
    static_folder: str,
    logo: tuple[str, bytes, str] | None = None,
) -> RenderResult:
    """Render print HTML (asset URLs under ASSET_BASE) to PDF bytes.

    `logo` is (sha256, bytes, content type) of the issuer's logo, served at logo_url(sha).
    """
    weasyprint = weasyprint_module()
    resources: dict[str, tuple[bytes, str]] = dict(bundled_assets(static_folder))
    if logo is not None:
        sha, data, content_type = logo
        resources[logo_url(sha)] = (data, content_type)
    fetcher = make_fetcher(resources)
    document = weasyprint.HTML(string=html, base_url=ASSET_BASE, url_fetcher=fetcher).render()
    # Defence in depth: the template escapes every text, so no <link rel=attachment> can
    # come from data; should one ever appear, it is not embedded (and was not fetched).
    document.metadata.attachments = []
    pdf = document.write_pdf(pdf_identifier=True)
    return RenderResult(
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        pages=len(document.pages),
        refused_urls=fetcher.refused,
    )
