// Filters, order and the timeline: which photos a search or a browse shows, and in what order.
// The page's address holds the whole state (?q=&from=&to=&camera=&place=&folder=&near=&sort=&view=, and
// refine.js's &more=&less=), so a reload, a shared link and the back and forward buttons all show what was
// shown (a photo searched with is not on the server: it has no address). `from` and `to` are inclusive
// periods as people say them ("from May to May" is May); the API's `before` excludes its period, so `to`
// is sent as the period after it. Uses app.js's globals (state, $, el, api, run, MONTH_NAMES).
"use strict";

const FILTER_KEYS = ["from", "to", "camera", "place", "folder", "near"];
const TEXT_FILTERS = ["camera", "place", "folder", "near"];  // sent as typed
const SORTS = ["relevance", "-date", "date"];
const FILTER_DEBOUNCE_MS = 400;
const FILTER_WORDS = /^(after|before|camera|folder|near|place|sort)\b|unknown sort|is not before/i;
const TIMELINE_MAX_GAPLESS = 600;  // months drawn one by one, empty ones too; past this only months with photos

function filtersActive() {
  return FILTER_KEYS.some((k) => state.filters[k]);
}

function filterError(message) {
  return FILTER_WORDS.test(message || "");
}

function nextPeriod(p) {
  // "2024" -> "2025", "2024-12" -> "2025-01", "2024-05-31" -> "2024-06-01"; anything else as it is
  // (the server then says what is wrong with it).
  let m = /^(\d{4})$/.exec(p);
  if (m) return String(+m[1] + 1);
  m = /^(\d{4})-(\d{1,2})$/.exec(p);
  if (m && +m[2] >= 1 && +m[2] <= 12) {
    return +m[2] === 12 ? `${+m[1] + 1}-01` : `${m[1]}-${String(+m[2] + 1).padStart(2, "0")}`;
  }
  m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(p);
  if (m) {
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    if (d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3]) {
      d.setUTCDate(d.getUTCDate() + 1);
      return d.toISOString().slice(0, 10);
    }
  }
  return p;
}

function effectiveSort() {
  if (state.q) return state.sort || "relevance";
  return state.sort === "date" ? "date" : "-date";  // a browse has no relevance: newest first
}

function filterParams() {
  // The filters as every search route takes them (after, before, camera, place, folder, near): the query
  // of GET /api/search and of a photo's similar photos, the form of an uploaded photo's search, the JSON
  // of a refined search.
  const p = new URLSearchParams();
  const f = state.filters;
  if (f.from) p.set("after", f.from);
  if (f.to) p.set("before", nextPeriod(f.to));
  for (const k of TEXT_FILTERS) if (f[k]) p.set(k, f[k]);
  return p;
}

function searchParams() {
  // The /api/search query for the state: words, filters, order (the server's default order not sent).
  const p = filterParams();
  if (state.q) p.set("q", state.q);
  if (state.sort && effectiveSort() !== (state.q ? "relevance" : "-date")) p.set("sort", effectiveSort());
  return p;
}

// ---------------------------------------------------------------- the address
function pageUrl() {
  const u = new URL(location.href);
  u.search = "";  // anything else in it (a ?region=, say) is not the page's state and is dropped
  const p = u.searchParams;
  if (state.view) p.set("view", state.view);
  if (state.q) p.set("q", state.q);
  for (const k of FILTER_KEYS) if (state.filters[k]) p.set(k, state.filters[k]);
  if (state.sort) p.set("sort", state.sort);
  refinementsToUrl(p);  // refine.js: more=12,31&less=7
  return u;
}

function saveUrl(push) {
  const u = pageUrl();
  if (u.href === location.href) return;
  if (push) history.pushState(null, "", u); else history.replaceState(null, "", u);
}

function fromUrl() {
  const p = new URLSearchParams(location.search);
  state.q = (p.get("q") || "").trim().slice(0, 500);
  for (const k of FILTER_KEYS) state.filters[k] = (p.get(k) || "").trim().slice(0, 200);
  state.sort = SORTS.includes(p.get("sort")) ? p.get("sort") : "";
  refinementsFromUrl(p);
  $("q").value = state.q;
  fillFilterInputs();
  if (p.get("view") === "duplicates") openDuplicates(false);
  else run();
}

// ---------------------------------------------------------------- the bar
function fillFilterInputs() {
  for (const k of FILTER_KEYS) {
    const input = $(`f-${k}`);
    input.value = state.filters[k];
    input.dataset.shown = input.value;  // a month field cannot show "2024" or a day: it stays empty
  }
}

function showFilters() {
  // The order buttons, the clear button and the timeline's highlight, as the state says.
  // A refined search has one order: likeness to its terms (POST /api/search takes no other).
  const refined = state.mode === "refine";
  const current = refined ? "relevance" : effectiveSort();
  for (const b of $("sort").querySelectorAll("button")) {
    const on = b.dataset.sort === current;
    b.setAttribute("aria-checked", on ? "true" : "false");
    b.classList.toggle("on", on);
    const relevance = b.dataset.sort === "relevance";
    b.disabled = refined ? !relevance : relevance && !state.q;  // nothing to be relevant to
    b.title = !b.disabled ? "" : refined ? "A refined search is ordered by likeness" : "Type words to order by relevance";
  }
  const active = filtersActive();
  $("f-clear").hidden = !active;
  $("filters").classList.toggle("active", active);
  drawTimeline();
}

