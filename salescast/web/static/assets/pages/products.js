// Products: the catalogue a page at a time, searched on the server (GET /products?search=&page=).

import { el, notice, number, table } from "../ui.js";

export const NAME = "products";
const PAGE_SIZE = 25;

export async function render(view, route, ctx) {
  const search = route.query.get("search") || "";
  const category = route.query.get("category") || "";
  const page = Math.max(1, Number.parseInt(route.query.get("page") || "1", 10) || 1);
  const result = await ctx.api.get("/products", { search, category, page, page_size: PAGE_SIZE });
  const pages = Math.max(1, Math.ceil(result.total / PAGE_SIZE));
  const to = (n) => ctx.link("/products", { search, category, page: n });

  view.append(el("h1", { text: "Products" }),
    el("form", { class: "search", role: "search", onsubmit: (event) => {
      event.preventDefault();
      ctx.go(ctx.link("/products", { search: event.target.elements.search.value.trim(), category }));
    } },
    el("label", { for: "search", text: "Search id or name" }),
    el("input", { id: "search", name: "search", type: "search", value: search }),
    el("button", { type: "submit", text: "Search" })));

  if (!result.total) {
    view.append(notice("info", "No products", search ? `No product matches “${search}”.` : "The catalogue is empty: ingest sales first (salescast ingest FILE)."));
    return;
  }
  view.append(el("p", { class: "muted", "data-testid": "product-count" }, `${number(result.total, 0)} products, page ${page} of ${pages}`),
    table([
      { label: "Product", cell: (p) => el("a", { href: ctx.link(`/product/${encodeURIComponent(p.product_id)}`), text: p.product_id }) },
      { label: "Name", cell: (p) => p.name },
      { label: "Category", cell: (p) => p.category },
      { label: "Stores", cell: (p) => p.stores.join(", ") },
      { label: "", cell: (p) => el("a", { href: ctx.link(`/whatif/${encodeURIComponent(p.product_id)}`), text: "What-if" }) },
    ], result.items, { caption: "Catalogue", testid: "products", wide: true }),
    el("nav", { class: "pager", "aria-label": "Pages of products" },
      page > 1 ? el("a", { href: to(page - 1), rel: "prev", text: "← Previous" }) : el("span", { class: "muted", text: "← Previous" }),
      el("span", { text: `${page} / ${pages}` }),
      page < pages ? el("a", { href: to(page + 1), rel: "next", text: "Next →" }) : el("span", { class: "muted", text: "Next →" })));
}
