// pixsearch gallery: plain JS over the REST API (same origin). No framework, no build step.
"use strict";

const PAGE = 24;
const DEBOUNCE_MS = 250;
const SUGGESTIONS = [
  "a dog jumping into the water", "people climbing a rock", "a surfer riding a wave",
  "snowy mountains", "a crowd at a street festival", "a cyclist on a dirt track",
];
// No region in requests: the server applies its own (a floor no request can loosen; /api/stats names it).
// A region in this page's own URL is ignored, so the page offers no way to switch regions.
const $ = (id) => document.getElementById(id);

const state = {
  mode: null,        // "text" | "browse" (no words: the filtered photos by date) | "photo" | "similar"
                     // | "refine" (words, or the uploaded photo, plus "more/less like this": refine.js) | null
  q: "",
  filters: { from: "", to: "", camera: "", place: "", folder: "", near: "" },  // filters.js; from/to inclusive
  refine: [],        // refine.js: [{id, weight}], weight +1 "more like this", -1 "less like this"
  sort: "",          // "" (the server's default) | "relevance" | "-date" (newest first) | "date"
  view: null,        // null: the photos | "duplicates" (dupes.js)
  timeline: null,    // GET /api/timeline
  file: null,        // the photo searched with
  fileB64: null,     // its bytes as base64, once a refined search sends them (a promise)
  similarTo: null,   // photo id
  items: [],         // results shown, in order
  nextOffset: null,
  loading: false,
  controller: null,
  seq: 0,
  features: { caption: false, score: false },
  region: "",        // the server's content-policy region, from /api/stats (never sent back)
  viewerIndex: -1,
  viewerItems: null,
};

// ---------------------------------------------------------------- helpers
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function lockIcon() {
  // Inline SVG, not an emoji: phones and servers without an emoji font would show a box.
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "lock");
  svg.setAttribute("aria-hidden", "true");
  const body = document.createElementNS(ns, "rect");
  for (const [k, v] of Object.entries({ x: 5, y: 11, width: 14, height: 10, rx: 2 })) body.setAttribute(k, v);
  const arc = document.createElementNS(ns, "path");
  arc.setAttribute("d", "M8 11V8a4 4 0 0 1 8 0v3");
  svg.append(body, arc);
  return svg;
}

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.disclaimer = body && body.disclaimer;
  }
}

