// Segment Calculator: asks the server to segment and price the text as the user types.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const text = $("text"), smart = $("smart"), language = $("language"), country = $("country");
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
    const data = await r.json();
    if (!r.ok) throw new Error(data.detail || data.title || ("HTTP " + r.status));
    return data;
  }

  function showHighlighted(sent, nonGsm) {
    const box = $("highlighted");
    box.textContent = "";
    const forced = new Set(nonGsm);
    for (const ch of sent) {
      if (forced.has(ch)) {
        const m = document.createElement("mark");
        m.textContent = ch;
        m.title = "forces UCS-2";
        box.appendChild(m);
      } else {
        box.appendChild(document.createTextNode(ch));
      }
    }
  }

  function showParts(parts) {
    const list = $("parts");
    list.textContent = "";
    parts.forEach((p) => {
      const li = document.createElement("li");
      li.textContent = p;
      list.appendChild(li);
    });
  }

  async function update() {
    const mine = ++seq;
    try {
      const [plain, smartResult, estimate] = await Promise.all([
        post("/v1/sms/segments", body(smart.checked)),
        post("/v1/sms/segments", body(true)),
        post("/calculator/estimate", { ...body(smart.checked), country: country.value }),
      ]);
      if (mine !== seq) return; // a newer keystroke already answered
      $("error").hidden = true;
      $("encoding").textContent = plain.encoding;
      $("chars").textContent = String([...plain.text].length);
      $("units").textContent = String(plain.units);
      $("segments").textContent = String(plain.segments);
      $("remaining").textContent = String(plain.remaining);
      $("non-gsm").textContent = plain.non_gsm.length ? plain.non_gsm.join(" ") : "None.";
      showHighlighted(plain.text, plain.non_gsm);
      showParts(plain.parts);
      $("cost").textContent = estimate.total + " " + estimate.currency;
      $("cost-note").textContent = estimate.note;
      const saved = plain.segments - smartResult.segments;
      const sug = $("suggestion");
      if (!smart.checked && saved > 0) {
        const swaps = smartResult.replacements.map((r) => "replacing " + r[0] + " with " + r[1]);
        sug.textContent = "Smart encoding: " + swaps.slice(0, 3).join(", ") +
          (swaps.length > 3 ? " and more" : "") + " saves " + saved +
          (saved === 1 ? " segment." : " segments.");
        sug.hidden = false;
      } else {
        sug.hidden = true;
      }
    } catch (err) {
      if (mine !== seq) return;
      $("error").textContent = err.message;
      $("error").hidden = false;
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
  update();
})();
