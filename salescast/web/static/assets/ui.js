// Small DOM helpers: elements built from data with textContent (no HTML from the API is ever parsed),
// number formats, and the loading, empty and error states every page shares.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function number(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function percent(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${number(value, digits)} %`;
}

export function money(value) {
  return value === null || value === undefined ? "–" : number(value, 2);
}

export function when(iso) {
  if (!iso) return "–";
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : `${moment.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function loading(root, what = "Loading…") {
  root.replaceChildren(el("p", { class: "loading", role: "status", text: what }));
}

export function notice(kind, title, text, ...extra) {
  return el("section", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    el("h2", { text: title }), el("p", { text }), ...extra);
}

export function errorNotice(error, ctx) {
  const kind = error && error.kind ? error.kind : "server";
  const titles = {
    unreachable: "API unreachable",
    auth: "Key rejected",
    scope: "Not allowed with this key",
    "no-model": "No production model yet",
    "not-found": "Not found",
    invalid: "Request refused",
    limited: "Slow down",
    server: "The API failed",
  };
  const message = error && error.kind ? error.message : "Something went wrong while showing this page.";
  const actions = [];
  if ((kind === "auth" || kind === "scope") && ctx) {
    actions.push(el("button", { type: "button", class: "primary", text: "Enter another key", onclick: () => ctx.askKey() }));
  }
  if (kind === "unreachable" || kind === "server" || kind === "limited") {
    actions.push(el("button", { type: "button", text: "Try again", onclick: () => ctx && ctx.rerender() }));
  }
  return notice("error", titles[kind] || "Error", message, actions.length ? el("p", { class: "actions" }, actions) : null);
}

export function table(columns, rows, options = {}) {
  const head = el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.numeric ? "num" : null, text: c.label }))));
  const body = el("tbody", {}, rows.map((row, index) => {
    const attributes = options.rowAttributes ? options.rowAttributes(row, index) : {};
    return el("tr", attributes, columns.map((c) => {
      const value = c.cell(row, index);
      const cell = el("td", { class: c.numeric ? "num" : null, dataset: c.key ? { col: c.key } : undefined });
      cell.append(value instanceof Node ? value : document.createTextNode(value === null || value === undefined ? "–" : String(value)));
      return cell;
    }));
  }));
  const caption = options.caption ? el("caption", { text: options.caption }) : null;
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": options.caption || "table" },
    el("table", { "data-testid": options.testid, class: options.wide ? "wide" : null }, caption, head, body));
}

export function card(label, value, testid, hint) {
  return el("div", { class: "card" },
    el("div", { class: "card-label", text: label }),
    el("div", { class: "card-value", "data-testid": testid, text: value }),
    hint ? el("div", { class: "card-hint", text: hint }) : null);
}

export function select(id, label, options, chosen, onchange) {
  const control = el("select", { id, name: id, onchange: (event) => onchange(event.target.value) },
    options.map(([value, text]) => el("option", { value, selected: value === chosen, text })));
  return el("div", { class: "field" }, el("label", { for: id, text: label }), control);
}

export function trend(pct) {
  if (pct === null || pct === undefined) return el("span", { class: "trend flat", "aria-label": "no history to compare", text: "–" });
  const up = pct > 0.5;
  const down = pct < -0.5;
  const arrow = up ? "▲" : down ? "▼" : "▶";
  const words = up ? "up" : down ? "down" : "flat";
  return el("span", { class: `trend ${words}`, "aria-label": `${words} ${number(Math.abs(pct))} percent vs the days before` },
    `${arrow} ${pct > 0 ? "+" : ""}${number(pct)} %`);
}
