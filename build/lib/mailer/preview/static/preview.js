// mailer preview page: asks the local server for JSON, listens for changes, shows the email.
// Everything the email shows comes from the server, which renders through the send pipeline.
"use strict";

const $ = (id) => document.getElementById(id);
// lang: the language version shown ("" = the top-level texts); null until the state says.
const ui = { email: null, lang: null, variant: "auto", mode: "both", dark: false, tab: "email" };
let state = null;
let lastView = null;
let viewSeq = 0;

// Always an object: a stopped server or a broken answer becomes an error the page can show.
async function getJSON(url, options) {
  try {
    const response = await fetch(url, options);
    return await response.json();
  } catch (e) {
    const text = "the preview server did not answer (is `mailer preview` still running?)";
    return { ok: false, available: false, reason: text, error: { text } };
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// ---- errors ---------------------------------------------------------------------------

function showError(error) {
  $("error-text").textContent = error.text;
  $("error").hidden = false;
  document.body.classList.add("has-error");
  viewSeq++; // a checks request on its way belongs to the last good version
  $("checks").replaceChildren("Checks run again once the campaign renders.");
  setStatus("error", "error");
}

function hideError() {
  $("error").hidden = true;
  document.body.classList.remove("has-error");
  setStatus("live", "live");
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = "status " + (kind || "");
}

// ---- state: campaign, recipients, variants ---------------------------------------------

async function loadState() {
  state = await getJSON("/api/state");
  if (state.error) {
    showError(state.error);
    document.body.dataset.version = state.version;
    return;
  }
  $("campaign-id").textContent = state.campaign.id;
  fillLanguages(state.languages);
  fillRecipients(state.recipients);
  const send = $("send-test");
  send.textContent = state.test_address ? `Send test to ${state.test_address}` : "Send test";
  send.title = state.test_address
    ? `as the selected recipient, via ${state.transport}; subject starts with [TEST]`
    : "no test address set (test_address in mailer.toml or MAILER_TEST_ADDRESS)";
  await loadView();
}

// One entry per language version; hidden when the campaign has only one.
function fillLanguages(languages) {
  const select = $("language");
  select.replaceChildren(...languages.map((l) => el("option", { value: l.key }, l.label)));
  if (!languages.some((l) => l.key === ui.lang)) ui.lang = null;
  $("language-box").hidden = languages.length < 2;
}

// The recipients who read the chosen version; if none of the samples does, all of them
// (the server then shows the chosen one as a stand-in reader of that version).
function fillRecipients(recipients) {
  if (ui.lang === null) {
    const current = recipients.find((r) => r.email === ui.email) || recipients[0];
    ui.lang = current ? current.language : "";
  }
  const readers = recipients.filter((r) => r.language === ui.lang);
  const shown = readers.length ? readers : recipients;
  const select = $("recipient");
  select.replaceChildren(...shown.map((r) => el("option", { value: r.email }, r.label)));
  if (!shown.some((r) => r.email === ui.email)) ui.email = shown.length ? shown[0].email : null;
  select.value = ui.email || "";
  $("language").value = ui.lang;
}

// The variants of the version on screen (each language has its own subjects).
function fillVariants(rows) {
  const select = $("variant");
  const options = [el("option", { value: "auto" }, "as assigned")];
  for (const row of rows) options.push(el("option", { value: String(row.variant) }, `${row.label}: ${row.subject}`));
  select.replaceChildren(...options);
  if (ui.variant !== "auto" && Number(ui.variant) >= rows.length) ui.variant = "auto";
  select.value = ui.variant;
  select.disabled = rows.length < 2;
}

// ---- one recipient's email -------------------------------------------------------------

async function loadView() {
  const seq = ++viewSeq;
  const params = new URLSearchParams({ email: ui.email || "", variant: ui.variant, lang: ui.lang || "" });
  const view = await getJSON("/api/view?" + params);
  if (seq !== viewSeq) return; // a newer request is on its way
  if (view.error) {
    showError(view.error);
  } else {
    hideError();
    lastView = view;
    renderView(view);
    loadChecks(seq, params);
  }
  document.body.dataset.version = view.version;
}

function renderView(view) {
  renderInbox(view);
  fillVariants(view.inbox);
  const label = view.variant === view.assigned ? `${view.label} (assigned)` : `${view.label} (assigned: ${String.fromCharCode(65 + view.assigned)})`;
  const own = state.recipients.find((r) => r.email === view.recipient.email);
  const standIn = own && own.language !== view.language ? ` · shown as a reader of ${$("language").selectedOptions[0].textContent}` : "";
  $("meta").textContent = `To ${view.recipient.label}${standIn} · variant ${label} · ${(view.size / 1024).toFixed(1)} KB`;
  renderFrames();
  $("tab-text").textContent = view.text;
  $("headers").replaceChildren(...view.headers.map(([name, value]) => el("tr", {}, el("th", {}, name), el("td", {}, value))));
  $("raw-headers").textContent = view.raw_headers;
  $("dkim").textContent = view.dkim || "Not DKIM-signed: mailer.toml has no [dkim] key.";
}

function renderInbox(view) {
  const rows = view.inbox.map((row) => {
    const tags = [el("span", { class: "tag" }, row.label)];
    if (row.variant === view.assigned) tags.push(el("span", { class: "tag" }, "assigned"));
    const item = el(
      "li",
      { class: row.variant === view.variant ? "selected" : "", "data-variant": String(row.variant), title: row.subject },
      el("div", { class: "row1" }, el("span", { class: "from" }, row.from_cut), el("span", { class: "when" }, "now", ...tags)),
      el("div", { class: "subject" }, row.subject_cut),
      el("div", { class: "pre" }, row.preheader_cut),
    );
    item.addEventListener("click", () => chooseVariant(String(row.variant)));
    return item;
  });
  $("inbox").replaceChildren(...rows);
}

// Dark mode as mail apps do it: a template with its own dark styles gets them (Apple Mail);
// one without is colour-inverted with images kept (Gmail and Outlook apps).
function srcdoc(html, dark) {
  let head = '<base target="_blank">';
  let note = "";
  if (dark && /prefers-color-scheme\s*:\s*dark/i.test(html)) {
    html = html.replace(/prefers-color-scheme\s*:\s*dark/gi, "min-width: 0px");
    note = "· dark: the template's own dark styles";
  } else if (dark) {
    head += "<style>html{filter:invert(1) hue-rotate(180deg);background:#fff}" +
      "img,picture,video{filter:invert(1) hue-rotate(180deg)}</style>";
    note = "· dark: forced inversion (no dark styles in the template)";
  }
  for (const span of document.querySelectorAll(".dark-note")) span.textContent = note;
  const match = /<head[^>]*>/i.exec(html);
  return match ? html.slice(0, match.index + match[0].length) + head + html.slice(match.index + match[0].length) : head + html;
}

const FRAMES = [["frame-phone", 667], ["frame-desktop", 600]];

function renderFrames() {
  if (!lastView) return;
  $("tab-email").classList.toggle("dark", ui.dark);
  for (const [id, fold] of FRAMES) {
    const frame = $(id);
    frame.onload = () => fitFrame(frame, fold);
    frame.srcdoc = srcdoc(lastView.html, ui.dark);
  }
}

// A frame that loaded while hidden (another tab or width) measured nothing: fit it when shown.
function fitFrames() {
  for (const [id, fold] of FRAMES) fitFrame($(id), fold);
}

function fitFrame(frame, fold) {
  if (frame.offsetParent === null) return; // hidden: fitFrames runs when it is shown
  try {
    // The content's own height (scrollHeight never drops below the frame's current height).
    const height = Math.ceil(frame.contentDocument.documentElement.getBoundingClientRect().height);
    frame.style.height = Math.max(height + 16, fold + 60) + "px";
  } catch (e) {
    frame.style.height = "1200px";
  }
}

// ---- checks ------------------------------------------------------------------------------

async function loadChecks(seq, params) {
  const box = $("checks");
  box.replaceChildren("checking…");
  // Wait a moment: while the user clicks through recipients, only the last one is checked.
  await new Promise((resolve) => setTimeout(resolve, 400));
  if (seq !== viewSeq) return;
  const report = await getJSON("/api/checks?" + params);
  if (seq !== viewSeq) return;
  box.replaceChildren(...checksView(report));
}

function checksView(report) {
  if (!report.available) return [el("p", { class: "unavailable" }, "Checks unavailable: " + report.reason)];
  const c = report.counts;
  const parts = [el("p", { class: "summary" }, `${c.error} error(s) · ${c.warning} warning(s) · ${c.info} note(s)`)];
  const subjects = report.subjects.map((s) =>
    el("tr", {}, el("td", {}, s.variant), el("td", {}, s.subject), el("td", {}, `${s.score}/100`), el("td", {}, `${s.width} col`)));
  if (subjects.length) parts.push(el("table", {}, ...subjects));
  if (report.fold.ran) {
    const rows = report.fold.measurements.map((m) => {
      const worst = Math.max(0, ...m.blocks.map((b) => b.bottom));
      const verdict = worst <= m.viewport.height ? "above the fold" : "BELOW the fold";
      const screen = `${m.viewport.name} ${m.viewport.width}×${m.viewport.height}`;
      return el("tr", {}, el("td", {}, m.sample), el("td", {}, screen), el("td", {}, `key blocks end at ${worst}px: ${verdict}`));
    });
    parts.push(el("p", {}, "Fold (measured in Chromium):"), el("table", { class: "fold-results" }, ...rows));
  } else {
    parts.push(el("p", { class: "unavailable" }, "Fold " + report.fold.note));
  }
  const items = report.findings.map((f) =>
    el("li", { class: f.severity }, el("span", { class: "code" }, `${f.severity} ${f.code} `), f.message, el("span", { class: "where" }, f.where)));
  parts.push(el("ul", {}, ...items));
  return parts;
}

// ---- controls ------------------------------------------------------------------------------

function chooseVariant(value) {
  ui.variant = value;
  $("variant").value = value;
  loadView();
}

function setMode(mode) {
  ui.mode = mode;
  const frames = $("tab-email");
  frames.classList.remove("mode-phone", "mode-desktop", "mode-both");
  frames.classList.add("mode-" + mode);
  for (const button of document.querySelectorAll("[data-mode]")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }
  fitFrames();
}

function setTab(tab) {
  ui.tab = tab;
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
    $("tab-" + button.dataset.tab).hidden = button.dataset.tab !== tab;
  }
  if (tab === "email") fitFrames();
}

async function sendTest() {
  const button = $("send-test");
  const result = $("send-result");
  button.disabled = true;
  try {
    const answer = await getJSON("/api/send-test", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: ui.email, variant: ui.variant === "auto" ? null : ui.variant, lang: ui.lang }),
    });
    result.hidden = false;
    result.classList.toggle("failed", !answer.ok);
    result.textContent = answer.ok
      ? `Test sent to ${answer.to} via ${answer.transport}: “${answer.subject}” (${answer.code} ${answer.reply})`
      : "Test not sent: " + (answer.error ? answer.error.text : `${answer.code} ${answer.reply}`);
  } finally {
    button.disabled = false;
  }
}

$("recipient").addEventListener("change", (e) => { ui.email = e.target.value; loadView(); });
$("language").addEventListener("change", (e) => {
  ui.lang = e.target.value;
  ui.variant = "auto"; // another version has its own subjects
  fillRecipients(state.recipients);
  loadView();
});
$("variant").addEventListener("change", (e) => chooseVariant(e.target.value));
$("dark").addEventListener("change", (e) => { ui.dark = e.target.checked; renderFrames(); });
$("send-test").addEventListener("click", sendTest);
for (const button of document.querySelectorAll("[data-mode]")) button.addEventListener("click", () => setMode(button.dataset.mode));
for (const button of document.querySelectorAll("[data-tab]")) button.addEventListener("click", () => setTab(button.dataset.tab));

// Live reload: the server sends the version whenever a watched file changes.
const events = new EventSource("/events");
events.addEventListener("version", (e) => {
  if (Number(e.data) !== Number(document.body.dataset.version)) loadState();
});
events.onerror = () => setStatus("reconnecting…", "");
events.onopen = () => { if (!document.body.classList.contains("has-error")) setStatus("live", "live"); };
loadState();
