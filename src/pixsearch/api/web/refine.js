// "More like this" / "Less like this": refine the search shown with a result. The page keeps the terms
// (the typed words, weight 1; the photo searched with, if any; each refinement, a library photo weighted
// +1 or -1) and asks POST /api/search for the photos nearest their weighted sum (the query's own photos
// left out), with the filter bar's filters, paged by offset. Each refinement is a removable chip beside the
// search box; the address keeps them (&more=12,31&less=7) so a reload, a shared link and back/forward show
// the same search. A refined search is ranked by cosine alone: its results carry no calibrated match, so
// tiles show no "%". Uses app.js's globals (state, $, el, api, toast, closeViewer, run, load, showFilters)
// and filters.js's saveUrl.
"use strict";

const MAX_TERMS = 16;      // POST /api/search takes at most 16 terms
const names = new Map();   // photo id -> its file name, for the chips

function refineButtons(r) {
  // The two buttons of a result tile (beside it: a button cannot hold buttons).
  const name = r.name || `photo ${r.image_id}`;
  const button = (weight, sign, word) => el("button", { type: "button", class: "refine-button",
    "data-weight": weight, title: `${word} like this`, "aria-label": `${word} like ${name}`,
    onclick: () => refineWith(r, weight) }, el("span", { "aria-hidden": "true", text: sign }),
    el("span", { class: "word", text: " " + word }));  // phones show the sign alone (the label stays)
  return el("div", { class: "refine-buttons" }, button(1, "+", "More"), button(-1, "−", "Less"));
}

function refineWith(r, weight) {
  // A refinement of the search shown: "photos like this one" (its photo is then the first chip), a text
  // search, a browse (no words: the photo alone) or an uploaded photo's search (the upload stays a term).
  closeViewer();
  if (r.name) names.set(r.image_id, r.name);
  if (state.mode === "similar" && state.similarTo !== null && state.similarTo !== r.image_id
      && !state.refine.some((x) => x.id === state.similarTo)) {
    state.refine.push({ id: state.similarTo, weight: 1 });
  }
  state.similarTo = null;
  const had = state.refine.find((x) => x.id === r.image_id);
  if (had) had.weight = weight;
  else if (state.refine.length + (state.q ? 1 : 0) + (state.file ? 1 : 0) >= MAX_TERMS) {
    toast(`A search takes at most ${MAX_TERMS} terms: remove a chip first.`);
    return;
  } else state.refine.push({ id: r.image_id, weight });
  refreshSearch();
}

function refineWithViewed(weight) {
  const r = (state.viewerItems || [])[state.viewerIndex];
  if (r && !r.withheld) refineWith(r, weight);
}

function removeRefinement(id) {
  state.refine = state.refine.filter((x) => x.id !== id);
  refreshSearch();
  const next = $("refine-chips").querySelector("button") || $("q");
  next.focus({ preventScroll: true });  // focus was on the chip that is gone
}

function clearRefinements() {
  state.refine = [];
  refreshSearch();
  $("q").focus({ preventScroll: true });
}

function refreshSearch() {
  // The search again with the chips as they are now; none left: the plain search (words, browse, welcome,
  // or the uploaded photo's own search).
  closeDuplicates();  // a refinement from a photo opened in the duplicates view: back to the photos
  if (state.file) {
    state.mode = state.refine.length ? "refine" : "photo";
    saveUrl(true);
    showRefinements();
    showFilters();
    showWelcome(false);
    load(true);
    return;
  }
  saveUrl(true);
  run();
}

async function refineTerms() {
  const terms = [];
  if (state.q) terms.push({ text: state.q, weight: 1 });
  if (state.file) terms.push({ upload: await fileBase64(), weight: 1 });
  for (const x of state.refine) terms.push({ photo_id: x.id, weight: x.weight });
  return terms;
}

function fileBase64() {
  // The uploaded photo's bytes as base64 (a refined search sends them with every page), read once.
  if (!state.fileB64) {
    const file = state.file;
    state.fileB64 = new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(new Error("the photo could not be read"));
      reader.readAsDataURL(file);
    });
  }
  return state.fileB64;
}

// ---------------------------------------------------------------- the chips
function showRefinements() {
  const box = $("refinements");
  if (!state.refine.length || state.view) { box.hidden = true; $("refine-chips").replaceChildren(); return; }
  $("refine-chips").replaceChildren(...state.refine.map(chipFor));
  box.hidden = false;
  lookUpNames();
}

function chipFor(x) {
  const more = x.weight > 0;
  const name = names.get(x.id) || `photo ${x.id}`;
  const thumb = el("img", { src: `/api/photos/${x.id}/thumbnail`, alt: "", loading: "lazy" });
  thumb.addEventListener("error", () => thumb.remove());  // withheld or gone: the name says enough
  return el("button", { type: "button", class: "chip refine-chip " + (more ? "refine-more" : "refine-less"),
    "data-id": x.id, "data-weight": x.weight, title: "Remove this refinement",
    "aria-label": `Remove “${more ? "more" : "less"} like ${name}”`, onclick: () => removeRefinement(x.id) },
  el("b", { class: "sign", "aria-hidden": "true", text: more ? "+" : "−" }), thumb,
  el("span", { class: "chip-name", text: name }), el("span", { class: "x", "aria-hidden": "true", text: "×" }));
}

async function lookUpNames() {
  // Chips from the address name their photos by id until the library says their file names.
  const missing = state.refine.filter((x) => !names.has(x.id)).map((x) => x.id);
  if (!missing.length) return;
  await Promise.all(missing.map(async (id) => {
    try {
      const info = await api(`/api/photos/${id}`);
      names.set(id, String(info.path || "").split("/").pop() || `photo ${id}`);
    } catch (_) {
      names.set(id, `photo ${id}`);  // withheld or gone: the search says which
    }
  }));
  if (state.refine.some((x) => missing.includes(x.id))) $("refine-chips").replaceChildren(...state.refine.map(chipFor));
}

// ---------------------------------------------------------------- the address (filters.js calls these)
function refinementsToUrl(p) {
  const ids = (w) => state.refine.filter((x) => Math.sign(x.weight) === w).map((x) => x.id).join(",");
  if (ids(1)) p.set("more", ids(1));
  if (ids(-1)) p.set("less", ids(-1));
}

function refinementsFromUrl(p) {
  const seen = new Set();
  const read = (key, weight) => (p.get(key) || "").split(",").map((s) => s.trim())
    .filter((s) => /^[1-9]\d{0,15}$/.test(s)).map(Number)
    .filter((id) => !seen.has(id) && seen.add(id)).map((id) => ({ id, weight }));
  state.refine = [...read("more", 1), ...read("less", -1)].slice(0, MAX_TERMS - 1);
}

$("refine-clear").addEventListener("click", clearRefinements);
