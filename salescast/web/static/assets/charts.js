// Charts with Chart.js (from npm, see scripts/web-deps.sh). Every chart has a table of the same numbers
// beside it on its page, so nothing is shown only as a picture.

const COLORS = {
  history: "#4b5563",
  p50: "#1d4ed8",
  band: "rgba(29, 78, 216, 0.15)",
  scenario: "#c2410c",
  scenarioBand: "rgba(194, 65, 12, 0.15)",
  promotion: "#15803d",
  holiday: "#a21caf",
  bar: "#2563eb",
};

const live = new Set();

export function chartsAvailable() {
  return typeof window.Chart === "function";
}

/** Destroy the charts of the page being left (a canvas cannot be reused by a new chart). */
export function destroyCharts() {
  for (const chart of live) chart.destroy();
  live.clear();
}

function frame(label) {
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  const box = document.createElement("div");
  box.className = "chart";
  if (!chartsAvailable()) {
    box.classList.add("chart-missing");
    box.textContent = "Charts are unavailable: the charting library was not installed (scripts/web-deps.sh). The table below has the numbers.";
    return { box, canvas: null };
  }
  box.append(canvas);
  return { box, canvas };
}

function make(canvas, config) {
  const chart = new window.Chart(canvas, config);
  live.add(chart);
  return chart;
}

const baseOptions = {
  responsive: true,
  maintainAspectRatio: false,
  animation: false,
  interaction: { mode: "index", intersect: false },
  plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
};

/** Bars of one value per label (the overview's category breakdown). */
export function barChart(label, labels, values, valueLabel) {
  const { box, canvas } = frame(label);
  if (canvas) {
    make(canvas, {
      type: "bar",
      data: { labels, datasets: [{ label: valueLabel, data: values, backgroundColor: COLORS.bar }] },
      options: { ...baseOptions, indexAxis: "y", plugins: { legend: { display: false } } },
    });
  }
  return box;
}

/**
 * Daily sales and a forecast with its p10-p90 band on one date axis; promotion and holiday days as
 * markers along the bottom.
 */
export function forecastChart(label, series) {
  const { box, canvas } = frame(label);
  if (!canvas) return box;
  const dates = series.dates;
  const top = Math.max(1, ...series.values.filter((v) => v !== null && v !== undefined));
  const marker = (days, y) => dates.map((d) => (days.has(d) ? y : null));
  const datasets = [
    { label: "p90", data: series.p90, borderColor: "transparent", backgroundColor: COLORS.band, pointRadius: 0, fill: false },
    { label: (series.labels && series.labels.band) || "p10 – p90", data: series.p10, borderColor: "transparent", backgroundColor: COLORS.band, pointRadius: 0, fill: "-1" },
    { label: (series.labels && series.labels.p50) || "forecast p50", data: series.p50, borderColor: COLORS.p50, backgroundColor: COLORS.p50, pointRadius: 0, borderWidth: 2 },
  ];
  if (series.history.some((v) => v !== null && v !== undefined)) {
    datasets.push({ label: "sales", data: series.history, borderColor: COLORS.history, backgroundColor: COLORS.history, pointRadius: 0, borderWidth: 1.5 });
  }
  if (series.scenario) {
    datasets.push({ label: "scenario p50", data: series.scenario, borderColor: COLORS.scenario, backgroundColor: COLORS.scenario, pointRadius: 0, borderWidth: 2 });
  }
  if (series.promotions && series.promotions.size) {
    datasets.push({ label: "promotion", data: marker(series.promotions, 0), type: "line", showLine: false, pointStyle: "triangle", pointRadius: 6, borderColor: COLORS.promotion, backgroundColor: COLORS.promotion });
  }
  if (series.holidays && series.holidays.size) {
    datasets.push({ label: "holiday", data: marker(series.holidays, top * 0.02), type: "line", showLine: false, pointStyle: "rectRot", pointRadius: 6, borderColor: COLORS.holiday, backgroundColor: COLORS.holiday });
  }
  make(canvas, {
    type: "line",
    data: { labels: dates, datasets },
    options: {
      ...baseOptions,
      spanGaps: false,
      scales: { x: { ticks: { maxTicksLimit: 8, autoSkip: true } }, y: { beginAtZero: true, title: { display: true, text: "units" } } },
      plugins: { ...baseOptions.plugins, legend: { position: "bottom", labels: { boxWidth: 12, filter: (item) => item.text !== "p90" } } },
    },
  });
  return box;
}
