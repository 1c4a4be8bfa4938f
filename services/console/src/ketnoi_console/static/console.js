// Live inbox and case page: server-sent events from /events, then the server re-renders the
// part of the page that changed. No framework, no CDN.
(function () {
  "use strict";
  if (!document.body.dataset.live) return;
  const inbox = document.querySelector("[data-rows-url]");
  const casePage = document.querySelector("[data-timeline-url]");
  const alertBox = document.getElementById("alert");
  const alerted = new Set();

  function beep() {
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.35, 0.7].forEach(function (t) {
        const osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.frequency.value = 880; osc.connect(gain); gain.connect(ctx.destination);
        gain.gain.setValueAtTime(0.2, ctx.currentTime + t);
        osc.start(ctx.currentTime + t); osc.stop(ctx.currentTime + t + 0.2);
      });
    } catch (e) { /* no audio before the first user gesture: the banner still shows */ }
  }

  async function refresh(el, url, target) {
    const res = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (res.ok) target.innerHTML = await res.text();
  }

  let pending = null;
  function later(fn) { clearTimeout(pending); pending = setTimeout(fn, 150); }

  function refreshAll(caseId) {
    if (inbox) later(function () { refresh(inbox, inbox.dataset.rowsUrl, document.getElementById("case-rows")); });
    if (casePage && (caseId === null || casePage.dataset.case === caseId)) {
      later(function () { refresh(casePage, casePage.dataset.timelineUrl, document.getElementById("timeline")); });
    }
  }

  const source = new EventSource("/events");
  // Whatever changed while the stream was (re)connecting is fetched once it is open: no change
  // is missed between the page's render and the subscription, or across a reconnection.
  source.addEventListener("open", function () { refreshAll(null); });
  source.addEventListener("case", function (e) { refreshAll(e.data); });
  source.addEventListener("emergency", function (e) {
    if (alerted.has(e.data)) return;
    alerted.add(e.data);
    alertBox.textContent = "Tin báo KHẨN CẤP mới: " + e.data;
    alertBox.hidden = false;
    beep();
  });

  document.querySelectorAll("button.tpl").forEach(function (b) {
    b.addEventListener("click", function () {
      const box = document.getElementById("reply-text");
      box.value = b.dataset.text; box.focus();
    });
  });
})();
