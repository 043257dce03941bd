// The dashboard's shell: reads config.json (where the API is), keeps the key in sessionStorage, routes
// on the URL's hash (#/product/P123?store=S1) so that deep links and the back button work on any
// static host, and renders one page at a time into <main>.

import { Api, ApiError, storeKey, storedKey } from "./api.js";
import { destroyCharts } from "./charts.js";
import { el, errorNotice, loading, notice } from "./ui.js";
import * as overview from "./pages/overview.js";
import * as products from "./pages/products.js";
import * as product from "./pages/product.js";
import * as whatif from "./pages/whatif.js";
import * as models from "./pages/models.js";
import * as deployments from "./pages/deployments.js";
import * as data from "./pages/data.js";

// [pattern, page module, nav entry]; the first match wins.
const ROUTES = [
  [/^\/?$/, overview, "overview"],
  [/^\/products$/, products, "product"],
  [/^\/product\/([^/]+)$/, product, "product"],
  [/^\/whatif(?:\/([^/]+))?$/, whatif, "whatif"],
  [/^\/models(?:\/([^/]+))?$/, models, "models"],
  [/^\/deployments(?:\/([^/]+))?$/, deployments, "deployments"],
  [/^\/data$/, data, "data"],
];

const main = document.getElementById("main");
const timings = [];
window.salescastTimings = timings;

/** The hash as a route: a path, its captured parts and its query. */
function currentRoute() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path: decodeURIComponent(path), query: new URLSearchParams(search) };
}

/** The hash for `path` and `query` (empty values left out). */
export function link(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const search = params.toString();
  return `#${path}${search ? `?${search}` : ""}`;
}

function setNav(active) {
  for (const anchor of document.querySelectorAll("#nav a")) {
    if (anchor.dataset.page === active) anchor.setAttribute("aria-current", "page");
    else anchor.removeAttribute("aria-current");
  }
}

function updateKeyButton() {
  const button = document.getElementById("key-button");
  const key = storedKey();
  button.textContent = key ? `Key ${key.slice(0, 11)}…` : "API key";
  button.setAttribute("aria-label", key ? "Change or forget the API key" : "Enter an API key");
}

async function askKey() {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  input.value = "";
  dialog.returnValue = ""; // Escape closes without a value: never the previous one
  dialog.showModal();
  input.focus();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue === "save" && input.value.trim()) storeKey(input.value.trim());
  else if (dialog.returnValue === "forget") storeKey("");
  else return;
  ctx.identity = null;
  updateKeyButton();
  render();
}

/** Ask before a change: resolves to the reason typed, or null when cancelled. */
function confirmAction(title, text, confirmLabel) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  const reason = document.getElementById("confirm-reason");
  reason.value = "";
  dialog.returnValue = ""; // Escape closes without a value: never the previous confirmation
  dialog.showModal();
  reason.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm" ? reason.value.trim() : null), { once: true });
  });
}

const ctx = {
  api: null,
  config: {},
  identity: null,
  link,
  askKey,
  confirm: confirmAction,
  rerender: () => render(),
  go: (hash) => {
    window.location.hash = hash;
  },
  /** What the key may do ({name, prefix, scopes}), asked once per key; null when it cannot be told. */
  async whoami() {
    if (this.identity) return this.identity;
    this.identity = await this.api.get("/keys/me");
    return this.identity;
  },
  has(scope) {
    return Boolean(this.identity && this.identity.scopes.includes(scope));
  },
};

function keyPrompt() {
  main.replaceChildren(notice("info", "An API key is needed",
    "This dashboard calls the salescast API with your key. Ask an operator for one (salescast keys create NAME --scope read).",
    el("p", { class: "actions" }, el("button", { type: "button", class: "primary", text: "Enter an API key", onclick: askKey }))));
  main.dataset.ready = "true";
}

let generation = 0;

async function render() {
  const started = performance.now();
  const mine = ++generation;
  const route = currentRoute();
  destroyCharts();
  main.dataset.ready = "false";
  let found = null;
  for (const [pattern, page, nav] of ROUTES) {
    const match = route.path.match(pattern);
    if (match) {
      found = { page, nav, parts: match.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p))) };
      break;
    }
  }
  setNav(found ? found.nav : null);
  if (!found) {
    main.replaceChildren(notice("error", "No such page", `There is no page at #${route.path}.`,
      el("p", {}, el("a", { href: "#/", text: "Go to the overview" }))));
    main.dataset.ready = "true";
    return;
  }
  if (!storedKey() && !ctx.config.openRead) {
    keyPrompt();
    return;
  }
  loading(main);
  const view = el("div", { class: "page" });
  try {
    await found.page.render(view, { parts: found.parts, query: route.query }, ctx);
  } catch (error) {
    if (mine !== generation) return;
    view.replaceChildren(errorNotice(error instanceof ApiError ? error : null, ctx));
    if (!(error instanceof ApiError)) console.warn("page failed", error); // for a developer's console only
  }
  if (mine !== generation) return; // a newer navigation took over
  main.replaceChildren(view);
  const heading = view.querySelector("h1");
  document.title = heading ? `${heading.textContent} · salescast` : "salescast dashboard";
  main.dataset.ready = "true";
  main.dataset.page = found.page.NAME;
  timings.push({ page: found.page.NAME, hash: window.location.hash, render_ms: performance.now() - started, ready_ms: performance.now() });
}

async function start() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    ctx.config = await response.json();
  } catch {
    ctx.config = { apiUrl: "" };
  }
  ctx.api = new Api(ctx.config.apiUrl || "");
  updateKeyButton();
  document.getElementById("key-button").addEventListener("click", askKey);
  // The skip link moves focus, not the URL: the hash is the page's address here.
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  window.addEventListener("hashchange", () => {
    render();
    main.focus({ preventScroll: true });
  });
  render();
}

start();
