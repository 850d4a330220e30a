"""The dashboard page: one self-contained HTML document with its style and script inline.

Kept as Python strings rather than a package-data file so that every install, editable or
not, carries it. Nothing is loaded from elsewhere: clusters often have no internet. The script
polls `dashboard/data` every two seconds and builds the DOM with `textContent` only, so no
value from a request or a Vipps answer is ever parsed as HTML. The Content-Security-Policy
allows exactly this style and this script (by hash) and requests to the admin origin.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
:root {
  color-scheme: light;
  --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --paper: #ffffff; --ground: #f5f6f8;
  --vipps: #ff5b24; --red: #c4320a; --amber: #b54708; --yellow: #fdf0c2; --blue: #175cd3;
  --grey: #475467; --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
    monospace;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--ground); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "DejaVu Sans", sans-serif;
}
header {
  display: flex; align-items: center; justify-content: space-between; gap: 16px;
  padding: 14px 28px; background: var(--paper); border-bottom: 3px solid var(--vipps);
}
h1 { margin: 0; font-size: 20px; font-weight: 650; letter-spacing: -0.01em; }
h2 { margin: 0 0 10px; font-size: 15px; font-weight: 650; }
.sub { margin: 2px 0 0; color: var(--muted); font-size: 13px; }
.status { margin: 0; font-size: 13px; color: var(--muted); white-space: nowrap; }
.status::before {
  content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px;
  border-radius: 50%; background: #98a2b3; vertical-align: 1px;
}
.status.live::before { background: #12b76a; }
.status.down { color: var(--red); }
.status.down::before { background: var(--red); }
main { padding: 20px 28px 32px; max-width: 1500px; }
.totals { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 14px; }
.card {
  background: var(--paper); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 16px; border-top: 4px solid var(--grey);
}
.card .n { display: block; font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 13px; }
.card.vipps_errors { border-top-color: var(--vipps); }
.card.blocked { border-top-color: var(--amber); }
.card.would_block { border-top-color: #eaaa08; }
.card.upstream_errors { border-top-color: var(--red); }
section.panel {
  margin-top: 20px; background: var(--paper); border: 1px solid var(--line);
  border-radius: 10px; padding: 16px;
}
.note { color: var(--muted); font-weight: 400; font-size: 13px; margin-left: 8px; }
table { width: 100%; border-collapse: collapse; }
th {
  text-align: left; font-weight: 600; color: var(--muted); font-size: 12px;
  text-transform: uppercase; letter-spacing: 0.04em; padding: 6px 10px;
  border-bottom: 1px solid var(--line);
}
td { padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: baseline; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.count { font-weight: 650; }
time, .mono, td.path { font-family: var(--mono); font-size: 12.5px; }
time { color: var(--grey); white-space: nowrap; }
td.path { min-width: 18em; overflow-wrap: anywhere; }
td.nowrap { white-space: nowrap; }
.scroll { overflow-x: auto; }
.status-4 { color: var(--amber); font-weight: 600; }
.status-5 { color: var(--red); font-weight: 600; }
.badge {
  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; white-space: nowrap; background: #f2f4f7; color: var(--grey);
}
.badge.vipps_error { background: #fff1eb; color: #c4320a; }
.badge.blocked { background: #fef0c7; color: var(--amber); }
.badge.would_block { background: var(--yellow); color: #854a0e; }
.badge.upstream_error { background: #fee4e2; color: #912018; }
.badge.finding { background: #eff8ff; color: var(--blue); }
button.toggle {
  font: inherit; font-size: 12.5px; color: var(--blue); background: none; border: 0;
  padding: 0; cursor: pointer; white-space: nowrap;
}
button.toggle:hover { text-decoration: underline; }
tr.open > td { background: #f9fafb; }
tr.detail > td { background: #f9fafb; padding: 4px 10px 14px; }
dl.meta {
  display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0 10px;
}
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; font-family: var(--mono); font-size: 12.5px; word-break: break-all; }
ul.findings { margin: 0 0 10px; padding-left: 18px; }
ul.findings li { margin: 2px 0; }
pre {
  margin: 0; padding: 10px 12px; background: #101828; color: #e4e7ec; border-radius: 8px;
  font: 12.5px/1.5 var(--mono); white-space: pre-wrap; word-break: break-word;
  max-height: 360px; overflow: auto;
}
.empty { color: var(--muted); margin: 8px 0 0; }
.caption {
  margin: 6px 0 2px; color: var(--muted); font-size: 12px; font-weight: 600;
  text-transform: uppercase; letter-spacing: 0.04em;
}
.other { color: var(--muted); margin: 10px 0 0; font-size: 13px; }
td.contradicted { color: var(--red); font-weight: 650; }
td.confirmed { color: #067647; font-weight: 650; }
td.example { overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: 12.5px; margin-top: 18px; }
footer a { color: var(--blue); }
[hidden] { display: none !important; }
@media (max-width: 900px) {
  .totals { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  header, main { padding-left: 14px; padding-right: 14px; }
}
"""

