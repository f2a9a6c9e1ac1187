// The duplicates view (?view=duplicates): groups of files that hold one photo (GET /api/duplicates), the
// copy pixsearch suggests keeping first and marked. Read only: the page has no way to write (no token),
// and the server never deletes a file; the view says how to clean up instead. A photo opens in the viewer.
// Uses app.js's globals (state, $, el, api, dateOf, openViewer, closeViewer, resetResults, showWelcome).
"use strict";

let dupesSeq = 0;

function sizeText(bytes) {
  if (typeof bytes !== "number") return "";
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

function baseName(path) {
  return String(path || "").split("/").pop();
}

async function openDuplicates(push) {
  state.view = "duplicates";
  if (push) saveUrl(true);
  closeViewer();
  if (state.controller) state.controller.abort();
  state.mode = null;
  resetResults();
  showWelcome(false);
  clearPhoto();
  $("filters").hidden = true;
  $("timeline").hidden = true;
  $("refinements").hidden = true;
  $("dupes").hidden = false;
  $("dupes-link").setAttribute("aria-current", "page");
  $("dupes-summary").textContent = "Looking for copies…";
  $("dupes-list").replaceChildren();
  const seq = ++dupesSeq;
  loading(true);
  try {
    const d = await api("/api/duplicates");
    if (seq !== dupesSeq || state.view !== "duplicates") return;
    showDuplicates(d);
  } catch (e) {
    if (seq !== dupesSeq) return;
    $("dupes-summary").textContent = `Could not look for duplicates: ${e.message}`;
  } finally { loading(false); }
}

function showDuplicates(d) {
  const files = d.groups.reduce((n, g) => n + g.photos.length, 0);
  $("dupes-summary").textContent = d.groups.length
    ? `${d.groups.length} group${d.groups.length === 1 ? "" : "s"} of copies, ${files} files, among ` +
      `${d.photos.toLocaleString()} photos.`
    : `No duplicates among ${d.photos.toLocaleString()} photos.`;
  $("dupes-list").replaceChildren(...d.groups.map((g, i) => groupCard(g, i, d.prefer)));
}

function groupCard(g, gi, prefer) {
  const items = g.photos.map((p) => ({ ...p, name: baseName(p.path) }));  // as the viewer shows a result
  const kind = g.kind === "exact" ? "Exact copies" : "Near-duplicates";
  const alike = g.kind === "exact" ? "the same bytes" : `at least ${Math.round(g.similarity * 100)}% alike`;
  const figures = items.map((p, i) => {
    const keep = i === g.best;
    const img = el("img", { src: p.thumbnail_url, alt: p.name, loading: "lazy" });
    const facts = [p.width && `${p.width} × ${p.height}`, sizeText(p.bytes), dateOf(p.taken_at)].filter(Boolean);
    return el("figure", { class: "dup-photo" + (keep ? " keep" : ""), "data-id": p.image_id },
      el("button", { type: "button", class: "dup-thumb", title: "Open", "aria-label": `Open ${p.name}`,
        onclick: () => openViewer(i, items) }, img),
      el("figcaption", {},
        keep ? el("b", { class: "keep-badge", text: "Keep", title: `The copy to keep: the ${prefer}` }) : null,
        el("span", { class: "dup-path", text: p.path, title: p.path }),
        el("span", { class: "muted small", text: facts.join(" · ") }),
        !keep && g.kind !== "exact" ? el("span", { class: "muted small",
          text: `${Math.round(p.similarity * 100)}% alike` }) : null));
  });
  return el("article", { class: "dup-group", "data-kind": g.kind, "aria-label": `Group ${gi + 1}: ${kind}` },
    el("header", {}, el("span", { class: "kind", text: kind }),
      el("span", { class: "muted small", text: `${g.photos.length} files, ${alike}` })),
    el("div", { class: "dup-photos" }, ...figures));
}

function closeDuplicates() {
  if (!state.view) return;
  state.view = null;
  dupesSeq++;
  $("dupes").hidden = true;
  $("dupes-list").replaceChildren();
  $("dupes-link").removeAttribute("aria-current");
  $("filters").hidden = false;
}

function leaveDuplicates() {
  closeDuplicates();
  saveUrl(true);
  run();
}

$("dupes-link").addEventListener("click", (ev) => {
  if (ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;  // a new tab: let the browser
  ev.preventDefault();
  if (state.view !== "duplicates") openDuplicates(true);
});
$("dupes-close").addEventListener("click", leaveDuplicates);