function readFilterInputs() {
  // Only the fields the user changed: one that could not show its value (see above) keeps it.
  for (const k of FILTER_KEYS) {
    const input = $(`f-${k}`);
    if (input.value !== input.dataset.shown) state.filters[k] = input.value.trim();
  }
}

function rerun() {
  // The same search with the filters as they are now: a search with a photo stays one (run() would leave it).
  if (state.view || !["photo", "similar"].includes(state.mode) && !(state.mode === "refine" && state.file)) {
    run();
    return;
  }
  showFilters();
  load(true);
}

function applyFilters(push) {
  clearTimeout(filterTimer);
  readFilterInputs();
  saveUrl(push);
  rerun();
}

function setFilter(key, value) {
  state.filters[key] = value;
  fillFilterInputs();
  saveUrl(true);
  rerun();
}

let filterTimer = null;
for (const k of TEXT_FILTERS) {
  $(`f-${k}`).addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => applyFilters(false), FILTER_DEBOUNCE_MS);
  });
}
for (const k of ["from", "to"]) $(`f-${k}`).addEventListener("change", () => applyFilters(true));
$("filters").addEventListener("submit", (ev) => { ev.preventDefault(); applyFilters(true); });
$("f-clear").addEventListener("click", () => {
  for (const k of FILTER_KEYS) state.filters[k] = "";
  fillFilterInputs();
  saveUrl(true);
  rerun();
});
$("sort").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-sort]");
  if (!b || b.disabled) return;
  state.sort = b.dataset.sort;
  saveUrl(true);
  run();
});
$("filters-toggle").addEventListener("click", () => {
  const open = !$("filters").classList.contains("open");
  $("filters").classList.toggle("open", open);
  $("filters-toggle").setAttribute("aria-expanded", open ? "true" : "false");
});
$("browse-all").addEventListener("click", () => { state.sort = "-date"; saveUrl(true); run(); });

// ---------------------------------------------------------------- the timeline
function monthName(m) {
  const [y, mo] = m.split("-");
  return `${MONTH_NAMES[+mo - 1]} ${y}`;
}

function timelineParams() {
  // The strip shows the months of the result set: the photos the filters other than the dates keep
  // (the dates are what the strip picks), or with words the search's best matches.
  const p = filterParams();
  p.delete("after");
  p.delete("before");
  if (state.mode === "text" && state.q) p.set("q", state.q);
  return p;
}

async function loadTimeline() {
  try {
    const p = timelineParams().toString();
    state.timeline = await api("/api/timeline" + (p ? `?${p}` : ""));
  } catch (_) {
    state.timeline = null;  // an older server, a blocked query: no strip
  }
  drawTimeline();
}

let timelineTimer = null;
function scheduleTimeline() {
  // After the results: typing runs a search per pause, the strip follows once the words settle.
  clearTimeout(timelineTimer);
  timelineTimer = setTimeout(loadTimeline, 400);
}

function timelineMonths(months) {
  const first = months[0].month;
  const last = months[months.length - 1].month;
  const all = [];
  for (let m = first; m <= last && all.length <= TIMELINE_MAX_GAPLESS; m = nextPeriod(m)) all.push(m);
  return all.length > TIMELINE_MAX_GAPLESS ? months.map((x) => x.month) : all;
}

function drawTimeline() {
  const t = state.timeline;
  const box = $("timeline");
  if (!t || !t.months.length || state.view) { box.hidden = true; return; }
  const counts = new Map(t.months.map((x) => [x.month, x.count]));
  const most = Math.max(...counts.values());
  const { from, to } = state.filters;
  let year = "";
  const bars = timelineMonths(t.months).map((m) => {
    const n = counts.get(m) || 0;
    const label = `${monthName(m)}: ${n.toLocaleString()} photo${n === 1 ? "" : "s"}`;
    const inside = (from || to) && (!from || m >= from.slice(0, 7)) && (!to || m <= to.slice(0, 7));
    const bar = el("span", { class: "bar" });
    bar.style.height = n ? `${Math.max(10, Math.round((100 * n) / most))}%` : "0";
    const b = el("button", { type: "button", class: "tl-month" + (inside ? " in" : ""), "data-month": m,
      "data-count": n, title: label, "aria-label": label, disabled: n === 0,
      "aria-pressed": from === m && to === m ? "true" : "false", onclick: () => pickMonth(m) }, bar);
    if (m.slice(0, 4) !== year) {
      year = m.slice(0, 4);
      b.append(el("i", { class: "year", text: year }));
    }
    return b;
  });
  $("timeline-bars").replaceChildren(...bars);
  $("timeline-note").textContent = t.undated ? `${t.undated.toLocaleString()} without a date` : "";
  box.hidden = false;
}

function pickMonth(m) {
  // A month: browse it (or search it, with words); the same month again: every date.
  const again = state.filters.from === m && state.filters.to === m;
  state.filters.from = again ? "" : m;
  state.filters.to = again ? "" : m;
  fillFilterInputs();
  saveUrl(true);
  rerun();
}
