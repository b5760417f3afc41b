// Usage page: signs in with an API key (kept in sessionStorage) and drives the JSON API with it.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const KEY = "talktime.api_key";
  const COLORS = { sms: "var(--sms)", call: "var(--call)", number: "var(--number)" };

  function key() { return sessionStorage.getItem(KEY); }

  async function api(method, path, payload, accept) {
    const headers = { "Authorization": "Bearer " + key(), "Accept": accept || "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (method === "POST") headers["Idempotency-Key"] = crypto.randomUUID();
    const r = await fetch(path, {
      method, headers, body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    if (!r.ok) {
      let detail = "HTTP " + r.status;
      try { const p = await r.json(); detail = p.detail || p.title || detail; } catch (e) { /* not JSON */ }
      const err = new Error(detail);
      err.status = r.status;
      throw err;
    }
    if (accept && accept !== "application/json") return r.blob();
    return r.status === 204 ? null : r.json();
  }

  const usd = (v) => (v === null || v === undefined) ? "none" : "$" + v;
  const when = (iso) => iso ? new Date(iso).toLocaleString() : "–";

  function status(id, text, ok) {
    const el = $(id);
    el.textContent = text;
    el.className = ok ? "ok" : "error";
  }

  function showBalance(b) {
    $("free").textContent = usd(b.free.remaining);
    $("free-resets").textContent = when(b.free.expires_at);
    $("paid").textContent = usd(b.paid);
    $("held").textContent = usd(b.held);
    $("available").textContent = usd(b.available);
    $("limit").textContent = b.monthly_limit.limit === null ? "No limit" : usd(b.monthly_limit.limit);
    $("limit-usage").textContent = "Paid credit used this period: " + usd(b.monthly_limit.used) + ".";
    const ar = b.auto_recharge;
    $("recharge-enabled").checked = !!ar.enabled;
    $("recharge-threshold").value = ar.threshold || "";
    $("recharge-amount").value = ar.amount || "";
    $("limit-amount").value = b.monthly_limit.limit === null ? "" : b.monthly_limit.limit;
  }

  function drawChart(days) {
    // days: [{day: "2026-11-01", sms: micro-dollars as number, call: ..., number: ...}]
    const box = $("chart");
    const W = 640, H = 220, pad = 30;
    const max = Math.max(1, ...days.map((d) => d.sms + d.call + d.number));
    const bw = days.length ? (W - pad) / days.length : W;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H + 20}`);
    const axis = document.createElementNS(ns, "line");
    Object.entries({ x1: pad, y1: H, x2: W, y2: H, stroke: "#4a5360" }).forEach(([k, v]) => axis.setAttribute(k, v));
    svg.appendChild(axis);
    days.forEach((d, i) => {
      let y = H;
      ["sms", "call", "number"].forEach((ch) => {
        const h = (d[ch] / max) * (H - 10);
        if (h <= 0) return;
        y -= h;
        const r = document.createElementNS(ns, "rect");
        Object.entries({ x: pad + i * bw + 1, y, width: Math.max(1, bw - 2), height: h, fill: COLORS[ch] })
          .forEach(([k, v]) => r.setAttribute(k, v));
        r.setAttribute("class", "bar bar-" + ch);
        const t = document.createElementNS(ns, "title");
        t.textContent = `${d.day} ${ch}: $${(d[ch] / 1e6).toFixed(4)}`;
        r.appendChild(t);
        svg.appendChild(r);
      });
      if (days.length <= 31 && (i % 5 === 0 || i === days.length - 1)) {
        const lbl = document.createElementNS(ns, "text");
        Object.entries({ x: pad + i * bw, y: H + 15, "font-size": 10, fill: "#4a5360" })
          .forEach(([k, v]) => lbl.setAttribute(k, v));
        lbl.textContent = d.day.slice(5);
        svg.appendChild(lbl);
      }
    });
    const top = document.createElementNS(ns, "text");
    Object.entries({ x: 0, y: 12, "font-size": 10, fill: "#4a5360" }).forEach(([k, v]) => top.setAttribute(k, v));
    top.textContent = "$" + (max / 1e6).toFixed(2);
    svg.appendChild(top);
    box.textContent = "";
    box.appendChild(svg);
    box.setAttribute("aria-label", "Daily spend by channel over " + days.length + " days");
  }

  function showRecent(entries) {
    const body = $("recent");
    body.textContent = "";
    entries.forEach((e) => {
      const tr = document.createElement("tr");
      const cells = [when(e.created_at), e.kind + (e.reference ? " · " + e.reference : ""), "", usd(e.amount)];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        if (i === 3) td.className = "num";
        if (i === 2) {
          const ul = document.createElement("ul");
          ul.className = "lines";
          (e.lines || []).forEach((l) => {
            const li = document.createElement("li");
            li.textContent = `${l.description}: ${l.quantity} ${l.unit} × $${l.unit_price} = $${l.amount}`;
            ul.appendChild(li);
          });
          td.appendChild(ul);
        } else {
          td.textContent = c;
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    if (!entries.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = "No charges yet this period.";
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  async function load() {
    const b = await api("GET", "/v1/balance");
    showBalance(b);
    $("account-name").textContent = "Account " + (b.account_name || b.account_id);
    const usage = await api("GET", "/v1/usage/daily");
    drawChart(usage.days);
    const ledger = await api("GET", "/v1/ledger?limit=20&kind=usage");
    showRecent(ledger.entries);
  }

  async function signIn(k) {
    sessionStorage.setItem(KEY, k);
    try {
      await load();
      $("signin").hidden = true;
      $("account").hidden = false;
    } catch (err) {
      sessionStorage.removeItem(KEY);
      $("signin").hidden = false;
      $("account").hidden = true;
      $("signin-error").textContent = err.status === 401 ? "That API key was not accepted." : err.message;
      $("signin-error").hidden = false;
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

  $("recharge-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", "/v1/settings/auto-recharge", {
        enabled: $("recharge-enabled").checked,
        threshold: $("recharge-threshold").value.trim(),
        amount: $("recharge-amount").value.trim(),
      });
      status("recharge-status", "Auto-recharge saved.", true);
      await load();
    } catch (err) { status("recharge-status", err.message, false); }
  });

  $("limit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = $("limit-amount").value.trim();
    try {
      await api("PUT", "/v1/settings/monthly-limit", { limit: v === "" ? null : v });
      status("limit-status", "Monthly limit saved.", true);
      await load();
    } catch (err) { status("limit-status", err.message, false); }
  });

  $("buy-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/v1/credits", { amount: $("buy-amount").value.trim() });
      status("buy-status", "Credit added.", true);
      await load();
    } catch (err) { status("buy-status", err.message, false); }
  });

  async function download(fmt) {
    const month = $("statement-month").value.trim();
    const type = fmt === "pdf" ? "application/pdf" : "text/csv";
    try {
      const blob = await api("GET", "/v1/statements/" + encodeURIComponent(month), undefined, type);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `talktime-statement-${month}.${fmt}`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      status("statement-status", "Statement for " + month + " downloaded.", true);
    } catch (err) { status("statement-status", err.message, false); }
  }
  $("statement-csv").addEventListener("click", () => download("csv"));
  $("statement-pdf").addEventListener("click", () => download("pdf"));

  const now = new Date();
  $("statement-month").value = now.toISOString().slice(0, 7);
  if (key()) signIn(key()); else $("signin").hidden = false;
})();
