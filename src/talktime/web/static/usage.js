// Usage page: signs in with the account's API key (kept in sessionStorage, this tab only) and
// drives the JSON API with it: /v1/balance, /v1/settings/*, /v1/credits, /v1/ledger,
// /v1/usage (the chart) and /v1/statements/{month}. Refusals show the API's sentence.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const KEY = "talktime.api_key";
  const SERIES = [
    { channel: "sms", label: "SMS", color: "#0b5cad" },
    { channel: "call", label: "Calls", color: "#b3541e" },
    { channel: "number", label: "Numbers", color: "#2f7d32" },
  ];
  let currency = "USD";

  function key() { return sessionStorage.getItem(KEY); }

  // An Idempotency-Key: 128 random bits as a version-4 UUID. crypto.getRandomValues exists in
  // every context; crypto.randomUUID only in secure ones (HTTPS or localhost), so "Buy credits"
  // on plain HTTP at any other host name threw before sending anything.
  function newIdempotencyKey() {
    const b = new Uint8Array(16);
    if (typeof crypto !== "undefined" && typeof crypto.getRandomValues === "function") {
      crypto.getRandomValues(b);
    } else {  // no Web Crypto at all (very old browsers): a weaker but still random key
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
    }
    b[6] = (b[6] & 0x0f) | 0x40;  // version 4
    b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  async function api(method, path, payload, accept, idempotencyKey) {
    const headers = { "Authorization": "Bearer " + key(), "Accept": accept || "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    const r = await fetch(path, {
      method, headers, body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    if (!r.ok) {
      let detail = "The server answered " + r.status + ".";
      try { const p = await r.json(); detail = p.detail || p.title || detail; } catch (e) { /* not JSON */ }
      const err = new Error(detail);
      err.status = r.status;
      throw err;
    }
    if (accept && accept !== "application/json") return r.blob();
    return r.status === 204 ? null : r.json();
  }

  const money = (v) => (v === null || v === undefined) ? "–" : v + " " + currency;
  const when = (iso) => iso ? new Date(iso).toLocaleString(undefined,
    { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }) + " UTC" : "–";
  const day = (iso) => iso ? new Date(iso).toLocaleDateString(undefined,
    { dateStyle: "medium", timeZone: "UTC" }) : "–";
  // Decimal strings to numbers for drawing only (never for amounts shown).
  const num = (v) => Number(v) || 0;
  // Exact money: decimal strings <-> integer micro-units (1 unit = 1,000,000).
  function micros(v) {
    const m = /^(-?)([0-9]+)(?:\.([0-9]{1,6}))?$/.exec(String(v));
    if (!m) return 0;
    const value = parseInt(m[2], 10) * 1000000 + parseInt((m[3] || "").padEnd(6, "0"), 10);
    return m[1] ? -value : value;
  }
  function decimal(u) {
    const sign = u < 0 ? "-" : "", a = Math.abs(u);
    const frac = String(a % 1000000).padStart(6, "0");
    const cut = frac.replace(/0+$/, "").length;
    return sign + Math.floor(a / 1000000) + "." + frac.slice(0, Math.max(4, cut));
  }

  function status(id, text, ok) {
    const el = $(id);
    el.textContent = text;
    el.className = ok === undefined ? "help" : (ok ? "ok" : "error");
  }

  // What the page last wrote into each settings control. A refresh overwrites a control only
  // while it still holds that (the user has not edited it since), or when `force` says so: the
  // saved form's own controls, or every control when signing in.
  const filled = new WeakMap();
  function fill(el, value, force) {
    const prop = el.type === "checkbox" ? "checked" : "value";
    if (!force && filled.has(el) && el[prop] !== filled.get(el)) return;  // an unsaved edit
    el[prop] = value;
    filled.set(el, el[prop]);
  }

  // `reset`: the id of the form whose controls take the server's values whatever they hold
  // (the form just saved), "all" (signing in), or null (a refresh: only unedited controls).
  function showBalance(b, reset) {
    currency = b.currency;
    document.querySelectorAll(".currency").forEach((el) => { el.textContent = currency; });
    $("free").textContent = money(b.free);
    $("free-resets").textContent = day(b.period_end);  // the free monthly credit renews then
    $("paid").textContent = money(b.paid);
    $("held").textContent = money(b.held);
    $("available").textContent = money(b.available);
    $("limit").textContent = b.monthly_limit === null ? "No limit" : money(b.monthly_limit);
    const low = b.low_balance_threshold ?? null;  // null: no balance.low events
    $("lowbal").textContent = low === null ? "Off" : money(low);
    const meter = $("limit-meter");
    if (b.monthly_limit === null) {
      $("limit-usage").textContent = "Paid credit used this period: " + money(b.period_usage) +
        " (no monthly limit).";
      meter.hidden = true;
    } else {
      const used = num(b.period_usage), cap = num(b.monthly_limit);
      $("limit-usage").textContent = "Paid credit used this period: " + money(b.period_usage) +
        " of " + money(b.monthly_limit) + ".";
      meter.max = cap > 0 ? cap : 1;
      meter.value = Math.min(used, meter.max);
      meter.hidden = false;
    }
    $("period").textContent = "Billing period " + when(b.period_start) + " to " + when(b.period_end) + ".";
    const ar = b.auto_recharge;
    const put = (id, value) => {
      const el = $(id);
      fill(el, value, reset === "all" || reset === el.form.id);
    };
    put("recharge-enabled", !!ar.enabled);
    put("recharge-threshold", ar.threshold || "");
    put("recharge-amount", ar.amount || "");
    $("recharge-note").textContent = ar.disabled_reason
      ? "Auto-recharge was turned off: " + ar.disabled_reason : "";
    put("limit-amount", b.monthly_limit === null ? "" : b.monthly_limit);
    put("lowbal-amount", low === null ? "" : low);
  }

  function svgEl(name, attrs, text) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", name);
    Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, String(v)));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function spendByDay(usage, start, end) {
    // /v1/usage rows grouped by day and channel -> every UTC day of the period, in micro-units.
    const days = [];
    const index = new Map();
    for (let t = new Date(start.slice(0, 10) + "T00:00:00Z"); t < new Date(end); t.setUTCDate(t.getUTCDate() + 1)) {
      const d = { day: t.toISOString().slice(0, 10) };
      SERIES.forEach((s) => { d[s.channel] = 0; });
      index.set(d.day, d);
      days.push(d);
    }
    const totals = {};
    SERIES.forEach((s) => { totals[s.channel] = 0; });
    usage.rows.forEach((r) => {
      const d = index.get(r.day);
      if (!d || !(r.channel in totals)) return;
      d[r.channel] += micros(r.amount);
      totals[r.channel] += micros(r.amount);
    });
    return { days, totals };
  }

  function drawChart(spend) {
    const box = $("chart");
    const days = spend.days;
    const W = 720, H = 220, left = 56, right = 24, bottom = 24, top = 10;
    const plotH = H - bottom - top;
    const totals = days.map((d) => SERIES.reduce((s, x) => s + d[x.channel], 0));
    const max = Math.max(...totals, 0);
    const scale = max > 0 ? max : 1;
    const bw = (W - left - right) / Math.max(days.length, 1);
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-labelledby": "chart-title chart-desc" });
    svg.appendChild(svgEl("title", { id: "chart-title" }, "Daily spend by channel"));
    const spent = SERIES.filter((s) => spend.totals[s.channel] > 0)
      .map((s) => s.label + " " + decimal(spend.totals[s.channel]) + " " + currency);
    svg.appendChild(svgEl("desc", { id: "chart-desc" },
      days.length + " days; " + (spent.length ? "spent: " + spent.join(", ") : "nothing spent yet") + "."));
    [0, 0.5, 1].forEach((f) => {
      const y = top + plotH - f * plotH;
      svg.appendChild(svgEl("line", { x1: left, y1: y, x2: W - right, y2: y, stroke: "#c9d1da" }));
      svg.appendChild(svgEl("text", { x: left - 6, y: y + 4, "font-size": 11, fill: "#4a5360",
        "text-anchor": "end" }, decimal(Math.round(scale * f))));
    });
    days.forEach((d, i) => {
      let y = top + plotH;
      SERIES.forEach((s) => {
        const v = d[s.channel];
        if (v <= 0) return;
        const h = Math.max(1, (v / scale) * plotH);
        y -= h;
        const r = svgEl("rect", { x: left + i * bw + 1, y, width: Math.max(1, bw - 2), height: h,
          fill: s.color, class: "bar bar-" + s.channel, "data-day": d.day });
        r.appendChild(svgEl("title", {}, `${d.day} ${s.label}: ${decimal(v)} ${currency}`));
        svg.appendChild(r);
      });
      if (i % 5 === 0 || i === days.length - 1) {
        svg.appendChild(svgEl("text", { x: left + i * bw + bw / 2, y: H - 6, "font-size": 11,
          fill: "#4a5360", "text-anchor": "middle" }, d.day.slice(5)));
      }
    });
    box.textContent = "";
    box.appendChild(svg);
    $("chart-total").textContent = spent.length
      ? "This period: " + spent.join(", ") + "." : "Nothing spent this period yet.";
  }

  function lineText(l) {
    if (l.description) {
      // Units are plural nouns ("segments", "minutes", "months"): one of them is singular.
      const unit = String(l.quantity) === "1" ? String(l.unit).replace(/s$/, "") : l.unit;
      return `${l.description}: ${l.quantity} ${unit} × ${l.unit_price} = ${l.amount}`;
    }
    const what = [l.kind, l.number].filter(Boolean).join(" ");
    const amount = typeof l.amount === "number" ? decimal(l.amount) : l.amount;
    return `${what}: ${amount}`;
  }

  function showRecent(entries) {
    // One charge can take credit from several grants (free first, then paid): one ledger entry
    // each, sharing the transaction id and the priced lines. Show one row per charge.
    const charges = [];
    const byTx = new Map();
    entries.forEach((e) => {
      let c = byTx.get(e.transaction_id);
      if (!c) {
        c = { created_at: e.created_at, reference: e.reference, lines: e.lines, micros: 0 };
        byTx.set(e.transaction_id, c);
        charges.push(c);
      }
      c.micros -= micros(e.amount);
    });
    const body = $("recent");
    body.textContent = "";
    charges.slice(0, 20).forEach((c) => {
      const tr = document.createElement("tr");
      const t = document.createElement("td"); t.textContent = when(c.created_at);
      const what = document.createElement("td"); what.textContent = c.reference || "charge";
      const lines = document.createElement("td");
      const ul = document.createElement("ul"); ul.className = "lines";
      (Array.isArray(c.lines) ? c.lines : []).forEach((l) => {
        const li = document.createElement("li"); li.textContent = lineText(l); ul.appendChild(li);
      });
      lines.appendChild(ul);
      const amount = document.createElement("td"); amount.className = "num";
      amount.textContent = decimal(c.micros) + " " + currency;
      [t, what, lines, amount].forEach((td) => tr.appendChild(td));
      body.appendChild(tr);
    });
    if (!charges.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = "No charges yet.";
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  async function load(reset) {
    const b = await api("GET", "/v1/balance");
    showBalance(b, reset);
    const range = new URLSearchParams({ since: b.period_start, until: b.period_end });
    range.append("group_by", "day");
    range.append("group_by", "channel");
    const [usage, ledger] = await Promise.all([
      api("GET", "/v1/usage?" + range.toString()),
      api("GET", "/v1/ledger?limit=100&kind=usage"),
    ]);
    drawChart(spendByDay(usage, b.period_start, b.period_end));
    showRecent(ledger.entries);
  }

  async function signIn(k) {
    sessionStorage.setItem(KEY, k);
    try {
      await load("all");
      $("signin").hidden = true;
      $("account").hidden = false;
      $("key-prefix").textContent = k.slice(0, 10) + "…";
    } catch (err) {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      $("account").hidden = true;
      $("signin-error").textContent = err.message;
      $("signin-error").hidden = false;
      $("api-key").focus();
    }
  }

  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("api-key").value.trim());
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    location.reload();
  });

  // After a save: new figures everywhere, the saved form's controls as stored, and the other
  // forms' unsaved edits kept.
  async function refresh(id, form) {
    try { await load(form || null); } catch (err) { status(id, err.message, false); }
  }

  $("recharge-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status("recharge-status", "Saving…");
    try {
      const body = { enabled: $("recharge-enabled").checked };
      const threshold = $("recharge-threshold").value.trim();
      const amount = $("recharge-amount").value.trim();
      // an empty box is left out: turning it off needs neither (the stored values are kept),
      // and turning it on without one is refused with the API's sentence ("threshold:
      // required when `enabled` is true")
      if (threshold !== "") body.threshold = threshold;
      if (amount !== "") body.amount = amount;
      await api("PUT", "/v1/settings/auto-recharge", body);
      await refresh("recharge-status", "recharge-form");
      status("recharge-status", "Auto-recharge saved.", true);
    } catch (err) { status("recharge-status", err.message, false); }
  });

  $("limit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status("limit-status", "Saving…");
    const v = $("limit-amount").value.trim();
    try {
      await api("PUT", "/v1/settings/monthly-limit", { monthly_limit: v === "" ? null : v });
      await refresh("limit-status", "limit-form");
      status("limit-status", v === "" ? "Monthly limit removed." : "Monthly limit saved.", true);
    } catch (err) { status("limit-status", err.message, false); }
  });

  $("lowbal-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status("lowbal-status", "Saving…");
    const v = $("lowbal-amount").value.trim();
    try {
      await api("PUT", "/v1/settings/low-balance", { low_balance_threshold: v === "" ? null : v });
      await refresh("lowbal-status", "lowbal-form");
      status("lowbal-status",
        v === "" ? "Low-balance alert turned off." : "Low-balance alert saved.", true);
    } catch (err) { status("lowbal-status", err.message, false); }
  });

  // One Idempotency-Key per purchase: made for the amount in the box, kept through failures
  // (a retry after a lost answer is replayed by the server, not bought again), dropped when the
  // amount changes or the purchase succeeds. The button is disabled while a purchase is in
  // flight, so a double click or a second Enter is one purchase.
  let purchaseKey = null;
  let buying = false;
  $("buy-amount").addEventListener("input", () => { purchaseKey = null; });
  $("buy-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (buying) return;
    buying = true;
    const button = $("buy-form").querySelector("button[type=submit]");
    button.disabled = true;
    status("buy-status", "Buying…");
    try {
      purchaseKey = purchaseKey || newIdempotencyKey();
      const p = await api("POST", "/v1/credits", { amount: $("buy-amount").value.trim() },
        undefined, purchaseKey);
      purchaseKey = null;
      $("buy-amount").value = "";  // the next purchase is a new amount and a new key
      await refresh("buy-status");
      status("buy-status", p.amount + " " + currency + " of credit added.", true);
    } catch (err) {
      status("buy-status", err.message, false);
    } finally {
      buying = false;
      button.disabled = false;
    }
  });

  async function download(fmt) {
    const month = $("statement-month").value.trim();
    const type = fmt === "pdf" ? "application/pdf" : "text/csv";
    status("statement-status", "Preparing the statement…");
    try {
      const blob = await api("GET", "/v1/statements/" + encodeURIComponent(month), undefined, type);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `talktime-statement-${month}.${fmt}`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      status("statement-status", "Statement for " + month + " downloaded (" + fmt.toUpperCase() + ").", true);
    } catch (err) { status("statement-status", err.message, false); }
  }
  $("statement-csv").addEventListener("click", () => download("csv"));
  $("statement-pdf").addEventListener("click", () => download("pdf"));

  $("statement-month").value = new Date().toISOString().slice(0, 7);
  if (key()) signIn(key()); else $("signin").hidden = false;
})();
