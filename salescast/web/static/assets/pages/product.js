// Product: recent sales and the forecast with its p10-p90 band, promotion days and holidays marked, the
// model version that served it and its backtest accuracy on the product's category.

import { forecastChart } from "../charts.js";
import { card, el, notice, number, select, table } from "../ui.js";

export const NAME = "product";
const HORIZONS = ["7", "14", "28"];
const HISTORY_DAYS = 56;

function addDays(iso, days) {
  const day = new Date(`${iso}T00:00:00Z`);
  day.setUTCDate(day.getUTCDate() + days);
  return day.toISOString().slice(0, 10);
}

export async function render(view, route, ctx) {
  const id = route.parts[0];
  const store = route.query.get("store") || "";
  const horizon = route.query.get("horizon") || "28";
  const [forecast, catalogue, stores, categories] = await Promise.all([
    ctx.api.get(`/forecast/products/${encodeURIComponent(id)}`, { horizon, store, history_days: HISTORY_DAYS }),
    ctx.api.get("/products", { search: id, page_size: 20 }),
    ctx.api.get("/stores"),
    ctx.api.get("/categories"),
  ]);
  const item = catalogue.items.find((p) => p.product_id === id) || null;
  const start = addDays(forecast.forecast_start, -HISTORY_DAYS);
  const [calendar, versions] = await Promise.all([
    ctx.api.get(`/products/${encodeURIComponent(id)}/calendar`, { start, days: HISTORY_DAYS + forecast.forecast.length }),
    ctx.api.get(`/models/${encodeURIComponent(forecast.model)}/versions`),
  ]);
  const version = versions.find((v) => v.version === forecast.model_version);
  const card_ = version && version.metrics && version.metrics.card;
  const category = item && item.category;
  // The backtest scores top-level categories: a sub-category's product is judged with its parent's.
  const parent = category ? (categories.find((c) => c.name === category) || {}).parent : null;
  const scored = parent || category;
  const accuracy = card_ && card_.categories && scored ? card_.categories[scored] || null : null;

  const go = (change) => ctx.go(ctx.link(`/product/${encodeURIComponent(id)}`, { store, horizon, ...change }));
  view.append(el("h1", { text: item && item.name ? `${id} · ${item.name}` : id }),
    el("p", { class: "muted" }, category ? `Category ${parent ? `${parent} › ` : ""}${category}` : "", " · ",
      el("a", { href: ctx.link(`/whatif/${encodeURIComponent(id)}`, { store }), text: "What if the price or promotions change?" })),
    el("div", { class: "filters" },
      select("f-store", "Store", [["", "All stores"], ...stores.map((s) => [s.code, s.code])], store, (v) => go({ store: v })),
      select("f-horizon", "Days ahead", HORIZONS.map((h) => [h, `${h} days`]), horizon, (v) => go({ horizon: v }))));

  const promotions = new Set(calendar.promotion_days);
  const holidays = new Map(calendar.holidays.map((h) => [h.date, h.name]));
  const total = forecast.forecast.reduce((sum, d) => sum + d.mean, 0);
  view.append(el("div", { class: "cards" },
    card("Model serving", `${forecast.model} v${forecast.model_version}`, "model-version"),
    card("Forecast from", forecast.forecast_start, "forecast-start"),
    card(`Units over ${forecast.forecast.length} days`, number(total, 1), "forecast-total", "sum of daily means"),
    card(scored ? `Backtest MASE, ${scored}` : "Backtest MASE", accuracy && accuracy.ensemble ? number(accuracy.ensemble.mase, 3) : "–", "category-mase",
      accuracy && accuracy.snaive ? `SeasonalNaive ${number(accuracy.snaive.mase, 3)}; WAPE ${number(accuracy.ensemble.wape, 1)} %` : "not recorded for this version"),
  ));

  const dates = [];
  const history = new Map(forecast.history.map((h) => [h.date, h.units]));
  for (let day = start; day < forecast.forecast_start; day = addDays(day, 1)) dates.push(day);
  const ahead = forecast.forecast.map((d) => d.date);
  const all = [...dates, ...ahead];
  const pad = (values) => [...dates.map(() => null), ...values];
  view.append(el("section", { class: "panel" },
    el("h2", { text: "Sales and forecast" }),
    forecastChart(`Daily units of ${id}: ${HISTORY_DAYS} days of sales and ${ahead.length} days of forecast with the p10 to p90 band`, {
      dates: all,
      history: [...dates.map((d) => (history.has(d) ? history.get(d) : 0)), ...ahead.map(() => null)],
      p10: pad(forecast.forecast.map((d) => d.p10)),
      p50: pad(forecast.forecast.map((d) => d.p50)),
      p90: pad(forecast.forecast.map((d) => d.p90)),
      values: [...forecast.history.map((h) => h.units), ...forecast.forecast.map((d) => d.p90)],
      promotions,
      holidays: new Set(holidays.keys()),
    }),
    el("p", { class: "legend-note muted" }, `Marked: ${promotions.size} promotion day(s), ${holidays.size} holiday(s) in this range.`)));

  const marks = (date) => [promotions.has(date) ? "promotion" : "", holidays.has(date) ? `holiday: ${holidays.get(date)}` : ""].filter(Boolean).join("; ");
  view.append(el("section", { class: "panel" },
    el("h2", { text: "Forecast by day" }),
    table([
      { label: "Date", key: "date", cell: (d) => d.date },
      { label: "p10", numeric: true, key: "p10", cell: (d) => number(d.p10, 2) },
      { label: "p50", numeric: true, key: "p50", cell: (d) => number(d.p50, 2) },
      { label: "p90", numeric: true, key: "p90", cell: (d) => number(d.p90, 2) },
      { label: "Marked", cell: (d) => marks(d.date) },
    ], forecast.forecast, { caption: `Forecast of ${id}${store ? ` in ${store}` : ", all stores"}`, testid: "forecast-days", rowAttributes: (d) => ({ "data-date": d.date }) })));
  if (promotions.size || holidays.size) {
    const past = [...promotions].filter((d) => d < forecast.forecast_start);
    view.append(el("section", { class: "panel" }, el("h2", { text: "Promotions and holidays" }),
      el("ul", { class: "marks" },
        past.length ? el("li", {}, `Promotion days in the sales shown: ${past.join(", ")}`) : null,
        [...holidays.entries()].map(([date, name]) => el("li", {}, `${date}: ${name}`)))));
  } else {
    view.append(notice("info", "No promotions or holidays", "None fall in the days shown."));
  }
}
