/**
 * The console's two files, served from this Worker (the page's Content-Security-Policy allows scripts and styles
 * from its own origin only, and nothing inline). Every page works without the script; it adds copy buttons and
 * keeps a job's progress bar current.
 */

const STYLE = `:root { color-scheme: light; --ink: #1b1b1f; --muted: #4a4a55; --line: #c9c9d1; --bg: #ffffff; --panel: #f4f4f7;
  --accent: #0b57d0; --accent-ink: #ffffff; --danger: #b3261e; --ok: #146c2e; --focus: #f0a000; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { background: #16213a; color: #fff; padding: 0.5rem 1rem; display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; align-items: center; }
header .brand { font-weight: 700; color: #fff; text-decoration: none; }
header nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; margin: 0; padding: 0; }
header nav a { color: #fff; }
header form { margin-left: auto; }
header button { background: transparent; color: #fff; border-color: #fff; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.75rem; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px; }
label { display: block; font-weight: 600; margin: 0.5rem 0 0.25rem; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
label.inline { display: inline-flex; gap: 0.4rem; align-items: center; font-weight: 400; }
input, select, textarea { font: inherit; padding: 0.4rem 0.5rem; border: 1px solid #6b6b78; border-radius: 4px; max-width: 100%; background: #fff; color: var(--ink); }
input[type="text"], input[type="email"], input[type="url"], input[type="password"], textarea { width: 100%; }
input[type="checkbox"] { width: auto; }
textarea { min-height: 6rem; }
button { font: inherit; padding: 0.4rem 0.9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-ink); cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--danger); border-color: var(--danger); color: #fff; }
form.card, section.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin: 0 0 1rem; }
form.card > button, form.card .actions { display: block; margin-top: 0.75rem; }
form.card select, form.card textarea { display: block; }
.card h2 { margin-top: 0; }
form.row { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; margin: 0; }
form.row input[type="text"] { width: auto; flex: 1 1 8rem; }
.table { overflow-x: auto; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.45rem 0.5rem; border-bottom: 1px solid var(--line); }
th { background: var(--panel); }
td.actions > * { display: inline-block; margin: 0 0.6rem 0.3rem 0; }
td.mono, td time { white-space: nowrap; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.92em; overflow-wrap: anywhere; }
/* Ids and tags verbatim (views.tsx, Verbatim): every space kept and taking room, the value's extent outlined, the
   blanks at either end shaded and underlined (the note beside says them in words). */
code.verbatim { white-space: break-spaces; background: #fff; box-shadow: 0 0 0 1px var(--line); border-radius: 2px; padding: 0 0.1em; }
code.verbatim .blank { background: #ffd9a0; box-shadow: inset 0 -2px 0 #8a4b00; }
.blanks { color: var(--muted); font-size: 0.8rem; font-weight: 400; white-space: nowrap; }
/* An API message may quote an id: its spaces are kept as they are. */
.notice { border-left: 4px solid var(--ok); background: #e7f4ea; padding: 0.75rem 1rem; margin: 0 0 1rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.notice.error { border-color: var(--danger); background: #fbe9e7; }
.secret { margin: 0 0 1rem; display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; background: #fff8e1; border: 1px solid #e0b400; padding: 0.75rem; border-radius: 4px; }
.secret output { font-family: ui-monospace, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.tags { list-style: none; padding: 0; margin: 0 0 1rem; display: flex; flex-wrap: wrap; gap: 0.4rem; }
.tags li { background: #e8eefc; border: 1px solid #9db4ea; border-radius: 999px; padding: 0.1rem 0.6rem; display: inline-flex; gap: 0.3rem; align-items: center; }
.tags li button { padding: 0 0.4rem; font-size: 0.85rem; }
progress { width: 100%; height: 1.5rem; accent-color: var(--accent); }
.status-failed { color: var(--danger); font-weight: 700; }
.status-completed { color: var(--ok); font-weight: 700; }
.muted { color: var(--muted); }
/* Narrow screens: each table row becomes a card of labelled lines (the labels come from data-label). */
@media (max-width: 40rem) {
  table, tbody, tr, td { display: block; width: 100%; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 0.75rem; padding: 0.25rem 0.5rem; }
  td { border: 0; padding: 0.3rem 0; }
  td[data-label]::before { content: attr(data-label); display: block; font-weight: 600; font-size: 0.85rem; color: var(--muted); }
  td.mono, td time { white-space: normal; }
}
.grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); }
.signin { max-width: 26rem; margin: 3rem auto; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0 0 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
/* Forms keep what was typed; a refused field says why beside itself. */
.field { margin: 0 0 0.25rem; }
.field.invalid input, .field.invalid select, .field.invalid textarea { border: 2px solid var(--danger); }
.field-error { color: var(--danger); font-weight: 600; margin: 0.25rem 0 0.5rem; overflow-wrap: anywhere; }
.field-error::before { content: "⚠ "; }
.hint { color: var(--muted); font-size: 0.9rem; margin: 0 0 0.25rem; }
.warning { border-left: 4px solid var(--danger); padding: 0.5rem 1rem; background: #fff4f2; }
a.button { display: inline-block; font: inherit; padding: 0.4rem 0.9rem; border-radius: 4px; border: 1px solid var(--accent); text-decoration: none; }
a.button.danger { background: var(--danger); border-color: var(--danger); color: #fff; }
.links { display: flex; flex-wrap: wrap; gap: 0.5rem 1.25rem; }
.pager { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; margin: 1rem 0; }
form.search .row { display: flex; gap: 0.5rem; flex-wrap: wrap; }
form.search input[type="search"] { flex: 1 1 12rem; min-width: 0; }
form.filters .field select { width: 100%; }
ul.stats { list-style: none; padding: 0; margin: 0 0 1.5rem; display: flex; flex-wrap: wrap; gap: 0.75rem; }
ul.stats li { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 0.9rem; }
ul.stats strong { font-size: 1.3rem; margin-right: 0.25rem; }
td.job small.id { display: block; color: var(--muted); font-size: 0.75rem; overflow-wrap: anywhere; }
/* The overview's charts (charts.tsx): SVG scaled to the page's width, coloured here (no inline style). */
.charts { display: grid; gap: 1.5rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 26rem), 1fr)); }
figure.chart { margin: 0; padding: 1rem; border: 1px solid var(--line); border-radius: 6px; background: #fff; min-width: 0; }
figure.chart h2 { margin: 0 0 0.5rem; font-size: 1.1rem; }
figure.chart figcaption { color: var(--muted); font-size: 0.9rem; margin: 0.5rem 0; }
svg.chart-svg { width: 100%; height: auto; display: block; }
.chart-label, .chart-value, .chart-note { font-size: 14px; fill: var(--ink); }
.chart-value { font-weight: 600; }
.chart-tick { font-size: 12px; fill: var(--muted); }
.chart-track { fill: #e6e6ec; }
.chart-bar { fill: var(--accent); }
.chart-bar.ok { fill: var(--ok); }
.chart-bar.danger { fill: var(--danger); }
.chart-bar.warn { fill: #b06f00; }
.chart-bar.muted-bar { fill: #8a8a96; }
.chart-axis { stroke: var(--line); stroke-width: 1; }
`;

