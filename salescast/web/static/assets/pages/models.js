// Models: versions with hold-out metrics against SeasonalNaive, ensemble weights, gate verdicts with
// reasons, aliases and their history; promote and rollback for admin keys, each behind a confirmation.

import { ApiError } from "../api.js";
import { card, el, errorNotice, notice, number, percent, select, table, when } from "../ui.js";

export const NAME = "models";

function metric(version, which, name) {
  const values = version.metrics && version.metrics[which];
  return values && values[name] !== undefined ? values[name] : null;
}

function gateCell(version) {
  const gate = version.gate;
  if (!gate) return el("span", { class: "muted", text: version.reason || "no gate recorded" });
  const failed = (gate.checks || []).filter((c) => !c.passed);
  const checks = (gate.checks || []).map((c) => `${c.passed ? "✓" : "✗"} ${c.metric} ${number(c.value, 3)} ${c.required}${c.reference === null ? "" : ` (${c.against} ${number(c.reference, 3)})`}`);
  return el("div", {},
    el("span", { class: `badge ${gate.passed ? "ok" : "bad"}`, text: gate.passed ? "passed" : "failed" }),
    el("ul", { class: "checks" }, (failed.length ? failed.map((c) => `${c.metric} ${number(c.value, 3)} fails ${c.required}`) : checks).map((t) => el("li", { text: t }))));
}

export async function render(view, route, ctx) {
  const models = await ctx.api.get("/models");
  if (!models.length) {
    view.append(el("h1", { text: "Models" }), notice("info", "No models yet", "Train one: salescast pipeline run."));
    return;
  }
  const name = route.parts[0] || (models.find((m) => m.aliases.production) || models[0]).name;
  const [versions, history] = await Promise.all([
    ctx.api.get(`/models/${encodeURIComponent(name)}/versions`),
    ctx.api.get(`/models/${encodeURIComponent(name)}/history`),
    ctx.whoami().catch(() => null),
  ]);
  const admin = ctx.has("admin");
  const summary = models.find((m) => m.name === name);
  const aliases = summary ? summary.aliases : {};
  const production = aliases.production;
  const status = el("div", { class: "status-line", "aria-live": "polite" });

  async function change(body, title, text, label) {
    const reason = await ctx.confirm(title, text, label);
    if (reason === null) return;
    status.replaceChildren(el("p", { class: "loading", role: "status", text: "Moving the alias…" }));
    try {
      await ctx.api.post(`/models/${encodeURIComponent(name)}/aliases`, { ...body, ...(reason ? { reason } : {}) });
      ctx.rerender();
    } catch (error) {
      status.replaceChildren(errorNotice(error instanceof ApiError ? error : null, ctx));
    }
  }

  view.append(el("h1", { text: `Models · ${name}` }));
  if (models.length > 1) {
    view.append(el("div", { class: "filters" }, select("f-model", "Model", models.map((m) => [m.name, m.name]), name, (v) => ctx.go(ctx.link(`/models/${encodeURIComponent(v)}`)))));
  }
  const productionVersion = versions.find((v) => v.version === production);
  view.append(el("div", { class: "cards" },
    card("Production", production ? `v${production}` : "none", "alias-production"),
    ...Object.entries(aliases).filter(([alias]) => alias !== "production").map(([alias, v]) => card(alias, `v${v}`, `alias-${alias}`)),
    card("Versions", number(versions.length, 0), "version-count"),
    card("Production MASE", productionVersion ? number(metric(productionVersion, "candidate", "mase"), 3) : "–", "production-mase",
      productionVersion ? `SeasonalNaive ${number(metric(productionVersion, "baseline", "mase"), 3)}` : null)));

  if (admin && production) {
    const rollbacks = history.filter((e) => e.alias === "production" && e.changed);
    view.append(el("div", { class: "actions admin-actions" },
      el("button", {
        type: "button", class: "danger", "data-testid": "rollback", disabled: rollbacks.length < 2 ? true : null,
        text: "Roll production back",
        onclick: () => change({ alias: "production", action: "rollback" }, "Roll back production?",
          `Production (${name} v${production}) goes back to the version it pointed to before. Every replica follows within seconds.`, "Roll back"),
      })));
  }
  view.append(status);

  view.append(el("section", { class: "panel" }, el("h2", { text: "Versions" }),
    table([
      { label: "Version", key: "version", cell: (v) => `v${v.version}` },
      { label: "Aliases", key: "aliases", cell: (v) => v.aliases.join(", ") },
      { label: "Status", cell: (v) => v.status },
      { label: "Created", cell: (v) => when(v.created_at) },
      { label: "MASE", numeric: true, key: "mase", cell: (v) => number(metric(v, "candidate", "mase"), 3) },
      { label: "SeasonalNaive MASE", numeric: true, key: "naive-mase", cell: (v) => number(metric(v, "baseline", "mase"), 3) },
      { label: "WAPE", numeric: true, key: "wape", cell: (v) => percent(metric(v, "candidate", "wape")) },
      { label: "Coverage p10–p90", numeric: true, key: "coverage", cell: (v) => percent(metric(v, "candidate", "coverage")) },
      { label: "Weights", cell: (v) => Object.entries(v.weights).map(([f, w]) => `${f} ${number(w, 2)}`).join(", ") },
      { label: "Data", cell: (v) => `${v.data_start || "?"} – ${v.data_end || "?"}, ${number(v.series, 0)} series` },
      { label: "Gate", cell: (v) => gateCell(v) },
      ...(admin ? [{ label: "Action", cell: (v) => (v.status === "rejected" || v.version === production ? "" : el("button", {
        type: "button", class: "primary", "data-testid": `promote-${v.version}`, text: `Promote v${v.version}`,
        onclick: () => change({ alias: "production", version: v.version }, `Promote v${v.version}?`,
          `${name} v${v.version} becomes production and serves every forecast (now v${production ?? "none"}).`, "Promote"),
      })) }] : []),
    ], [...versions].sort((a, b) => b.version - a.version), { caption: "Hold-out metrics of each version against SeasonalNaive", testid: "versions", wide: true, rowAttributes: (v) => ({ "data-version": v.version }) })));

  view.append(el("section", { class: "panel" }, el("h2", { text: "Alias history" }),
    history.length ? table([
      { label: "When", cell: (e) => when(e.at) },
      { label: "Alias", cell: (e) => e.alias },
      { label: "From", cell: (e) => (e.from_version ? `v${e.from_version}` : "–") },
      { label: "To", cell: (e) => (e.to_version ? `v${e.to_version}` : "removed") },
      { label: "By", cell: (e) => e.actor },
      { label: "Reason", cell: (e) => e.reason },
    ], history, { caption: "Every alias change, newest first", testid: "alias-history", wide: true }) : el("p", { class: "muted", text: "No alias has moved yet." })));
}