async function api(path, opts = {}) {
  const res = await fetch(path, opts);
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

let busy = 0;
function loading(on) {
  busy = Math.max(0, busy + (on ? 1 : -1));
  $("progress").hidden = busy === 0;
  $("spinner").hidden = busy === 0;
  document.body.setAttribute("aria-busy", busy ? "true" : "false");
}

let toastTimer = null;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

function matchOf(r) {
  // The calibrated match (0..1); the raw fused score is a ranking signal, not something to show.
  return typeof r.match === "number" ? r.match : null;
}

function badge(m) {
  const cls = m >= 0.5 ? "good" : m >= 0.2 ? "mid" : "";
  return el("span", { class: "badge " + cls, title: "match" }, el("i"), document.createTextNode(Math.round(m * 100) + "%"));
}

function captionOf(r) {
  return r.matched_caption || r.caption || (r.captions && r.captions[0]) || r.name || "";
}

const MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function dateOf(iso, withTime = false) {
  // From the ISO text's own fields, not through Date: a capture time is the wall clock where the photo was
  // taken, and must not move to the viewer's time zone (a photo from 23:30 in Tokyo stays on its day).
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(iso || "");
  if (!m || +m[2] < 1 || +m[2] > 12) return "";
  const day = `${+m[3]} ${MONTH_NAMES[+m[2] - 1]} ${m[1]}`;
  return withTime && m[4] ? `${day}, ${m[4]}:${m[5]}` : day;
}

function factsOf(r) {
  // A tile's date is the camera's: a file's modification time (taken_from "file") is not when it was taken.
  return [r.taken_from === "file" ? "" : dateOf(r.taken_at), r.camera, r.place].filter(Boolean);
}

// ---------------------------------------------------------------- messages
function showMessage(kind, title, text) {
  const m = $("message");
  m.className = "message " + kind;
  m.replaceChildren();
  if (kind === "blocked") m.append(lockIcon());
  if (title) m.append(el("h2", { text: title }));
  if (text) m.append(el("p", { text }));
  m.hidden = false;
}
function clearMessage() { $("message").hidden = true; }

// ---------------------------------------------------------------- grid
function tileFor(r, index) {
  if (r.withheld) {
    return el("div", { class: "tile withheld", "data-index": index, tabindex: "0", role: "img",
      "aria-label": r.disclaimer },
      el("div", { class: "w" }, lockIcon(), document.createTextNode(r.disclaimer)));
  }
  const img = el("img", { alt: captionOf(r), loading: "lazy", decoding: "async", src: r.thumbnail_url });
  img.addEventListener("load", () => img.classList.add("loaded"));
  const t = el("button", { class: "tile", type: "button", "data-index": index, "data-id": r.image_id,
    "data-taken": r.taken_at || null, onclick: () => openViewer(index) }, img);
  // Beside the tile, not in it (a button cannot hold buttons): shown on hover and on focus (refine.js).
  return el("div", { class: "cell" }, fillTile(t, r), refineButtons(r));
}

function fillTile(t, r) {
  const m = matchOf(r);
  if (m !== null) t.append(badge(m));
  const cap = captionOf(r);
  const facts = factsOf(r);
  if (cap || facts.length) {
    t.append(el("div", { class: "cap" }, cap ? el("span", { text: cap }) : null,
      facts.length ? el("small", { class: "facts", text: facts.join(" · ") }) : null));
  }
  return t;
}

function skeletons(n) {
  return Array.from({ length: n }, () => el("div", { class: "tile skeleton", "aria-hidden": "true" }));
}

function resetResults() {
  state.items = [];
  state.nextOffset = null;
  $("grid").replaceChildren();
  $("more").hidden = true;
  clearMessage();
}

function showWelcome(on) { $("welcome").hidden = !on; }

async function fetchPage(offset) {
  const k = PAGE;
  if (state.mode === "text" || state.mode === "browse") {
    const p = searchParams();  // filters.js: q, the filters and the order
    p.set("k", String(k));
    p.set("offset", String(offset));
    return api(`/api/search?${p}`, { signal: state.controller.signal });
  }
  if (state.mode === "refine") {  // refine.js: POST /api/search, the terms and the filters as JSON
    const body = { terms: await refineTerms(), k, offset, ...Object.fromEntries(filterParams()) };
    return api("/api/search", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: state.controller.signal });
  }
  const p = filterParams();  // filters.js: the photo searches keep to the filtered photos too
  if (state.mode === "similar") {
    p.set("k", String(k));
    p.set("offset", String(offset));
    return api(`/api/photos/${state.similarTo}/similar?${p}`, { signal: state.controller.signal });
  }
  const fd = new FormData();
  fd.append("file", state.file);
  fd.append("k", String(k));
  fd.append("offset", String(offset));
  const where = String(p);  // the filters are query parameters here too, beside the form's photo
  return api(`/api/search/image${where ? "?" + where : ""}`, { method: "POST", body: fd,
    signal: state.controller.signal });
}

async function load(reset) {
  if (!state.mode) return;
  if (!reset && (state.loading || state.nextOffset === null)) return;
  if (state.controller) state.controller.abort();
  state.controller = new AbortController();
  const seq = ++state.seq;
  const offset = reset ? 0 : state.nextOffset;
  state.loading = true;
  loading(true);
  const grid = $("grid");
  if (reset) { resetResults(); grid.append(...skeletons(8)); }
  try {
    const page = await fetchPage(offset);
    if (seq !== state.seq) return;
    grid.querySelectorAll(".skeleton").forEach((s) => s.remove());
    const start = state.items.length;
    const shown = page.results.length ? page.results : (page.below_threshold || []);
    state.items.push(...shown);
    grid.append(...shown.map((r, i) => tileFor(r, start + i)));
    state.nextOffset = page.next_offset;
    $("more").hidden = state.nextOffset === null;
    if (reset) describeOutcome(page);
  } catch (e) {
    if (e.name === "AbortError" || seq !== state.seq) return;
    grid.querySelectorAll(".skeleton").forEach((s) => s.remove());
    if (e.status === 451) {
      resetResults();
      showMessage("blocked", "", e.disclaimer || e.message);
    } else if ((state.mode === "text" || state.mode === "browse") && [400, 413, 422].includes(e.status)) {
      // about the query or a filter, never "the file"
      showMessage("error", filterError(e.message) ? "Check your filters" : "Check your search words", e.message);
    } else if (state.mode === "refine" && [400, 404, 413, 422].includes(e.status)) {
      // a bad filter, terms that cancel out, a photo no longer in the library: the chips can fix it
      showMessage("error", filterError(e.message) ? "Check your filters" : "Check your refinements", e.message);
    } else if (filterError(e.message) && [400, 422].includes(e.status)) {
      showMessage("error", "Check your filters", e.message);
    } else if (state.mode === "photo" && e.status === 413) {
      showMessage("error", "That photo is too large", e.message);
    } else if (state.mode === "photo" && (e.status === 415 || e.status === 422)) {
      showMessage("error", "That file is not a photo we can read", e.message);
    } else {
      showMessage("error", "Something went wrong", e.message);
    }
  } finally {
    if (seq === state.seq) state.loading = false;
    loading(false);
  }
}

