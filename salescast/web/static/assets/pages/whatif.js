// What-if: a changed price or promotion plan, computed live by the model (POST /forecast/what-if),
// beside the baseline, with the discount the API applied and where it came from.

import { ApiError } from "../api.js";
import { forecastChart } from "../charts.js";
import { card, el, errorNotice, number, percent, table } from "../ui.js";

export const NAME = "whatif";

function addDays(iso, days) {
  const day = new Date(`${iso}T00:00:00Z`);
  day.setUTCDate(day.getUTCDate() + days);
  return day.toISOString().slice(0, 10);
}

function field(id, label, attributes, hint) {
  return el("div", { class: "field" }, el("label", { for: id, text: label }), el("input", { id, name: id, ...attributes }),
    hint ? el("small", { class: "muted", text: hint }) : null);
}

export async function render(view, route, ctx) {
  const id = route.parts[0];
  view.append(el("h1", { text: id ? `What-if · ${id}` : "What-if" }));
  if (!id) {
    view.append(el("form", { class: "search", onsubmit: (event) => {
      event.preventDefault();
      const chosen = event.target.elements.product.value.trim();
      if (chosen) ctx.go(ctx.link(`/whatif/${encodeURIComponent(chosen)}`));
    } },
    el("label", { for: "product", text: "Product id" }),
    el("input", { id: "product", name: "product", required: true }),
    el("button", { type: "submit", text: "Open" })),
    el("p", { class: "muted" }, "Or pick one on the ", el("a", { href: ctx.link("/products"), text: "products page" }), "."));
    return;
  }
  const store = route.query.get("store") || "";
  const base = await ctx.api.get(`/forecast/products/${encodeURIComponent(id)}`, { horizon: 1, store, history_days: 0 });
  const versions = await ctx.api.get(`/models/${encodeURIComponent(base.model)}/versions`);
  const version = versions.find((v) => v.version === base.model_version);
  const horizon = version ? version.horizon : 7;
  const start = base.forecast_start;

  const result = el("div", { class: "whatif-result", "aria-live": "polite" });
  const form = el("form", { class: "whatif-form panel", novalidate: true },
    el("h2", { text: "Scenario" }),
    el("p", { class: "muted" }, `${horizon} days from ${start}${store ? `, store ${store}` : ", all stores"}; model v${base.model_version}.`),
    el("div", { class: "filters" },
      field("price_change_pct", "Price change, %", { type: "number", step: "any", min: "-99", max: "1000", placeholder: "e.g. -10" }),
      field("promo_days", "Promotion days from the start", { type: "number", min: "0", max: String(horizon), value: "0" }),
      field("discount", "Promotion discount, %", { type: "number", step: "any", min: "0", max: "99", placeholder: "usual" },
        "Left empty: the product's usual promotional discount")),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Compute the scenario" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = form.elements;
    const body = { product: id };
    if (store) body.store = store;
    const change = values.price_change_pct.value.trim();
    if (change) body.price_change_pct = Number(change);
    const days = Math.min(horizon, Math.max(0, Number.parseInt(values.promo_days.value || "0", 10) || 0));
    if (days) {
      body.promotion_days = Array.from({ length: days }, (_, i) => addDays(start, i));
      const discount = values.discount.value.trim();
      if (discount) body.promotion_discount_pct = Number(discount);
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    result.replaceChildren(el("p", { class: "loading", role: "status", text: "Computing…" }));
    try {
      show(result, await ctx.api.post("/forecast/what-if", body));
    } catch (error) {
      result.replaceChildren(errorNotice(error instanceof ApiError ? error : null, ctx));
    } finally {
      button.disabled = false;
      result.dataset.done = "true";
    }
  });
  view.append(form, result);
}

function show(result, answer) {
  const scenario = answer.scenario;
  const dates = answer.baseline.map((d) => d.date);
  const discount = scenario.promotion_discount_pct === null || scenario.promotion_discount_pct === undefined
    ? "none" : `${number(scenario.promotion_discount_pct, 1)} % (${scenario.promotion_discount_source})`;
  result.replaceChildren(
    el("div", { class: "cards" },
      card("Baseline units (p50)", number(answer.totals.baseline_p50, 1), "baseline-total"),
      card("Scenario units (p50)", number(answer.totals.scenario_p50, 1), "scenario-total"),
      card("Change", answer.totals.change_pct > 0 ? `+${percent(answer.totals.change_pct)}` : percent(answer.totals.change_pct), "scenario-change"),
      card("Promotion discount", discount, "scenario-discount"),
      card("Model", `v${answer.model_version}`, "model-version",
        answer.responsive_families.length ? `price-responsive: ${answer.responsive_families.join(", ")}` : "no family responds to price")),
    el("section", { class: "panel" },
      el("h2", { text: "Scenario beside the baseline" }),
      forecastChart("Baseline and scenario forecasts by day", {
        dates,
        history: dates.map(() => null),
        p10: answer.scenario_forecast.map((d) => d.p10),
        p50: answer.baseline.map((d) => d.p50),
        p90: answer.scenario_forecast.map((d) => d.p90),
        scenario: answer.scenario_forecast.map((d) => d.p50),
        values: [...answer.baseline.map((d) => d.p90), ...answer.scenario_forecast.map((d) => d.p90)],
        promotions: new Set(scenario.promotion_days || []),
        holidays: new Set(),
        labels: { p50: "baseline p50", band: "scenario p10 – p90" },
      }),
      table([
        { label: "Date", key: "date", cell: (d) => d.date },
        { label: "Baseline p50", numeric: true, key: "baseline", cell: (d) => number(d.p50, 2) },
        { label: "Scenario p50", numeric: true, key: "scenario", cell: (_, i) => number(answer.scenario_forecast[i].p50, 2) },
        { label: "Scenario p10 – p90", numeric: true, cell: (_, i) => `${number(answer.scenario_forecast[i].p10, 2)} – ${number(answer.scenario_forecast[i].p90, 2)}` },
      ], answer.baseline, { caption: "Baseline and scenario by day", testid: "whatif-days" })));
}
