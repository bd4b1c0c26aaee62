"""A run's report page (OpenAI's ``report_url``): a signed, short-lived link, and the page.

The link works in a browser without the API key (a browser cannot send one), so it carries
its own proof, as an S3 presigned link does: ``tenant``, ``expires`` (unix seconds) and an
HMAC-SHA256 over them and the run id, keyed by a key derived from the deployment's API-key
HMAC key (its own purpose: a link's signature is never an API key's hash). It expires after
``LINK_TTL_S``; every read of the run issues a fresh one.

The page is static HTML — no script, no external resource, one style block allowed by its
hash in the Content-Security-Policy — and every value from the run (names, items, outputs,
reasoning) is escaped: record text is user data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

LINK_TTL_S = 900  # as long as the longest presigned S3 link (docs/security.md)
_PURPOSE = b"assay report links v1"
STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1f24}"
    "h1{font-size:1.5rem}table{border-collapse:collapse;width:100%;margin:1rem 0}"
    "th,td{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#1a7f37}.fail{color:#cf222e}"
    "pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:13px}small{color:#57606a}"
)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
MAX_TEXT = 600


def _key(hmac_key: bytes) -> bytes:
    return hmac.new(hmac_key, _PURPOSE, hashlib.sha256).digest()


def signature(hmac_key: bytes, tenant_id: UUID, run_id: UUID, expires: int) -> str:
    message = f"{tenant_id}:{run_id}:{expires}".encode()
    return hmac.new(_key(hmac_key), message, hashlib.sha256).hexdigest()


def link(base_url: str, hmac_key: bytes, tenant_id: UUID, run_id: UUID, now: float) -> str:
    expires = int(now) + LINK_TTL_S
    sig = signature(hmac_key, tenant_id, run_id, expires)
    return (
        f"{base_url}/openai/v1/reports/{run_id.hex}?tenant={tenant_id.hex}&expires={expires}&signature={sig}"
    )


def verify(hmac_key: bytes, tenant_id: UUID, run_id: UUID, expires: int, sig: str, now: float) -> bool:
    """The signature matches and the link has not expired (constant-time comparison)."""
    good = hmac.compare_digest(
        signature(hmac_key, tenant_id, run_id, expires).encode(), sig.encode("utf-8", "replace")
    )
    return good and now <= expires


def _text(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    shown = shown if len(shown) <= MAX_TEXT else shown[: MAX_TEXT - 1] + "…"
    return html.escape(shown)


def _output(item: Mapping[str, Any]) -> str:
    return " ".join(str(o.get("content") or "") for o in item["sample"]["output"])


def render(run: Mapping[str, Any], eval_name: str, failing: Sequence[Mapping[str, Any]]) -> str:
    """The page of ``run`` (OpenAI's run object) and some of its failing output items."""
    counts = run["result_counts"]
    criteria = "".join(
        f"<tr><td>{_text(r['testing_criteria'])}</td><td class=n>{r['passed']:,}</td>"
        f"<td class=n>{r['failed']:,}</td></tr>"
        for r in run["per_testing_criteria_results"]
    )
    usage = "".join(
        f"<tr><td>{_text(u['model_name'])}</td><td class=n>{u['invocation_count']:,}</td>"
        f"<td class=n>{u['prompt_tokens']:,}</td><td class=n>{u['completion_tokens']:,}</td></tr>"
        for u in run["per_model_usage"]
    )
    items = "".join(
        "<tr>"
        f"<td class=n>{item['datasource_item_id']}</td>"
        f"<td><pre>{_text(item['datasource_item'])}</pre></td>"
        f"<td><pre>{_text(_output(item))}</pre></td>"
        "<td>"
        + "<br>".join(
            f"<span class={'pass' if r['passed'] else 'fail'}>{_text(r['name'])}: {r['score']:.3g}</span>"
            for r in item["results"]
        )
        + "</td></tr>"
        for item in failing
    )
    error = run["error"].get("message") if run.get("error") else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_text(run['name'])} · Assay</title><style>{STYLE}</style></head><body>"
        f"<h1>{_text(run['name'])}</h1>"
        f"<p>Eval <b>{_text(eval_name)}</b> · status <b>{_text(run['status'])}</b>"
        + (f" · model <b>{_text(run['model'])}</b>" if run.get("model") else "")
        + (f" · <span class=fail>{_text(error)}</span>" if error else "")
        + "</p>"
        f"<p><b>{counts['passed']:,}</b> passed, <b>{counts['failed']:,}</b> failed, "
        f"<b>{counts['errored']:,}</b> errored of <b>{counts['total']:,}</b> items.</p>"
        "<h2>Graders</h2><table><tr><th>grader</th><th>passed</th><th>failed</th></tr>"
        f"{criteria}</table>"
        + (
            "<h2>Models</h2><table><tr><th>model</th><th>calls</th><th>prompt tokens</th>"
            f"<th>completion tokens</th></tr>{usage}</table>"
            if usage
            else ""
        )
        + (
            f"<h2>Failing items (first {len(failing)})</h2><table><tr><th>#</th><th>item</th>"
            f"<th>output</th><th>graders</th></tr>{items}</table>"
            if failing
            else ""
        )
        + "<p><small>A link valid for 15 minutes; every read of the run gives a fresh one.</small></p>"
        "</body></html>"
    )