const SCRIPT = `// Copy buttons, and a job's live progress (every page works without this script).
for (const button of document.querySelectorAll("button[data-copy]")) {
  const target = document.getElementById(button.dataset.copy);
  if (!target || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(target.textContent.trim());
    button.textContent = "Copied";
  });
}

const job = document.querySelector("[data-job-status]");
if (job) {
  const bar = job.querySelector("progress");
  const status = job.querySelector("[data-field=status]");
  const counts = job.querySelector("[data-field=counts]");
  const receipt = document.querySelector("[data-receipt]");
  const poll = async () => {
    const response = await fetch(job.dataset.jobStatus, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) { status.textContent = "unavailable (" + response.status + ")"; return; }
    const state = await response.json();
    bar.value = state.percent;
    bar.textContent = state.percent + " %";
    status.textContent = state.status;
    status.className = "status-" + state.status;
    counts.textContent = state.counts;
    const waiting = job.querySelector("[data-field=waiting]");
    if (waiting) waiting.textContent = state.waiting || "Finished.";
    if (state.status === "completed" && receipt) receipt.hidden = false;
    if (state.status === "completed" || state.status === "failed") {
      for (const element of document.querySelectorAll("[data-while-running]")) element.hidden = true;
    }
    if (state.status === "queued" || state.status === "running") setTimeout(poll, 1000);
  };
  if (job.dataset.finished !== "true") setTimeout(poll, 500);
}
`;

// The tab's icon: a file of this origin (the policy allows images from nowhere else, data: URLs included).
const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#16213a"/><path d="M9 8h4v13h9v4H9z" fill="#fff"/></svg>`;

const CONSOLE_FILES: Record<string, { type: string; body: string }> = {
	"icon.svg": { type: "image/svg+xml", body: ICON },
	"console.css": { type: "text/css; charset=utf-8", body: STYLE },
	"console.js": { type: "text/javascript; charset=utf-8", body: SCRIPT },
};

/** One of the console's files by name, or undefined. */
export const consoleFile = (name: string) => (Object.hasOwn(CONSOLE_FILES, name) ? CONSOLE_FILES[name] : undefined);
