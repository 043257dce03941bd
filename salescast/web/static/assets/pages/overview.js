// Overview: the top products of a period (GET /forecast/top-products), with totals, trend arrows and
// the units of the ranked products by category.

import { barChart } from "../charts.js";
import { card, el, errorNotice, money, notice, number, select, table, trend } from "../ui.js";

export const NAME = "overview";

const PERIODS = [["week", "Next week"], ["month", "Next month (30 days)"], ["quarter", "Next quarter (91 days)"]];
const RANKS = [["units", "Units"], ["revenue", "Revenue"]];
const LIMITS = ["10", "20", "50", "100"];

export async function render(view, route, ctx) {
  const q = route.query;
  const chosen = {
    time_period: q.get("period") || "month",
    category: q.get("category") || "",
    store: q.get("store") || "",
    rank_by: q.get("rank") || "units",
    limit: q.get("limit") || "20",
  };
  const ranking = ctx.api.get("/forecast/top-products", chosen);
  ranking.catch(() => null); // awaited below, after the catalogue tells an empty store from a missing model
  const [categories, stores] = await Promise.all([ctx.api.get("/categories"), ctx.api.get("/stores")]);
  let top;
  try {
    top = await ranking;
  } catch (error) {
    if (error.kind === "no-model" && !categories.length && !stores.length) {
      view.append(el("h1", { text: "Overview" }),
        notice("info", "The catalogue is empty", "Nothing has been ingested yet: load sales (salescast ingest FILE), then train a model (salescast pipeline run)."));
      return;
    }
    if (error.kind === "no-model") {
      // Sales but no model yet: the page keeps its heading, so a person still knows where they are.
      view.append(el("h1", { text: "Overview" }), errorNotice(error, ctx));
      return;
    }
    throw error;
  }
  const go = (change) => {
    const next = { ...chosen, ...change };
    ctx.go(ctx.link("/", { period: next.time_period, category: next.category, store: next.store, rank: next.rank_by, limit: next.limit }));
  };

  const search = el("form", { class: "search", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const term = event.target.elements.search.value.trim();
    ctx.go(ctx.link("/products", { search: term }));
  } },
  el("label", { for: "search", text: "Find a product" }),
  el("input", { id: "search", name: "search", type: "search", placeholder: "id or name" }),
  el("button", { type: "submit", text: "Search" }));

  const filters = el("div", { class: "filters" },
    select("f-period", "Period", PERIODS, chosen.time_period, (v) => go({ time_period: v })),
    select("f-category", "Category", [["", "All categories"], ...categories.map((c) => [c.name, c.parent ? `${c.parent} › ${c.name}` : c.name])], chosen.category, (v) => go({ category: v })),
    select("f-store", "Store", [["", "All stores"], ...stores.map((s) => [s.code, s.name ? `${s.code} ${s.name}` : s.code])], chosen.store, (v) => go({ store: v })),
    select("f-rank", "Rank by", RANKS, chosen.rank_by, (v) => go({ rank_by: v })),
    select("f-limit", "Show", LIMITS.map((n) => [n, `Top ${n}`]), chosen.limit, (v) => go({ limit: v })));

  view.append(el("h1", { text: "Overview" }), search, filters);
  if (!top.products.length) {
    view.append(notice("info", "No products", categories.length || stores.length
      ? "No product matches these filters."
      : "The catalogue is empty: ingest sales first (salescast ingest FILE)."));
    return;
  }
  const units = top.products.reduce((sum, p) => sum + p.units.p50, 0);
  const revenue = top.products.reduce((sum, p) => sum + (p.revenue || 0), 0);
  view.append(el("div", { class: "cards" },
    card("Model serving", `${top.model} v${top.model_version}`, "model-version"),
    card("Period", `${top.period_start} – ${top.period_end}`, "period"),
    card("Products matched", number(top.total, 0), "total-products"),
    card(`Units (p50), top ${top.products.length}`, number(units, 1), "total-units"),
    card(`Revenue, top ${top.products.length}`, money(revenue), "total-revenue")));

  const byCategory = new Map();
  for (const p of top.products) {
    const name = p.category || "(none)";
    byCategory.set(name, (byCategory.get(name) || 0) + p.units.p50);
  }
  const breakdown = [...byCategory.entries()].sort((a, b) => b[1] - a[1]);
  const breakdownPanel = el("section", { class: "panel" },
    el("h2", { text: `Units of the top ${top.products.length} by category` }),
    barChart("Forecast units of the ranked products by category", breakdown.map((b) => b[0]), breakdown.map((b) => Math.round(b[1] * 10) / 10), "units (p50)"),
    table([
      { label: "Category", cell: (b) => b[0] },
      { label: "Units (p50)", numeric: true, key: "units", cell: (b) => number(b[1], 1) },
    ], breakdown, { caption: "Category breakdown", testid: "category-breakdown" }));
  const topPanel = el("section", { class: "panel" },
    el("h2", { text: "Top products" }),
    table([
      { label: "#", numeric: true, cell: (p) => p.rank },
      { label: "Product", key: "product", cell: (p) => el("a", { href: ctx.link(`/product/${encodeURIComponent(p.product_id)}`, { store: chosen.store }), text: p.product_id }) },
      { label: "Name", cell: (p) => p.name },
      { label: "Category", cell: (p) => p.category },
      { label: "Units p50", numeric: true, key: "p50", cell: (p) => number(p.units.p50, 1) },
      { label: "p10 – p90", numeric: true, cell: (p) => `${number(p.units.p10, 1)} – ${number(p.units.p90, 1)}` },
      { label: "Revenue", numeric: true, key: "revenue", cell: (p) => money(p.revenue) },
      { label: "Trend", cell: (p) => trend(p.trend_pct) },
    ], top.products, { caption: `Ranked by ${chosen.rank_by}, ${top.period_start} – ${top.period_end}`, testid: "top-products", wide: true, rowAttributes: (p) => ({ "data-product": p.product_id }) }));
  view.append(el("div", { class: "overview-grid" }, topPanel, breakdownPanel));
}
