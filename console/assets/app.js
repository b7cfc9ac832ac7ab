// The console page: draws what /api/events sends once a second and sends
// what the user clicks to the API (docs/console.md). No framework.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let graph = null, kinds = [], last = null;

function el(tag, attrs, text) {
  const e = tag.includes(":") || ["svg", "g", "line", "rect", "text", "path", "circle", "polyline", "title"].includes(tag)
    ? document.createElementNS(NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function ms(v) {
  if (!v && v !== 0) return "–";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return Math.round(v) + " ms";
  return v.toFixed(1) + " ms";
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.status === 204 ? null : r.json();
}

// ---- the graph ----

// buildGraph draws the nodes and links once; drawGraph only updates their
// figures and faults, so that what the user points at stays in place.
const linkEls = {}, nodeEls = {};

function buildGraph() {
  const svg = $("graph");
  svg.textContent = "";
  for (const k of Object.keys(linkEls)) delete linkEls[k];
  for (const k of Object.keys(nodeEls)) delete nodeEls[k];
  const pos = Object.fromEntries(graph.nodes.map((n) => [n.id, n]));
  const pairs = {};
  for (const l of graph.links) {
    const a = pos[l.from], b = pos[l.to];
    if (!a || !b) continue;
    const key = [l.from, l.to].sort().join("|");
    const k = (pairs[key] = (pairs[key] || 0) + 1) - 1;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const off = k * 26, ox = -dy / len * off, oy = dx / len * off;
    const mx = (a.x + b.x) / 2 + ox, my = (a.y + b.y) / 2 + oy;
    const g = el("g", { class: "link", "data-link": l.id });
    g.appendChild(el("line", { x1: a.x + ox, y1: a.y + oy, x2: b.x + ox, y2: b.y + oy }));
    if (l.proxy) {
      g.appendChild(el("rect", { class: "proxy", x: mx - 6, y: my - 6, width: 12, height: 12 }));
      g.appendChild(el("text", { class: "pname", x: mx + 9, y: my - 6 }, l.id));
      g.addEventListener("click", () => selectTarget(l.id));
    }
    // A link without a proxy has its figures centred under it.
    const stats = el("text", l.proxy ? { class: "stats", x: mx + 9, y: my + 8 } : { class: "stats", x: mx, y: my + 20, "text-anchor": "middle" }, "idle");
    const faults = el("g", { class: "faults" });
    g.appendChild(stats);
    g.appendChild(faults);
    g.appendChild(el("title", {}, `link ${l.id}: ${l.from} → ${l.to}` + (l.proxy ? " (Toxiproxy proxy " + l.id + "; click to target it)" : "")));
    svg.appendChild(g);
    linkEls[l.id] = { g, stats, faults, x: mx + 9, y: my - 20, up: true };
  }
  for (const n of graph.nodes) {
    const g = el("g", { class: "node", "data-node": n.id });
    const w = Math.max(70, n.id.length * 8 + 20);
    g.appendChild(el("rect", { x: n.x - w / 2, y: n.y - 15, width: w, height: 30, rx: 6 }));
    g.appendChild(el("text", { x: n.x, y: n.y + 4, "text-anchor": "middle" }, n.id));
    const faults = el("g", { class: "faults" });
    g.appendChild(faults);
    svg.appendChild(g);
    nodeEls[n.id] = { faults, x: n.x - w / 2, y: n.y + 28 };
  }
}

// setFaults writes the faults of a link or node under it, when they changed.
function setFaults(box, names) {
  const key = names.join("\n");
  if (box.faults.dataset.key === key) return;
  box.faults.dataset.key = key;
  box.faults.textContent = "";
  names.forEach((f, i) => box.faults.appendChild(el("text", { class: "fault", x: box.x, y: box.y + (box.up ? -13 : 13) * i }, "⚡ " + f)));
}

function drawGraph(st) {
  const onLink = {}, onNode = {};
  for (const [name, p] of Object.entries(st.proxies)) {
    const byFault = {};
    for (const t of p.toxics) (byFault[t.fault] ||= { t, streams: [] }).streams.push(t.stream);
    const names = Object.entries(byFault).map(([f, { t, streams }]) => `${f}: ${describeToxic(t)} (${streams.join(", ")})`);
    if (!p.enabled) names.unshift("partition: proxy disabled");
    onLink[name] = names;
  }
  for (const f of st.faults) {
    if (f.toxics && f.target in st.proxies) continue; // drawn from its toxics above
    if (linkEls[f.target]) (onLink[f.target] ||= []).push(f.text); // a run's fault on its link
    else (onNode[f.target] ||= []).push(f.name + " " + f.kind);
  }
  for (const [id, box] of Object.entries(linkEls)) {
    const s = st.links[id], names = onLink[id] || [];
    box.stats.textContent = s ? `${s.rps.toFixed(1)}/s · p50 ${ms(s.p50_ms)} · p99 ${ms(s.p99_ms)} · ${s.error_pct.toFixed(0)}% err` : "idle";
    box.stats.dataset.p50 = s ? s.p50_ms : "";
    box.g.classList.toggle("faulty", names.length > 0);
    setFaults(box, names);
  }
  for (const [id, box] of Object.entries(nodeEls)) setFaults(box, onNode[id] || []);
}

// describeToxic says what a toxic does: its type and its non-zero
// attributes, e.g. "latency latency=300".
function describeToxic(t) {
  const a = Object.entries(t.attrs || {}).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(" ");
  return t.type + (a ? " " + a : "") + (t.toxicity < 1 ? ` toxicity=${t.toxicity}` : "");
}

// ---- faults ----

function fillKinds() {
  const sel = $("kind");
  sel.textContent = "";
  const groups = {};
  for (const k of kinds) {
    const g = (groups[k.target_kind] ||= el("optgroup", { label: k.target_kind + " faults" }));
    const o = el("option", { value: k.kind }, k.kind + (k.unavailable ? " (" + k.unavailable + ")" : ""));
    if (k.unavailable) o.disabled = true;
    g.appendChild(o);
  }
  Object.values(groups).forEach((g) => sel.appendChild(g));
  if (kinds.some((k) => k.kind === "latency")) sel.value = "latency"; // the lesson's first fault
  kindChanged();
}

function kindChanged() {
  const k = kinds.find((x) => x.kind === $("kind").value);
  if (!k) return;
  const t = $("target"), prev = t.value;
  t.textContent = "";
  k.targets.forEach((name) => t.appendChild(el("option", { value: name }, name)));
  if (k.targets.includes(prev)) t.value = prev;
  const attrs = $("attrs");
  attrs.textContent = "";
  for (const a of k.attrs) {
    const lab = el("label", { title: a.doc || "" }, a.name + " ");
    if (a.unit === "text") {
      // A text attribute: a select of its words, or text matching its pattern.
      let input;
      if (a.values) {
        input = el("select", { id: "attr-" + a.name, "data-text": a.name });
        if (!a.required) input.appendChild(el("option", { value: "" }, "(any)"));
        a.values.forEach((v) => input.appendChild(el("option", { value: v }, v)));
        if (a.example && a.values.includes(a.example)) input.value = a.example;
      } else {
        input = el("input", { id: "attr-" + a.name, type: "text", placeholder: a.example || "", "data-text": a.name });
        if (a.pattern) input.setAttribute("pattern", a.pattern);
        if (a.required) input.required = true;
      }
      lab.appendChild(input);
    } else {
      lab.appendChild(el("input", { id: "attr-" + a.name, type: "number", min: a.min, max: a.max, value: a.default, "data-attr": a.name }));
      lab.appendChild(document.createTextNode(" " + a.unit));
    }
    attrs.appendChild(lab);
  }
  $("direction-label").hidden = !k.directional;
  $("kind-doc").textContent = k.doc + (k.note ? " — " + k.note : "");
}

function selectTarget(name) {
  const k = kinds.find((x) => x.kind === $("kind").value);
  if (!k || !k.targets.includes(name)) { $("kind").value = "latency"; kindChanged(); }
  $("target").value = name;
}

async function addFault(ev) {
  ev.preventDefault();
  const k = kinds.find((x) => x.kind === $("kind").value);
  const body = { kind: k.kind, target: $("target").value, attrs: {}, text: {} };
  document.querySelectorAll("#attrs [data-attr]").forEach((i) => { body.attrs[i.dataset.attr] = Number(i.value); });
  document.querySelectorAll("#attrs [data-text]").forEach((i) => { if (i.value !== "") body.text[i.dataset.text] = i.value; });
  if (k.directional) body.direction = $("direction").value;
  showError("fault-error", null);
  try { await api("POST", "/api/faults", body); } catch (e) { showError("fault-error", e); }
}

function drawFaults(st) {
  const ul = $("faults"), key = st.faults.map((f) => f.name + " " + f.text).join("\n");
  if (ul.dataset.key === key && ul.childElementCount) return;
  ul.dataset.key = key;
  ul.textContent = "";
  for (const f of st.faults) {
    const li = el("li", { "data-name": f.name });
    if (st.locked) { li.appendChild(el("span", { class: "name" }, f.name)); li.appendChild(el("span", { class: "text" }, f.text)); ul.appendChild(li); continue; }
    li.appendChild(el("span", { class: "name" }, f.name));
    li.appendChild(el("span", { class: "text" }, f.text));
    const b = el("button", { type: "button", class: "remove" }, "Remove");
    b.addEventListener("click", async () => {
      showError("fault-error", null);
      try { await api("DELETE", "/api/faults/" + encodeURIComponent(f.name)); } catch (e) { showError("fault-error", e); }
    });
    li.appendChild(b);
    ul.appendChild(li);
  }
  if (!st.faults.length) ul.appendChild(el("li", { class: "note" }, st.run ? "no fault of the run's on" : "no fault of the console's on"));
}

function showError(id, e) {
  const p = $(id);
  p.hidden = !e;
  p.textContent = e ? e.message : "";
}

// ---- load and chart ----

function drawLoad(st) {
  const l = st.load;
  $("load-status").textContent = st.run ? "the run's load" : l.running ? `running at ${l.rate}/s` : (l.error ? "stopped: " + l.error : "stopped");
  const p = l.series[l.series.length - 1];
  const fresh = p && st.time && (Date.parse(st.time) / 1000 - p.t) <= 2.5;
  $("p50").textContent = fresh ? ms(p.p50_ms) : "–";
  $("p50").dataset.ms = fresh ? p.p50_ms : "";
  $("p99").textContent = fresh ? ms(p.p99_ms) : "–";
  $("success").textContent = fresh ? (p.success * 100).toFixed(1) + " %" : "–";
  $("rate").textContent = fresh ? p.n : "–";
  drawChart(st);
}

function drawChart(st) {
  const svg = $("chart");
  svg.textContent = "";
  const W = 960, H = 260, L = 56, R = 50, T = 12, B = 26, span = 120;
  const now = Date.parse(st.time) / 1000, t0 = now - span;
  const x = (t) => L + (t - t0) / span * (W - L - R);
  const pts = st.load.series.filter((p) => p.t >= t0);
  const top = Math.max(10, ...pts.map((p) => p.p99_ms)) * 1.1;
  const y = (v) => H - B - v / top * (H - T - B);
  const ys = (f) => H - B - f * (H - T - B);
  for (const w of st.windows) {
    const s = Math.max(Date.parse(w.start) / 1000, t0), e = w.end ? Date.parse(w.end) / 1000 : now;
    if (e < t0) continue;
    svg.appendChild(el("rect", { class: "win", x: x(s), y: T, width: Math.max(x(e) - x(s), 1), height: H - T - B }));
    svg.appendChild(el("text", { class: "winlabel", x: x(s) + 3, y: T + 12 }, `${w.name} on ${w.target}`));
  }
  svg.appendChild(el("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  for (let i = 0; i <= 4; i++) {
    const v = top / 4 * i;
    svg.appendChild(el("line", { class: "grid", x1: L, y1: y(v), x2: W - R, y2: y(v) }));
    svg.appendChild(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, ms(v)));
    svg.appendChild(el("text", { x: W - R + 4, y: ys(i / 4) + 4 }, (25 * i) + "%"));
  }
  for (let s = 0; s <= span; s += 30) svg.appendChild(el("text", { x: x(t0 + s), y: H - 8, "text-anchor": "middle" }, s === span ? "now" : `-${span - s}s`));
  const line = (cls, f) => pts.length && svg.appendChild(el("polyline", { class: cls, points: pts.map((p) => `${x(p.t + 0.5)},${f(p)}`).join(" ") }));
  line("succ", (p) => ys(p.success));
  line("p99", (p) => y(p.p99_ms));
  line("p50", (p) => y(p.p50_ms));
  svg.appendChild(el("text", { x: L + 6, y: H - B - 6 }, "— p50  - - p99 (left axis)   — success rate (right axis, green)"));
}

// ---- traces ----

function drawTraces(st) {
  for (const [id, list] of [["slowest", st.slowest], ["failed", st.failed]]) {
    const ol = $(id), key = list.map((t) => t.id).join(" ");
    if (ol.dataset.key === key && ol.childElementCount) continue;
    ol.dataset.key = key;
    ol.textContent = "";
    for (const t of list) {
      const li = el("li", { "data-trace": t.id, class: t.error ? "err" : "" }, `${ms(t.ms)} ${t.root}${t.status ? " — " + t.status : ""}`);
      li.addEventListener("click", () => openTrace(t.id));
      ol.appendChild(li);
    }
    if (!list.length) ol.appendChild(el("li", { class: "note" }, "none"));
  }
}

async function openTrace(id) {
  const r = await fetch("/api/traces/" + encodeURIComponent(id));
  const box = $("waterfall");
  if (!r.ok) { box.textContent = (await r.json()).error; return; }
  box.innerHTML = await r.text(); // SVG the console rendered, text escaped
}

// ---- experiments ----

function drawExperiment(st) {
  const e = st.experiment, sel = $("exp-name");
  if (sel.options.length !== e.catalogue.length) {
    sel.textContent = "";
    e.catalogue.forEach((n) => sel.appendChild(el("option", { value: n }, n)));
  }
  $("exp-run").disabled = e.running || !e.catalogue.length;
  $("exp-stop").disabled = !e.running;
  $("exp-progress").textContent = e.running ? e.progress || "starting " + e.name + "…" : "";
  const res = $("exp-result");
  res.textContent = "";
  if (!e.running && e.name) {
    res.appendChild(document.createTextNode(e.name + (e.error ? ": " + e.error + " " : " ended. ")));
    if (e.report) res.appendChild(el("a", { href: e.report, target: "_blank", id: "exp-report" }, "Open its report"));
  }
}

// ---- the run (fallacies run --console) ----

let topologyShown = 0;

function drawRun(st) {
  const r = st.run;
  $("run").hidden = !r;
  if (!r) return;
  if (r.topology !== topologyShown) { // a new variant: its system's graph
    topologyShown = r.topology;
    api("GET", "/api/topology").then((g) => { graph = g; buildGraph(); if (last) drawGraph(last); });
  }
  const where = r.experiment ? `${r.experiment} · variant ${r.variant} (${r.index} of ${r.of})` : "starting…";
  const phase = r.ended ? "the run has ended" : r.phase === "starting" || !r.phase ? "starting its system" :
    r.phase === "ended" ? "ended" : `phase ${r.phase} · ${Math.ceil(r.left_s)} s left of ${Math.round(r.total_s)} s`;
  $("run-status").textContent = where + " — " + phase;
  $("run-progress").value = r.total_s ? r.elapsed_s / r.total_s : 0;
  const ul = $("run-reports"), key = JSON.stringify(r.reports);
  if (ul.dataset.key === key) return;
  ul.dataset.key = key;
  ul.textContent = "";
  for (const rep of r.reports) {
    // The report's own verdict: an inconclusive run (exit 4) is not FAILED.
    const word = { PASS: "PASSED", FAIL: "FAILED" }[rep.verdict] || rep.verdict;
    const li = el("li", { class: rep.passed ? "pass" : rep.verdict === "INCONCLUSIVE" ? "inconclusive" : "fail" }, `${rep.experiment}: ${word}${rep.error ? " (" + rep.error + ")" : ""} — `);
    if (rep.url) li.appendChild(el("a", { href: rep.url, target: "_blank", class: "report" }, "its report"));
    if (rep.dir) li.appendChild(el("span", { class: "mono" }, " " + rep.dir + "/report.html"));
    ul.appendChild(li);
  }
}

// lock disables what would change the system, saying why (the console of
// a run only watches).
function lock(st) {
  for (const id of ["break", "drive", "experiments"]) {
    const sec = $(id), p = sec.querySelector(".locked");
    p.hidden = !st.locked;
    p.textContent = st.locked ? "Disabled: " + st.locked : "";
    sec.querySelectorAll("button, input, select").forEach((c) => { c.disabled = true; });
  }
}

// ---- wiring ----

function render(st) {
  last = st;
  $("clock").textContent = new Date(st.time).toLocaleTimeString();
  showError("proxy-error", st.proxy_error ? new Error("Toxiproxy: " + st.proxy_error) : null);
  drawGraph(st);
  drawFaults(st);
  drawLoad(st);
  drawTraces(st);
  drawExperiment(st);
  drawRun(st);
  if (st.locked) lock(st);
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => { $("conn").textContent = "live"; $("conn").className = "conn on"; });
  es.addEventListener("error", () => { $("conn").textContent = "reconnecting…"; $("conn").className = "conn off"; });
  es.addEventListener("state", (m) => render(JSON.parse(m.data)));
  // The run is over: the last event; the console stops with the run
  // (unless --console-hold), so the page stops listening.
  es.addEventListener("ended", (m) => { es.close(); render(JSON.parse(m.data)); $("conn").textContent = "run ended"; $("conn").className = "conn off"; });
}

async function main() {
  [graph, kinds] = await Promise.all([api("GET", "/api/topology"), api("GET", "/api/kinds")]);
  fillKinds();
  buildGraph();
  $("kind").addEventListener("change", kindChanged);
  $("fault-form").addEventListener("submit", addFault);
  $("remove-all").addEventListener("click", () => api("DELETE", "/api/faults").catch((e) => showError("fault-error", e)));
  $("load-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    api("POST", "/api/load", { rate: Number($("load-rate").value) }).catch((e) => { $("load-status").textContent = e.message; });
  });
  $("load-stop").addEventListener("click", () => api("DELETE", "/api/load"));
  $("exp-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    api("POST", "/api/experiment", { name: $("exp-name").value }).catch((e) => { $("exp-result").textContent = e.message; });
  });
  $("exp-stop").addEventListener("click", () => api("DELETE", "/api/experiment"));
  connect();
}

main();
