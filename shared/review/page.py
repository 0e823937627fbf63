"""The reviewer's page: small server-rendered HTML (every value escaped) and the JSON views of the API.

How the page authenticates (the same on AWS and on the embedded cloud): ``GET .../review/login`` is a static
sign-in form, the only review route without the Cognito authorizer, and it serves no data. Its script sends the
username and password to Cognito's ``InitiateAuth`` (``USER_PASSWORD_AUTH``, the user pool's public app client)
at the Cognito endpoint the function's boto3 client uses (``https://cognito-idp.<region>.amazonaws.com/`` on AWS,
the moto server locally), keeps the ID token in ``sessionStorage`` (gone with the tab), then fetches the queue
page with ``Authorization: <ID token>`` and shows it. Every link and form of the page does the same through
``fetch`` with the token; API Gateway's Cognito authorizer checks it (401 without it), and the reviewer is the
token's ``cognito:username``, never a field of a body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from shared.review.stats import ReviewStats
from shared.review.types import ReviewItem

TOKEN_KEY = "sluice-review-token"  # noqa: S105 - a storage key's name, not a secret
"""The ``sessionStorage`` key of the reviewer's ID token."""

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:64rem;color:#1d2433;padding:0 1rem}
h1{font-size:1.35rem}h2{font-size:1.1rem;margin-top:1.4rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .6rem;border-bottom:1px solid #dde;text-align:left}
th{background:#f3f5f9}
.reason{display:inline-block;background:#e8eefc;border-radius:.6rem;padding:0 .5rem;margin-right:.2rem}
.pos{color:#a1260d}.neg{color:#17663a}.muted{color:#667}form label{display:block;margin:.4rem 0}
#status{font-weight:600}
"""

_SCRIPT = """
var TOKEN_KEY = %(token_key)s;  // var: document.write keeps the global scope, a second const would throw
function token(){ return sessionStorage.getItem(TOKEN_KEY) || ""; }
async function go(url){
  const r = await fetch(url, {headers: {Authorization: token()}});
  if (r.status === 401) { location.href = %(login)s; return; }
  const html = await r.text(); document.open(); document.write(html); document.close();
  history.replaceState(null, "", url);
}
async function send(url, body){
  const r = await fetch(url, {method: "POST", headers: {Authorization: token(), "Content-Type": "application/json"},
                              body: JSON.stringify(body || {})});
  let answer = {}; try { answer = await r.json(); } catch (e) {}
  return [r.status, answer];
}
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-go]"); if (!a) return; e.preventDefault(); go(a.getAttribute("href"));
});
async function claimAndDecide(form){
  const status = document.getElementById("status");
  const item = form.dataset.item;
  const [claimed, c] = await send(form.dataset.claim);
  if (claimed !== 200 && !(claimed === 409 && c.reason === "already_claimed")) {
    status.textContent = "claim: " + claimed + " " + (c.message || ""); return false;
  }
  const [decided, d] = await send(form.dataset.decision, {label: form.label.value, taxonomy: form.taxonomy.value,
                                                         note: form.note.value});
  status.textContent = decided === 200 ? "decided: " + item : "decision: " + decided + " " + (d.message || "");
  return decided === 200;
}
"""

_LOGIN_SCRIPT = """
var TOKEN_KEY = %(token_key)s;  // var: document.write keeps the global scope, a second const would throw
async function signIn(form){
  const status = document.getElementById("status");
  const r = await fetch(%(cognito)s, {method: "POST", headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"},
    body: JSON.stringify({AuthFlow: "USER_PASSWORD_AUTH", ClientId: %(client_id)s,
                          AuthParameters: {USERNAME: form.username.value, PASSWORD: form.password.value}})});
  const answer = await r.json();
  if (!r.ok || !answer.AuthenticationResult) {
    status.textContent = "sign-in refused: " + (answer.message || r.status); return;
  }
  sessionStorage.setItem(TOKEN_KEY, answer.AuthenticationResult.IdToken);
  const page = await fetch(%(review)s, {headers: {Authorization: answer.AuthenticationResult.IdToken}});
  const html = await page.text(); document.open(); document.write(html); document.close();
  history.replaceState(null, "", %(review)s);
}
"""


def _js(value: str) -> str:
    """A JavaScript string literal safe inside a ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _document(title: str, body: str, script: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style><script>{script}</script></head><body>{body}</body></html>"
    )


def login_page(*, usecase: str, base: str, cognito_url: str, client_id: str) -> str:
    """The sign-in form (static: no data)."""
    script = _LOGIN_SCRIPT % {
        "token_key": _js(TOKEN_KEY),
        "cognito": _js(cognito_url),
        "client_id": _js(client_id),
        "review": _js(base),
    }
    body = (
        f"<h1>Review · {escape(usecase)}</h1><form onsubmit='signIn(this);return false'>"
        "<label>Username <input name=username autocomplete=username required></label>"
        "<label>Password <input name=password type=password autocomplete=current-password required></label>"
        "<button type=submit>Sign in</button></form><p id=status></p>"
    )
    return _document(f"Sign in · review {usecase}", body, script)


def age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _reasons(item: ReviewItem) -> str:
    return "".join(f"<span class=reason>{escape(reason.value)}</span>" for reason in item.reasons)


def _page_script(base: str) -> str:
    return _SCRIPT % {"token_key": _js(TOKEN_KEY), "login": _js(f"{base}/login")}


def queue_page(
    *, usecase: str, base: str, reviewer: str, items: Sequence[ReviewItem], now: datetime, stats: ReviewStats
) -> str:
    """The queue: each claimable item with its reasons, score, inclusion probability and age."""
    rows = "".join(
        "<tr>"
        f"<td><a data-go href='{escape(f'{base}?item={item.item_id}')}'>{escape(item.item_id[:12])}</a></td>"
        f"<td>{_reasons(item)}</td><td>{item.score:.3f}</td><td>{item.inclusion_probability:.3f}</td>"
        f"<td>{escape(item.state.value)}</td><td>{escape(age_text((now - item.created_at).total_seconds()))}</td>"
        "</tr>"
        for item in items
    )
    oldest = "—" if stats.oldest_age_seconds is None else age_text(stats.oldest_age_seconds)
    body = (
        f"<h1>Review queue · {escape(usecase)}</h1>"
        f"<p class=muted>Signed in as <b>{escape(reviewer)}</b> · {stats.queue_depth} waiting · oldest {oldest}"
        f" · {stats.overdue} overdue · {stats.decisions_per_hour:.1f} decisions/h</p>"
        "<table><thead><tr><th>item</th><th>why</th><th>score</th><th>inclusion p</th><th>state</th>"
        f"<th>age</th></tr></thead><tbody>{rows}</tbody></table>"
        + ("" if items else "<p>Nothing waits for review.</p>")
    )
    return _document(f"Review · {usecase}", body, _page_script(base))


def _contributions_html(contributions: Mapping[str, float] | None, estimator: str) -> str:
    if contributions is None:
        return f"<p class=muted>Per-feature contributions: not available for {escape(estimator)}.</p>"
    ordered = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class={'pos' if value > 0 else 'neg'}>{value:+.3f}</td></tr>"
        for name, value in ordered
    )
    return (
        "<p class=muted>coefficient &times; standardized value, in log-odds (positive: towards the positive class)"
        f"</p><table><thead><tr><th>feature</th><th>contribution</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def item_page(
    *,
    usecase: str,
    base: str,
    reviewer: str,
    item: ReviewItem,
    now: datetime,
    labels: Sequence[str],
    taxonomy: Sequence[str],
    contributions: Mapping[str, float] | None,
    estimator: str,
) -> str:
    """One item: why it is here, its score, what drove the score, its features, its decisions and the form."""
    features = "".join(
        f"<tr><th>{escape(str(name))}</th><td>{escape(str(value))}</td></tr>" for name, value in item.features.items()
    )
    decisions = "".join(
        f"<li>{escape(d.reviewer)}: {escape(str(d.label))} ({escape(d.taxonomy)}) — <q>{escape(d.note)}</q></li>"
        for d in item.decisions
    )
    label_options = "".join(f"<option>{escape(label)}</option>" for label in labels)
    taxonomy_options = "".join(f"<option>{escape(value)}</option>" for value in taxonomy)
    item_url = f"{base}/items/{item.item_id}"
    challenger = "" if item.challenger_score is None else f" · challenger {item.challenger_score:.3f}"
    body = (
        f"<p><a data-go href='{escape(base)}'>← queue</a></p>"
        f"<h1>Item {escape(item.item_id[:12])} · {escape(usecase)}</h1>"
        f"<p>Why here: {_reasons(item)} · inclusion probability {item.inclusion_probability:.3f}"
        f" (weight {item.weight:.1f}) · state {escape(item.state.value)}"
        f" · age {escape(age_text((now - item.created_at).total_seconds()))}</p>"
        f"<p>Score <b>{item.score:.3f}</b> (threshold {item.threshold:.3f}, model v{item.model_version},"
        f" {escape(item.variant)}){challenger}</p>"
        f"<h2>What drove the score</h2>{_contributions_html(contributions, estimator)}"
        f"<h2>Features</h2><table>{features}</table>"
        + (f"<h2>Decisions</h2><ul>{decisions}</ul>" if decisions else "")
        + "<h2>Decision</h2>"
        f"<form data-item='{escape(item.item_id)}' data-claim='{escape(item_url + '/claim')}'"
        f" data-decision='{escape(item_url + '/decision')}' onsubmit='claimAndDecide(this);return false'>"
        f"<label>Label <select name=label>{label_options}</select></label>"
        f"<label>Taxonomy <select name=taxonomy>{taxonomy_options}</select></label>"
        "<label>Note <textarea name=note rows=3 cols=60 maxlength=2000></textarea></label>"
        f"<button type=submit>Claim and decide</button></form><p id=status></p>"
        f"<p class=muted>Signed in as {escape(reviewer)}</p>"
    )
    return _document(f"Item {item.item_id[:12]} · review {usecase}", body, _page_script(base))


