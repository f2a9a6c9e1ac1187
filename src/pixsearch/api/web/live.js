// Live refresh: photos added, changed or removed while the page is open (`pixsearch index --watch`,
// `pixsearch serve --watch`, another client's upload) show up without a reload. While the page is
// visible and idle, it asks GET /api/changes every few seconds; when the library's generation moved, the
// photo count, the timeline and the first page of results are fetched again and swapped in whole (no
// skeleton flash). Self-contained: it only reads the page's globals (state, $, api, fetchPage, tileFor,
// describeOutcome, clearMessage, toast, PAGE from app.js; loadTimeline from filters.js).
"use strict";

(() => {
  const EVERY_MS = 4000;   // how often an idle page asks
  const IDLE_MS = 2000;    // no key, pointer, wheel or touch for this long
  let seen = null;         // the generation the page shows
  let lastActivity = Date.now();
  for (const type of ["keydown", "pointerdown", "wheel", "touchstart", "input"]) {
    addEventListener(type, () => { lastActivity = Date.now(); }, { capture: true, passive: true });
  }

  const idle = () => document.visibilityState === "visible" && !state.loading && $("viewer").hidden
    && Date.now() - lastActivity >= IDLE_MS;

  async function refreshCount() {
    const n = (await api("/api/stats")).images;
    $("stats").textContent = `${n.toLocaleString()} photo${n === 1 ? "" : "s"}`;
    if (n && !state.mode) clearMessage();  // "This library is empty" is no longer true
  }

  async function refreshResults() {
    if (!state.mode || !state.controller) return;
    if (state.items.length > PAGE) { toast("New photos in the library: search again to see them."); return; }
    const seq = state.seq;
    const page = await fetchPage(0);  // a new search aborts this (same controller) and wins
    if (seq !== state.seq || state.loading) return;
    const shown = page.results.length ? page.results : (page.below_threshold || []);
    state.items = shown.slice();
    state.nextOffset = page.next_offset;
    $("grid").replaceChildren(...shown.map((r, i) => tileFor(r, i)));
    $("more").hidden = state.nextOffset === null;
    if (state.mode !== "similar") { clearMessage(); describeOutcome(page); }
  }

  async function check() {
    try {
      if (seen === null || idle()) {
        const c = await api(seen === null ? "/api/changes" : `/api/changes?since=${seen}`);
        const moved = seen !== null && c.changed;
        seen = c.generation;
        if (moved) { await refreshCount(); await loadTimeline(); await refreshResults(); }
      }
    } catch (_) { /* a server restarting, a search aborted: the next round tries again */ }
    setTimeout(check, EVERY_MS);
  }
  check();
})();