function describeOutcome(page) {
  const res = page.results;
  if (state.mode === "browse") {
    if (!res.length) showMessage("notice", "No photos match these filters", "Widen the dates or clear a filter.");
  } else if (state.mode === "text") {
    if (!res.length && !(page.below_threshold || []).length) {
      if (filtersActive()) {
        showMessage("notice", `Nothing matches “${state.q}” with these filters`, "Widen the dates or clear a filter.");
      } else {
        showMessage("notice", `Nothing matches “${state.q}”`, "Try other words: what is in the photo, where, what is happening.");
      }
    } else if (page.confident === false) {
      showMessage("notice", "No confident match",
        `None of your photos clearly shows “${state.q}”. These are the closest ones.`);
    }
  } else if (!res.length && filtersActive()) {
    showMessage("notice", "No photos like it match these filters", "Widen the dates or clear a filter.");
  } else if (!res.length && state.mode === "refine") {
    showMessage("notice", "No other photos to show", "Remove a refinement to see more.");
  } else if (!res.length) {
    showMessage("notice", "No similar photos yet", "The library has no other photos to compare with.");
  }
}

// ---------------------------------------------------------------- text search
let debounceTimer = null;
function onInput() {
  clearTimeout(debounceTimer);
  debounceTimer = setTimeout(() => textSearch($("q").value), DEBOUNCE_MS);
}

function textSearch(text) {
  const q = text.trim();
  const same = q === state.q && ["text", "browse", "refine"].includes(state.mode) && !state.file && !state.view;
  state.q = q;
  saveUrl(false);  // filters.js: typing replaces the history entry, it does not add one per key
  if (!same) run();
}

function run() {
  // "More/less like this" chips: a refined search (the words and the chips' photos). Words: a text search
  // (filtered, in the chosen order). No words but a filter or an order: a browse of the filtered photos
  // by date. None of these: the welcome page.
  closeDuplicates();
  clearPhoto();
  const mode = state.refine.length ? "refine" : state.q ? "text" : (filtersActive() || state.sort) ? "browse" : null;
  state.mode = mode;
  showRefinements();
  showFilters();
  if (!mode) {
    state.mode = null;
    if (state.controller) state.controller.abort();
    resetResults();
    showWelcome(true);
    scheduleTimeline();
    return;
  }
  state.mode = mode;
  showWelcome(false);
  load(true);
  scheduleTimeline();
}

// ---------------------------------------------------------------- photo search
function clearPhoto() {
  $("query-photo").hidden = true;
  const img = $("query-photo-img");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.removeAttribute("src");
  state.file = null;
  state.fileB64 = null;
}

async function photoSearch(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) { toast("That is not a photo."); return; }
  closeViewer();
  closeDuplicates();
  clearPhoto();
  state.mode = "photo"; state.file = file; state.q = ""; state.similarTo = null; state.refine = [];
  $("q").value = "";
  showRefinements();
  showFilters();
  saveUrl(false);  // the words are gone; a photo search has no address (the file is not on the server)
  showWelcome(false);
  $("query-photo-img").src = URL.createObjectURL(file);
  $("query-photo-caption").textContent = "";
  $("query-photo-note").textContent = "";
  $("query-photo").hidden = false;
  load(true);
  describeUpload(file);
}