def item_json(item: ReviewItem, *, now: datetime) -> dict[str, Any]:
    """An item as the API answers it (notes as stored: plain text)."""
    return {
        **json.loads(item.model_dump_json()),
        "age_seconds": (now - item.created_at).total_seconds(),
        "weight": item.weight,
    }


def stats_json(stats: ReviewStats) -> dict[str, Any]:
    return {
        "usecase": stats.usecase,
        "at": stats.at.isoformat(),
        "queue_depth": stats.queue_depth,
        "depth": stats.depth,
        "oldest_age_seconds": stats.oldest_age_seconds,
        "overdue": stats.overdue,
        "decided": stats.decided,
        "decisions_per_hour": stats.decisions_per_hour,
        "window_hours": stats.window_hours,
        "agreement": None
        if stats.agreement is None
        else {
            "statistic": stats.agreement.statistic,
            "kappa": stats.agreement.kappa,
            "items": stats.agreement.items,
        },
        "disagreement_by_taxonomy": {
            k: {"items": v.items, "disagreements": v.disagreements} for k, v in stats.by_taxonomy.items()
        },
        "disagreement_by_segment": {
            k: {"items": v.items, "disagreements": v.disagreements} for k, v in stats.by_segment.items()
        },
        "by_reason": stats.by_reason,
    }