SCRIPT = """
"use strict";
(() => {
  const POLL_MS = 2000;
  const KINDS = {
    vipps_error: "Vipps error", blocked: "blocked", would_block: "would block",
    upstream_error: "no answer", finding: "finding", event: "event",
  };
  const opened = new Set();
  let shown = null;

  const byId = (id) => document.getElementById(id);
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function cell(row, text, cls) {
    const td = el("td", cls, text);
    row.append(td);
    return td;
  }
  function moment(iso) {
    if (!iso) return el("span", null, "–");
    const node = el("time", null, iso.replace("T", " ").replace(/\\.\\d+Z$/, "Z"));
    node.dateTime = iso;
    node.title = iso;
    return node;
  }
  function badge(kind) {
    return el("span", "badge " + (KINDS[kind] ? kind : "event"), KINDS[kind] || kind);
  }
  function statusCell(row, status) {
    const td = cell(row, status === null || status === undefined ? "–" : status, "num");
    if (typeof status === "number" && status >= 400) {
      td.classList.add(status >= 500 ? "status-5" : "status-4");
    }
  }
  function pretty(body) {
    if (!body) return "(no body)";
    if (body.empty) return "(empty body)";
    if ("json" in body) return JSON.stringify(body.json, null, 2);
    return String(body.text) + (body.truncated ? "\\n… (truncated)" : "");
  }
  function finding(f) {
    let text = "[" + f.rule + "] " + (f.field ? f.field + ": " : "") + f.problem;
    if (f.value !== null && f.value !== undefined) text += " (sent " + f.value + ")";
    if (f.expected) text += "; expected " + f.expected;
    const li = el("li");
    const kind = f.action === "blocked" || f.action === "would_block" ? f.action : "finding";
    li.append(badge(kind), " " + text);
    return li;
  }
  function target(record) {
    return (record.path || "") + (record.query ? "?" + record.query : "");
  }
  function pathCell(row, text) {
    // Offer line breaks before each path segment rather than inside one.
    const td = cell(row, "", "path");
    for (const piece of String(text).split(/(?=[/?&])/)) td.append(el("wbr"), piece);
  }
  function detail(group) {
    const ex = group.example || {};
    const box = el("div");
    box.append(el("p", "caption", "Latest example, redacted"));
    const dl = el("dl", "meta");
    const pairs = [
      ["request", [ex.method, target(ex)].filter(Boolean).join(" ")],
      ["request id", ex.request_id], ["Vipps trace id", ex.upstream_trace_id],
      ["outcome", ex.outcome], ["upstream error", ex.upstream_error],
      ["duration", ex.duration_ms !== undefined ? ex.duration_ms + " ms" : null],
      ["at", ex.ts],
    ];
    for (const [name, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      dl.append(el("dt", null, name), el("dd", null, value));
    }
    box.append(dl);
    const findings = Array.isArray(ex.findings) ? ex.findings : [];
    if (findings.length) {
      const ul = el("ul", "findings");
      for (const f of findings) ul.append(finding(f));
      box.append(ul);
    }
    const shownBody = ex.event === "request" ? pretty(ex.error_body) : JSON.stringify(ex, null, 2);
    box.append(el("pre", null, shownBody));
    return box;
  }
  function renderGroups(data) {
    const body = byId("groups").tBodies[0];
    body.replaceChildren();
    for (const g of data.groups) {
      const row = el("tr", "group");
      row.dataset.key = g.key;
      cell(row, "").append(moment(g.last_seen));
      cell(row, "").append(badge(g.kind));
      cell(row, g.api);
      cell(row, g.operation);
      statusCell(row, g.status);
      cell(row, g.code, "mono code");
      cell(row, g.count, "num count");
      cell(row, "").append(moment(g.first_seen));
      const button = el("button", "toggle", opened.has(g.key) ? "Hide example" : "Show example");
      button.type = "button";
      button.setAttribute("aria-expanded", String(opened.has(g.key)));
      button.addEventListener("click", () => {
        if (opened.has(g.key)) opened.delete(g.key); else opened.add(g.key);
        renderGroups(shown);
      });
      cell(row, "", "num").append(button);
      body.append(row);
      if (opened.has(g.key)) {
        row.classList.add("open");
        const more = el("tr", "detail");
        const td = cell(more, "");
        td.colSpan = 9;
        td.append(detail(g));
        body.append(more);
      }
    }
    byId("groups-empty").hidden = data.groups.length > 0;
    const other = byId("other");
    other.hidden = !data.other;
    if (data.other) {
      other.textContent = data.other.count + " more in " + data.other.groups +
        " older groups, folded to keep at most " + data.max_groups + " rows.";
    }
  }
  function renderEntries(data) {
    const body = byId("entries").tBodies[0];
    body.replaceChildren();
    for (const e of data.entries) {
      const row = el("tr");
      cell(row, "").append(moment(e.ts));
      cell(row, "").append(badge(e.kind));
      cell(row, e.method || "", "mono");
      pathCell(row, e.path ? target(e) : e.event);
      statusCell(row, e.status);
      cell(row, e.code, "mono");
      cell(row, e.request_id || "", "mono nowrap");
      cell(row, e.duration_ms !== undefined ? e.duration_ms : "", "num mono");
      body.append(row);
    }
    byId("entries-empty").hidden = data.entries.length > 0;
    byId("entries-note").textContent = "newest first, up to " + data.max_entries;
  }
  function renderGrades(data) {
    const body = byId("grades").tBodies[0];
    body.replaceChildren();
    const grades = Array.isArray(data.grades) ? data.grades : [];
    for (const g of grades) {
      const row = el("tr", "grade");
      row.dataset.rule = g.rule;
      cell(row, g.rule, "mono code");
      cell(row, g.contradicted, "num count" + (g.contradicted ? " contradicted" : ""));
      cell(row, g.confirmed, "num count" + (g.confirmed ? " confirmed" : ""));
      cell(row, g.no_answer, "num");
      const ex = g.latest || {};
      cell(row, "").append(moment(ex.ts));
      let text = (ex.api || "") + " " + (ex.operation || "") + " → Vipps " + (ex.vipps || "");
      if (ex.status !== null && ex.status !== undefined) text += " (" + ex.status + ")";
      if (ex.field) text += " · " + ex.field + ": " + (ex.problem || "");
      if (ex.request_id) text += " · request " + ex.request_id;
      cell(row, text, "example");
      body.append(row);
    }
    byId("grades-empty").hidden = grades.length > 0;
  }
  function render(data) {
    shown = data;
    for (const [name, value] of Object.entries(data.totals)) {
      const node = byId("t-" + name);
      if (node) node.textContent = value;
    }
    byId("started").replaceChildren(moment(data.started));
    byId("groups-note").textContent = data.groups.length + " kinds, most recent first";
    renderGroups(data);
    renderGrades(data);
    renderEntries(data);
  }
  function status(live, text) {
    const node = byId("status");
    node.className = "status " + (live ? "live" : "down");
    node.textContent = text;
  }
  async function poll() {
    try {
      const response = await fetch("dashboard/data", { cache: "no-cache" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      if (!shown || data.version !== shown.version || data.started !== shown.started) render(data);
      status(true, "live · " + data.generated_at.slice(11, 19) + " UTC");
    } catch (error) {
      status(false, "no connection to the proxy (" + error.message + "), retrying");
    }
    setTimeout(poll, POLL_MS);
  }
  const wanted = new URLSearchParams(location.hash.slice(1)).get("group");
  if (wanted) opened.add(wanted);
  poll();
})();
"""