async function describeUpload(file) {
  const mine = file;
  const fd = new FormData();
  fd.append("file", file);
  loading(true);
  try {
    let text = "", note = "";
    if (state.features.caption) {
      text = (await api("/api/caption", { method: "POST", body: fd })).caption;
      note = "Caption written by pixsearch";
    } else {
      const d = await api("/api/describe", { method: "POST", body: fd });
      text = d.results.length ? d.results[0].caption : "";
      note = "Closest caption in your library";
    }
    if (state.file !== mine) return;
    $("query-photo-caption").textContent = text || "—";
    $("query-photo-note").textContent = note;
  } catch (e) {
    if (state.file !== mine) return;
    if (e.status === 451) {
      $("query-photo-caption").textContent = e.disclaimer || e.message;
    } else {
      $("query-photo-caption").textContent = "—";
      $("query-photo-note").textContent = e.message;
    }
  } finally { loading(false); }
}

function similarSearch(id) {
  closeViewer();
  clearPhoto();
  closeDuplicates();
  state.mode = "similar"; state.similarTo = id; state.q = ""; state.refine = [];
  $("q").value = "";
  showRefinements();
  showFilters();
  saveUrl(false);
  showWelcome(false);
  showMessage("notice", "Photos like the one you picked", "");
  load(true).then(() => {
    if (!$("message").classList.contains("error") && !$("message").classList.contains("blocked")) {
      $("message").hidden = state.items.length === 0 ? false : true;
    }
  });
}

// ---------------------------------------------------------------- viewer
async function openViewer(index, items) {
  state.viewerItems = items || state.items;
  const r = state.viewerItems[index];
  if (!r || r.withheld) return;
  state.viewerIndex = index;
  const v = $("viewer");
  v.hidden = false;
  document.body.style.overflow = "hidden";
  $("viewer-blocked").hidden = true;
  const img = $("viewer-img");
  img.hidden = false;
  img.src = r.thumbnail_url;       // instant, then the original replaces it
  const full = new Image();
  full.onload = () => { if (state.viewerItems[state.viewerIndex] === r) img.src = full.src; };
  full.src = r.file_url;
  img.alt = captionOf(r);
  $("viewer-title").textContent = r.name || `Photo ${r.image_id}`;
  $("viewer-meta").textContent = r.width ? `${r.width} × ${r.height}` : "";
  showFacts(r);
  $("viewer-captions").replaceChildren();
  $("viewer-labels").replaceChildren();
  $("viewer-labels-wrap").hidden = true;
  $("viewer-similar").replaceChildren(...skeletonsMini(8));
  $("viewer-open").href = r.file_url;
  $("viewer-prev").hidden = index <= 0;
  $("viewer-next").hidden = index >= state.viewerItems.length - 1;
  showScore(r);
  $("viewer-close").focus({ preventScroll: true });
  loading(true);
  try {
    const info = await api(`/api/photos/${r.image_id}`);
    if (state.viewerItems[state.viewerIndex] !== r) return;
    $("viewer-meta").textContent = `${info.width} × ${info.height} · ${info.path}`;
    $("viewer-captions").replaceChildren(...info.captions.map((c) => el("li", { class: c.source },
      document.createTextNode(c.text),
      el("span", { class: "src", text: c.source === "generated" ? `written by ${c.model || "pixsearch"}` : "written by a person" }))));
    if (info.labels.length) {
      $("viewer-labels").replaceChildren(...info.labels.slice(0, 8).map((l) =>
        el("span", { class: "chip" }, document.createTextNode(l.label), el("b", { text: Math.round(l.score * 100) + "%" }))));
      $("viewer-labels-wrap").hidden = false;
    }
  } catch (e) {
    if (e.status === 451) showBlockedInViewer(e.disclaimer || e.message);
  } finally { loading(false); }
  loadSimilar(r);
}

function showFacts(r) {
  // When, with what, where; the camera and the place are links to the photos that share them.
  const facts = [];
  const when = dateOf(r.taken_at, true);
  const fileTime = r.taken_from === "file";  // no camera date: say what the date is
  if (when) facts.push(el("span", { class: "fact", title: fileTime ? "File modified (no camera date)" : "Taken" },
    document.createTextNode(fileTime ? `file date ${when}` : when)));
  for (const [key, value, what] of [["camera", r.camera, "camera"], ["place", r.place, "place"]]) {
    if (!value) continue;
    facts.push(el("button", { type: "button", class: "fact link-button", title: `All photos from this ${what}`,
      text: value, onclick: () => { closeViewer(); setFilter(key, value); } }));
  }
  $("viewer-facts").replaceChildren(...facts);
}

