// Data: the latest ingestion runs with their counts and status, the rows a run rejected (line, column,
// reason) and the newest sales date the store holds (freshness).

import { card, el, notice, number, table, when } from "../ui.js";

export const NAME = "data";

function daysSince(iso) {
  const today = new Date();
  const then = new Date(`${iso}T00:00:00Z`);
  return Math.floor((Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()) - then.getTime()) / 86400000);
}

export async function render(view, route, ctx) {
  const runId = route.query.get("run");
  const overview = await ctx.api.get("/data/runs", { limit: 20 });
  view.append(el("h1", { text: "Data" }));
  if (!overview.products && !overview.runs.length) {
    view.append(notice("info", "The store is empty", "Nothing has been ingested yet: salescast ingest FILE."));
    return;
  }
  const age = overview.newest_sales_date ? daysSince(overview.newest_sales_date) : null;
  view.append(el("div", { class: "cards" },
    card("Newest sales date", overview.newest_sales_date || "–", "newest-sales-date", age === null ? null : `${number(age, 0)} day(s) ago`),
    card("First sales date", overview.first_sales_date || "–", "first-sales-date"),
    card("Products", number(overview.products, 0), "data-products"),
    card("Sales rows", number(overview.sales_rows, 0), "data-sales-rows")));

  view.append(el("section", { class: "panel" }, el("h2", { text: "Ingestion runs" }),
    table([
      { label: "Run", numeric: true, key: "id", cell: (r) => r.id },
      { label: "Source", cell: (r) => r.source.split("/").pop() },
      { label: "Status", cell: (r) => el("span", { class: `badge ${r.status === "succeeded" ? "ok" : r.status === "running" ? "" : "bad"}`, text: r.status }) },
      { label: "Started", cell: (r) => when(r.started_at) },
      { label: "Read", numeric: true, key: "read", cell: (r) => number(r.rows_read, 0) },
      { label: "Accepted", numeric: true, key: "accepted", cell: (r) => number(r.rows_accepted, 0) },
      { label: "Rejected", numeric: true, key: "rejected", cell: (r) => number(r.rows_rejected, 0) },
      { label: "Inserted", numeric: true, key: "inserted", cell: (r) => number(r.facts_inserted, 0) },
      { label: "Updated", numeric: true, key: "updated", cell: (r) => number(r.facts_updated, 0) },
      { label: "Message", cell: (r) => r.message },
      { label: "", cell: (r) => (r.rows_rejected ? el("a", { href: ctx.link("/data", { run: r.id }), text: "Rejected rows" }) : "") },
    ], overview.runs, { caption: "The newest runs first", testid: "runs", wide: true, rowAttributes: (r) => ({ "data-run": r.id }) })));

  if (runId) {
    const rejects = await ctx.api.get(`/data/runs/${encodeURIComponent(runId)}/rejects`, { limit: 200 });
    view.append(el("section", { class: "panel", id: "rejects" }, el("h2", { text: `Rows run ${rejects.run_id} rejected` }),
      el("p", { class: "muted", "data-testid": "rejects-count" }, `${number(rejects.rows_rejected, 0)} rejected in all, ${number(rejects.rows.length, 0)} shown.`),
      table([
        { label: "Line", numeric: true, key: "line", cell: (r) => r.line },
        { label: "Column", key: "column", cell: (r) => r.column },
        { label: "Reason", key: "reason", cell: (r) => r.reason },
        { label: "Row", cell: (r) => r.raw },
      ], rejects.rows, { caption: "Rejected rows by line", testid: "rejects", wide: true })));
  }
}