_BODY = """
<header>
  <div>
    <h1>Vipps API errors</h1>
    <p class="sub">vipps-audit-proxy · since <span id="started">–</span> · times in UTC</p>
  </div>
  <p id="status" class="status">connecting…</p>
</header>
<main>
  <section class="totals" aria-label="Totals since start">
    <div class="card vipps_errors"><span class="n" id="t-vipps_errors">0</span>
      <span class="label">errors from Vipps</span></div>
    <div class="card blocked"><span class="n" id="t-blocked">0</span>
      <span class="label">blocked by the proxy</span></div>
    <div class="card would_block"><span class="n" id="t-would_block">0</span>
      <span class="label">would block (forwarded, reported)</span></div>
    <div class="card upstream_errors"><span class="n" id="t-upstream_errors">0</span>
      <span class="label">upstream errors (no answer)</span></div>
  </section>
  <section class="panel">
    <h2>Problems<span class="note" id="groups-note"></span></h2>
    <div class="scroll"><table id="groups">
      <thead><tr>
        <th>Last seen</th><th>Kind</th><th>API</th><th>Operation</th><th class="num">Status</th>
        <th>Error code / rule</th><th class="num">Count</th><th>First seen</th><th></th>
      </tr></thead>
      <tbody></tbody>
    </table></div>
    <p id="groups-empty" class="empty">No errors or findings yet.</p>
    <p id="other" class="other" hidden></p>
  </section>
  <section class="panel">
    <h2>Vipps grades the rules<span class="note">its answers to the requests a rule would
      have blocked but forwarded (report mode or a report-only condition)</span></h2>
    <div class="scroll"><table id="grades">
      <thead><tr>
        <th>Rule</th><th class="num">Contradicted (Vipps accepted)</th>
        <th class="num">Confirmed (Vipps rejected)</th><th class="num">No answer</th>
        <th>Latest</th><th>Latest example</th>
      </tr></thead>
      <tbody></tbody>
    </table></div>
    <p id="grades-empty" class="empty">No forwarded request with a would-block finding yet.</p>
    <p class="other">A rule Vipps contradicted must not be switched to <code>block</code>: it
      would fail payments Vipps takes.</p>
  </section>
  <section class="panel">
    <h2>Latest entries<span class="note" id="entries-note"></span></h2>
    <div class="scroll"><table id="entries">
      <thead><tr>
        <th>Time</th><th>Kind</th><th>Method</th><th>Path</th><th class="num">Status</th>
        <th>Code / rule</th><th>Request id</th><th class="num">ms</th>
      </tr></thead>
      <tbody></tbody>
    </table></div>
    <p id="entries-empty" class="empty">Nothing yet.</p>
  </section>
  <footer>
    Everything here is redacted as in the audit log: secrets removed, phone numbers masked.
    Kept in memory only; a restart starts afresh. The same data as JSON:
    <a href="dashboard/data">dashboard/data</a>.
  </footer>
</main>
"""

PAGE = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    '<meta name="referrer" content="no-referrer">\n'
    "<title>Vipps API errors · vipps-audit-proxy</title>\n"
    f"<style>{STYLE}</style>\n</head>\n<body>{_BODY}<script>{SCRIPT}</script>\n</body>\n</html>\n"
)


def _source_hash(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


# Only this page's own style and script run, it may only fetch from the admin origin, and
# nothing may frame it, so a value that slipped past escaping could still load nothing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"script-src {_source_hash(SCRIPT)}",
        f"style-src {_source_hash(STYLE)}",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