function skeletonsMini(n) {
  return Array.from({ length: n }, () => el("button", { class: "skeleton", type: "button", tabindex: "-1", "aria-hidden": "true" }));
}

async function loadSimilar(r) {
  try {
    const s = await api(`/api/photos/${r.image_id}/similar?k=8`);
    if (state.viewerItems[state.viewerIndex] !== r) return;
    $("viewer-similar").replaceChildren(...s.results.map((x, i) => x.withheld
      ? el("button", { type: "button", title: x.disclaimer, "aria-label": x.disclaimer }, el("span", { class: "withheld-mini" }, lockIcon()))
      : el("button", { type: "button", title: captionOf(x), onclick: () => openViewer(i, s.results) },
        el("img", { src: x.thumbnail_url, alt: captionOf(x), loading: "lazy" }))));
  } catch (_) {
    $("viewer-similar").replaceChildren();
  }
}

async function showScore(r) {
  const block = $("viewer-score");
  const q = state.mode === "text" ? state.q : "";
  if (!q) { block.hidden = true; return; }
  $("viewer-score-q").textContent = q;
  let m = matchOf(r), detail = "";
  block.hidden = m === null;
  setMeter(m);
  if (state.features.score) {
    try {
      const s = await api(`/api/photos/${r.image_id}/score?text=${encodeURIComponent(q)}`);
      if (state.viewerItems[state.viewerIndex] !== r) return;
      m = s.score;
      detail = s.low_confidence ? " · low confidence" : "";
      block.hidden = false;
      setMeter(m, detail);
    } catch (_) { /* keep the search's own match */ }
  }
}

function setMeter(m, detail = "") {
  if (m === null || m === undefined) return;
  $("viewer-score-bar").style.width = Math.round(m * 100) + "%";
  // The match is a calibrated probability that a person would say the words describe the photo.
  const words = m >= 0.5 ? "a good match" : m >= 0.2 ? "a plausible match" : "an unlikely match";
  $("viewer-score-text").textContent = `${Math.round(m * 100)}% — ${words}${detail}`;
}

function showBlockedInViewer(text) {
  $("viewer-img").hidden = true;
  const b = $("viewer-blocked");
  b.textContent = text;
  b.hidden = false;
}

function closeViewer() {
  if ($("viewer").hidden) return;
  $("viewer").hidden = true;
  $("viewer-img").removeAttribute("src");
  document.body.style.overflow = "";
  const items = state.viewerItems;
  const idx = state.viewerIndex;
  state.viewerIndex = -1;
  if (items === state.items) {
    const t = document.querySelector(`.tile[data-index="${idx}"]`);
    if (t) t.focus();
  }
}

function step(delta) {
  const items = state.viewerItems || [];
  let i = state.viewerIndex + delta;
  while (i >= 0 && i < items.length && items[i].withheld) i += delta;
  if (i >= 0 && i < items.length) openViewer(i, items);
}

// ---------------------------------------------------------------- keyboard
function gridColumns() {
  const cols = getComputedStyle($("grid")).gridTemplateColumns.split(" ").filter(Boolean);
  return Math.max(1, cols.length);
}

document.addEventListener("keydown", (ev) => {
  const inViewer = !$("viewer").hidden;
  if (inViewer) {
    if (ev.key === "Escape") { ev.preventDefault(); closeViewer(); }
    else if (ev.key === "ArrowRight") { ev.preventDefault(); step(1); }
    else if (ev.key === "ArrowLeft") { ev.preventDefault(); step(-1); }
    return;
  }
  const active = document.activeElement;
  const typing = active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA");
  if (ev.key === "/" && !typing) { ev.preventDefault(); $("q").focus(); $("q").select(); return; }
  if (active === $("q") && ev.key === "ArrowDown") {
    const first = document.querySelector(".tile:not(.skeleton)");
    if (first) { ev.preventDefault(); first.focus(); }
    return;
  }
  if (active === $("q") && ev.key === "Escape") { $("q").value = ""; textSearch(""); return; }
  if (!$("dupes").hidden && ev.key === "Escape" && !typing) { leaveDuplicates(); return; }
  if (active && active.classList.contains("tile")) {
    const i = Number(active.dataset.index);
    const cols = gridColumns();
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols };
    if (ev.key in moves) {
      ev.preventDefault();
      const j = i + moves[ev.key];
      if (j < 0) { $("q").focus(); return; }
      const t = document.querySelector(`.tile[data-index="${j}"]`);
      if (t) { t.focus(); t.scrollIntoView({ block: "nearest", behavior: "smooth" }); }
      if (j >= state.items.length - cols) load(false);
    } else if (ev.key === "Escape") { $("q").focus(); }
  }
});

