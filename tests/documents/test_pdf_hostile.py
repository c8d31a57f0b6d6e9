"""Hostile content in everything an invoice prints: markup, CSS url() and @import, links
to local files, images from loopback. The PDF shows it as text, fetches nothing (a canary
HTTP server on loopback records no request), reads no file and embeds no attachment; and
the renderer's URL fetcher refuses everything but the bundled assets even when handed raw
markup (defence in depth behind the template's escaping)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pdf_support import line, make_customer, make_invoice, read_pdf, set_up_entity, sign_in

from billing_app.documents import pdf as renderer


@pytest.fixture
def canary() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on loopback that records every request made to it."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def hostile_texts(base: str) -> list[str]:
    return [
        f'<img src="{base}/img.png">',
        '<link rel="attachment" href="file:///etc/passwd">',
        f'<link rel="stylesheet" href="{base}/style.css">',
        f"<style>@import url({base}/import.css);</style>",
        f"background: url({base}/bg.png)",
        f'@import "{base}/at-import.css";',
        f'<object data="{base}/object.svg"></object>',
        f'<svg><image href="{base}/svg.png"/></svg>',
        "</style></head><body><h1>forged</h1>",
        '<iframe src="file:///etc/passwd"></iframe>',
    ]


def compact(text: str) -> str:
    return "".join(text.split()).casefold()


def test_hostile_content_is_printed_as_text_and_fetches_nothing(api, app, tenant, client, canary):
    base, hits = canary
    texts = hostile_texts(base)
    set_up_entity(
        app,
        tenant.account_id,
        legal_name=f'Evil <img src="{base}/entity.png"> GmbH',
        address_line1=f"url({base}/address)",
        invoice_footer=f'</div><link rel="attachment" href="file:///etc/passwd"> {base}/footer',
    )
    customer_id = make_customer(
        app,
        tenant.account_id,
        name=f'<script src="{base}/name.js"></script>',
        company=f'<img src="{base}/company.png">',
        address_line1='<link rel="attachment" href="file:///etc/hostname">',
    )
    invoice_id = make_invoice(
        app, tenant.account_id, customer_id, [line(text, "1", "100") for text in texts]
    )
    resp = api.post(f"/v1/invoices/{invoice_id}/download_pdf")
    assert resp.status_code == 200
    pdf = read_pdf(resp.data)
    printed = compact(pdf.text)
    for text in [*texts, f'<img src="{base}/company.png">', f"url({base}/address)"]:
        assert compact(text) in printed, text
    assert compact(f'Evil <img src="{base}/entity.png"> GmbH') in printed
    assert hits == []
    assert pdf.reader.attachments == {}
    assert b"/EmbeddedFile" not in resp.data and b"/Filespec" not in resp.data
    assert "root:x:0:0" not in pdf.text
    # The browser's print page escapes the same text.
    sign_in(client, tenant.email, tenant.password)
    html = client.get(f"/invoices/{invoice_id}/print").get_data(as_text=True)
    assert f'<img src="{base}' not in html and "&lt;img src=" in html
    assert '<link rel="attachment"' not in html
    assert hits == []


def test_the_fetcher_refuses_everything_but_bundled_assets(app, canary):
    """Raw markup straight into the renderer, no escaping: nothing is fetched from the
    network or the file system, no attachment is embedded."""
    base, hits = canary
    raw = f"""<!doctype html><html><head>
      <link rel="stylesheet" href="{base}/style.css">
      <link rel="attachment" href="file:///etc/passwd" title="passwd">
      <link rel="attachment" href="{base}/attachment.bin">
      <style>@import url({base}/import.css); body {{ background: url({base}/bg.png) }}
        @font-face {{ font-family: X; src: url({base}/font.ttf) }}</style>
      <link rel="stylesheet" href="print/invoice.css">
    </head><body style="font-family: X">
      <img src="{base}/img.png"><img src="file:///etc/passwd">
      <img src="data:image/png;base64,iVBORw0KGgo=">
      <object data="{base}/object.svg"></object>
      <svg><image href="{base}/svg.png"/></svg>
      <p>fenced</p>
    </body></html>"""
    with app.app_context():
        result = renderer.html_to_pdf(raw, static_folder=app.static_folder)
    assert hits == []
    pdf = read_pdf(result.pdf)
    assert pdf.has("fenced")
    assert pdf.reader.attachments == {}
    assert b"/EmbeddedFile" not in result.pdf
    assert "root:x:0:0" not in pdf.text
    refused = " ".join(result.refused_urls)
    for fragment in ("style.css", "import.css", "bg.png", "img.png", "file:///etc/passwd", "data:"):
        assert fragment in refused, fragment
    # The bundled stylesheet (and its fonts) were served from memory.
    assert not any("print/invoice.css" in url for url in result.refused_urls)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://127.0.0.1:1/x",
        "https://billing-app.invalid/static/print/../../../etc/passwd",
        "https://billing-app.invalid/static/other.css",
        "data:text/css,body{}",
        "ftp://example.com/x",
    ],
)
def test_memory_fetcher_refuses(url):
    fetcher = renderer.make_fetcher({})
    with pytest.raises(renderer.RefusedURL):
        fetcher.fetch(url)
    assert fetcher.refused == [url]
