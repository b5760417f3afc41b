// Segment Calculator: asks this server to segment (POST /v1/sms/segments) and price
// (POST /calculator/estimate) the text as the user types; no key needed.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const text = $("text"), smart = $("smart"), language = $("language"), country = $("country");
  const graphemes = (typeof Intl !== "undefined" && Intl.Segmenter)
    ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;
  let timer = null, seq = 0;

  function body(smartEncoding) {
    const out = { text: text.value, smart_encoding: smartEncoding };
    if (language.value) out.language = language.value;
    return out;
  }

  async function post(url, payload) {
    const r = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(payload),
    });
    let data = null;
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error((data && (data.detail || data.title)) || ("HTTP " + r.status));
    return data;
  }

  function countCharacters(s) {
    if (graphemes) { let n = 0; for (const _ of graphemes.segment(s)) n++; return n; }
    return [...s].length;
  }

  function showHighlighted(sent, nonGsm) {
    const box = $("highlighted");
    box.textContent = "";
    const forced = new Set(nonGsm);
    for (const ch of sent) { // code points, like the server's non_gsm list
      if (forced.has(ch)) {
        const m = document.createElement("mark");
        m.textContent = show(ch);  // an invisible one by its code point, or the mark is empty
        m.title = "forces UCS-2";
        box.appendChild(m);
      } else {
        box.appendChild(document.createTextNode(ch));
      }
    }
  }

  function showParts(parts, units, capacity) {
    const list = $("parts");
    list.textContent = "";
    parts.forEach((p, i) => {
      const li = document.createElement("li");
      const info = document.createElement("span");
      info.className = "help";
      info.textContent = ` (${units[i]} of ${capacity} units)`;
      li.textContent = p;
      li.appendChild(info);
      list.appendChild(li);
    });
  }

  // Characters a reader cannot see (format characters such as U+200B, controls, separators and
  // spaces) are shown by code point only, as `talktime segments` does; the others as themselves.
  const INVISIBLE = /^[\p{C}\p{Z}\s]$/u;
  const codePoint = (ch) => "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
  const show = (ch) => INVISIBLE.test(ch) ? codePoint(ch) : ch;

  function describe(ch) {
    return INVISIBLE.test(ch) ? codePoint(ch) : `${ch} (${codePoint(ch)})`;
  }

  async function update() {
    const mine = ++seq;
    try {
      const [plain, smartResult] = await Promise.all([
        post("/v1/sms/segments", body(smart.checked)),
        post("/v1/sms/segments", body(true)),
      ]);
      if (mine !== seq) return; // a newer keystroke already answered
      $("error").hidden = true;
      $("encoding").textContent = plain.encoding;
      $("chars").textContent = String(countCharacters(plain.text));
      $("units").textContent = String(plain.units);
      $("segments").textContent = String(plain.segments);
      $("remaining").textContent = String(plain.remaining);
      $("non-gsm").textContent = plain.non_gsm.length
        ? plain.non_gsm.map(describe).join(", ") : "None.";
      showHighlighted(plain.text, plain.non_gsm);
      showParts(plain.parts, plain.part_units, plain.part_capacity);
      const sug = $("suggestion");
      const saved = plain.segments - smartResult.segments;
      // no suggestion when smart encoding would leave nothing (a text of only invisible
      // characters): a send, a quote and the estimate refuse that as an empty message
      const empties = plain.text !== "" && smartResult.text === "";
      if (!smart.checked && !empties && smartResult.replacements.length &&
          plain.encoding !== smartResult.encoding) {
        const shown = (t) => t ? [...t].map(show).join("") : "nothing";
        const swaps = smartResult.replacements.map((r) => shown(r[0]) + " → " + shown(r[1]));
        sug.textContent = "Smart encoding would replace " + swaps.slice(0, 4).join(", ") +
          (swaps.length > 4 ? " and more" : "") + " and send this as " + smartResult.encoding +
          (saved > 0 ? ", saving " + saved + (saved === 1 ? " segment." : " segments.") : ".");
        sug.hidden = false;
      } else {
        sug.hidden = true;
      }
    } catch (err) {
      if (mine !== seq) return;
      $("error").textContent = err.message;
      $("error").hidden = false;
      return;
    }
    if (!text.value) { // nothing to price yet (the API refuses an empty message)
      $("cost").textContent = "–";
      $("cost-note").textContent = "";
      return;
    }
    try {
      const estimate = await post("/calculator/estimate", { ...body(smart.checked), country: country.value });
      if (mine !== seq) return;
      $("cost").textContent = estimate.total + " " + estimate.currency;
      $("cost-note").textContent = estimate.note;
    } catch (err) {
      if (mine !== seq) return;
      $("cost").textContent = "–";
      $("cost-note").textContent = err.message;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(update, 120);
  }

  [text, smart, language, country].forEach((el) => {
    el.addEventListener("input", schedule);
    el.addEventListener("change", schedule);
  });
  // results update as you type: the form is never sent (a handler here, not an inline
  // onsubmit attribute, which the pages' Content-Security-Policy refuses to run)
  $("calc").addEventListener("submit", (ev) => ev.preventDefault());
  update();
})();