// ---------------------------------------------------------------- drop, paste, pick
let dragDepth = 0;
const hasFiles = (ev) => ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes("Files");
window.addEventListener("dragenter", (ev) => { if (!hasFiles(ev)) return; dragDepth++; $("dropzone").hidden = false; });
window.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) $("dropzone").hidden = true; });
window.addEventListener("dragover", (ev) => { if (hasFiles(ev)) ev.preventDefault(); });
window.addEventListener("drop", (ev) => {
  if (!hasFiles(ev)) return;
  ev.preventDefault();
  dragDepth = 0;
  $("dropzone").hidden = true;
  const f = Array.from(ev.dataTransfer.files).find((x) => !x.type || x.type.startsWith("image/"));
  if (f) photoSearch(f); else toast("Drop a photo (JPEG, PNG, WebP, HEIC…).");
});
document.addEventListener("paste", (ev) => {
  const items = Array.from((ev.clipboardData && ev.clipboardData.items) || []);
  const it = items.find((x) => x.kind === "file" && x.type.startsWith("image/"));
  if (!it) return;
  ev.preventDefault();
  photoSearch(it.getAsFile());
});
$("photo-button").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", () => { photoSearch($("file").files[0]); $("file").value = ""; });
$("query-photo-clear").addEventListener("click", () => { run(); $("q").focus(); });

// ---------------------------------------------------------------- wiring
$("q").addEventListener("input", onInput);
$("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); clearTimeout(debounceTimer); textSearch($("q").value); });
$("more-button").addEventListener("click", () => load(false));
$("viewer-close").addEventListener("click", closeViewer);
$("viewer-prev").addEventListener("click", () => step(-1));
$("viewer-next").addEventListener("click", () => step(1));
$("viewer").addEventListener("click", (ev) => { if (ev.target === $("viewer") || ev.target.classList.contains("viewer-stage")) closeViewer(); });
$("viewer-find-similar").addEventListener("click", () => {
  const r = (state.viewerItems || [])[state.viewerIndex];
  if (r) similarSearch(r.image_id);
});
$("viewer-more").addEventListener("click", () => refineWithViewed(1));
$("viewer-less").addEventListener("click", () => refineWithViewed(-1));
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && state.items.length) load(false);
}, { rootMargin: "600px" }).observe($("sentinel"));

$("suggestions").append(...SUGGESTIONS.map((s) => el("button", { class: "chip", type: "button", text: s,
  onclick: () => { $("q").value = s; textSearch(s); } })));

async function init() {
  if (matchMedia("(max-width: 760px)").matches) $("q").placeholder = "Describe a photo…";
  try {
    const s = await api("/api/stats");
    state.features = s.features || state.features;
    state.region = s.region || "";
    document.documentElement.dataset.region = state.region;
    const n = s.images;
    $("stats").textContent = `${n.toLocaleString()} photo${n === 1 ? "" : "s"}`;
    if (!n) {
      showMessage("notice", "This library is empty",
        "Add photos with `pixsearch index ~/Pictures` (or POST /api/photos), then reload this page.");
    }
  } catch (e) {
    $("stats").textContent = "";
    showMessage("error", "The library could not be opened", e.message);
  }
  fromUrl();  // filters.js: words, filters, order and view from the address (reload, a shared link)
  if (!state.q && !state.view && matchMedia("(hover: hover)").matches) $("q").focus();
  loadTimeline();
}
addEventListener("popstate", () => fromUrl());  // back and forward: the address holds the whole state
// After every script of the page has run (filters.js, dupes.js define what init calls).
document.addEventListener("DOMContentLoaded", init);
