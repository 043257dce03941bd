// Deployments: the traffic plan now (production, candidate, share, strategy, step, bake time left),
// the candidate's and production's error rate and latency from the prediction log, and how past
// rollouts ended.

import { card, el, notice, number, percent, select, table, when } from "../ui.js";

export const NAME = "deployments";

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export async function render(view, route, ctx) {
  const models = await ctx.api.get("/models");
  view.append(el("h1", { text: "Deployments" }));
  if (!models.length) {
    view.append(notice("info", "No models yet", "Train one: salescast pipeline run."));
    return;
  }
  const name = route.parts[0] || (models.find((m) => m.aliases.production) || models[0]).name;
  const status = await ctx.api.get(`/deployments/${encodeURIComponent(name)}`);
  if (models.length > 1) {
    view.append(el("div", { class: "filters" }, select("f-model", "Model", models.map((m) => [m.name, m.name]), name, (v) => ctx.go(ctx.link(`/deployments/${encodeURIComponent(v)}`)))));
  }
  const active = status.active;
  view.append(el("div", { class: "cards" },
    card("Production", status.production_version ? `v${status.production_version}` : "none", "deploy-production"),
    card("Candidate", active ? `v${active.candidate_version}` : "none", "deploy-candidate"),
    card("Candidate's share", active ? percent(active.share * 100, 0) : "0 %", "deploy-share"),
    card("Strategy", active ? active.strategy : "–", "deploy-strategy"),
    card("Step", active ? `${active.step + 1} of ${active.steps.length}` : "–", "deploy-step"),
    card("Bake time left", active ? duration(active.bake_seconds_left) : "–", "deploy-bake")));
  if (active) {
    view.append(notice(active.verdict === "breach" ? "error" : "info", `Controller: ${active.verdict}`, active.verdict_reason));
  } else {
    view.append(el("p", { class: "muted", text: "No deployment is active: production serves all traffic." }));
  }

  const variants = [["production", status.production], ["candidate", status.candidate]].filter(([, s]) => s);
  view.append(el("section", { class: "panel" }, el("h2", { text: "Health from the prediction log" }),
    el("p", { class: "muted", text: `Served requests since ${when(status.health_since)}.` }),
    table([
      { label: "Variant", cell: (v) => v[0] },
      { label: "Requests", numeric: true, key: "requests", cell: (v) => number(v[1].requests, 0) },
      { label: "Errors (5xx)", numeric: true, key: "errors", cell: (v) => number(v[1].errors, 0) },
      { label: "Error rate", numeric: true, key: "error-rate", cell: (v) => percent(v[1].error_rate * 100, 2) },
      { label: "Mean latency", numeric: true, key: "latency", cell: (v) => `${number(v[1].mean_latency_ms, 1)} ms` },
      { label: "p99 latency", numeric: true, cell: (v) => (v[1].p99_latency_ms === null ? "–" : `${number(v[1].p99_latency_ms, 1)} ms`) },
    ], variants, { caption: "Error rate and latency by variant", testid: "deploy-health", wide: true })));

  view.append(el("section", { class: "panel" }, el("h2", { text: "Past deployments" }),
    status.history.length ? table([
      { label: "#", numeric: true, cell: (d) => d.id },
      { label: "Started", cell: (d) => when(d.created_at) },
      { label: "Strategy", cell: (d) => d.strategy },
      { label: "From → to", cell: (d) => `v${d.production_version} → v${d.candidate_version}` },
      { label: "Status", cell: (d) => el("span", { class: `badge ${d.status === "rolled_back" ? "bad" : d.status === "completed" ? "ok" : ""}`, text: d.status.replace("_", " ") }) },
      { label: "Reason", cell: (d) => d.reason },
      { label: "By", cell: (d) => d.actor },
    ], status.history, { caption: "Newest first; a rollback says why", testid: "deploy-history", wide: true }) : el("p", { class: "muted", text: "No deployment has run yet (salescast deploy start)." })));
}
