// NAS Overlay: one panel per layer with every selected run or group in its chip colour: its median NAS
// (right axis, solid), for a group the min..max band across its runs, and its test loss (left axis,
// dashed) with a dashed mark at its overfitting step. Answers "did NASReg keep conv3 sparser than Vanilla?".
import { themeColors } from "./colors.js";
import { bandPath, fmt, h, layerLabel, linear, linePath, s } from "./dom.js";
import { csvText, downloadText, fileName } from "./export.js";
import { alarmOnsets, chartFrame, dragZoomY, drawEntryAlarms, drawLegend, hoverNearest, layoutLegend, lossRows, lossScale, nasDomain, smoothEma } from "./chart.js";

/** The layers of `lines` responses, each once: those of the first response in its order (by depth),
 * then the layers only later responses have. [{ name, depth, kind }] */
export function overlayLayers(responses) {
  const seen = new Map();
  for (const data of responses) {
    for (const l of data.layers || []) if (!seen.has(l.name)) seen.set(l.name, { name: l.name, depth: l.depth, kind: l.kind });
  }
  return [...seen.values()];
}

/** Per entry ({ name, color, type }, `lines` response) the series of one layer for overlayPlot. */
export function layerSeries(layerName, results) {
  return results.map(({ entry, data }) => ({
    name: entry.name, color: entry.color, group: entry.type === "group",
    line: (data.layers || []).find((l) => l.name === layerName) || null,
    loss: data.loss, overfit: data.overfit_step, alarms: data.alarms || [], onsets: alarmOnsets(data),
  }));
}

/**
 * One layer of several entries. series: [{ name, color, group, line (that layer in the entry's `lines`
 * response, or null: not logged there), loss, overfit, alarms, onsets }]; options: width, height, xDomain,
 * lossDomain, dark, xLabel (the entries' step unit), losses (false: leave out the dashed losses and their
 * axis, which with many entries crowd the panel), yZoom and onYZoom (as linePlot's).
 * Returns a <div class="nas-chart"> with exportSvg().
 */
export function overlayPlot(layer, series, options = {}) {
  const theme = themeColors(!!options.dark);
  const width = options.width || 640;
  const plotHeight = options.height || 220;
  const margin = { left: 48, right: 42, top: 8, bottom: 32 };
  const showLosses = options.losses !== false;
  const keys = [];
  if (showLosses && series.some((e) => e.loss)) keys.push({ name: "test loss", mark: "dashed", title: "dashed, in each entry's colour: its test loss (left axis)" });
  if (series.some((e) => e.overfit !== null && e.overfit !== undefined)) keys.push({ name: "test-loss minimum", mark: "entryMin", title: "dotted, in each entry's colour: the step of its lowest test loss" });
  if (series.some((e) => e.alarms.length)) keys.push({ name: "NAS alarm", mark: "alarm", title: "dotted purple, triangle in the entry's colour: its NAS overfitting alarm" });
  if (series.some((e) => e.onsets.length)) keys.push({ name: "NAS alarm onset", mark: "onset", title: "triangle on the step axis: where the NAS climb began" });
  const legendRows = layoutLegend([...series, ...keys], width - margin.left - margin.right);
  const height = margin.top + plotHeight + margin.bottom + legendRows.length * 16 + 4;
  const xr = options.xDomain || [0, 1];
  const x = linear(xr[0], xr[1], margin.left, width - margin.right);
  const yBottom = margin.top + plotHeight;
  const yNas = linear(...nasDomain(series.filter((e) => e.line).map((e) => (e.group ? e.line : { median: e.line.median })), options.fitY, true, options.yZoom), yBottom, margin.top);
  const ld = options.lossDomain || [0, 1];
  const yLoss = lossScale(ld, yBottom, margin.top, options.logLoss);
  const hasLoss = showLosses && series.some((e) => e.loss);
  const frame = chartFrame("nas-overlay", width, height, {
    x, yLoss: hasLoss ? yLoss : null, yNas, theme, lossColour: theme.muted, lossLabel: "test loss (dashed)",
    xLabel: options.xLabel, xFormat: options.xFormat,
  });
  const { svg, plot } = frame;
  frame.root.dataset.layer = layer.name;

  const bands = s("g", { class: "bands" }, plot);
  const losses = s("g", { class: "losses" }, plot);
  const lines = s("g", { class: "lines" }, plot);
  for (const e of series) {
    if (showLosses && e.loss && e.loss.steps.length) {
      s("path", {
        class: "loss-line", "data-entry": e.name, d: linePath(e.loss.steps, smoothEma(e.loss.values, options.smoothing || 0), x, yLoss),
        fill: "none", stroke: e.color, "stroke-width": 1.3, "stroke-dasharray": "5 3", "stroke-opacity": 0.85,
      }, losses);
    }
    if (e.overfit !== null && e.overfit !== undefined) {
      s("line", {
        class: "overfit-line", "data-entry": e.name, "data-step": e.overfit, x1: x(e.overfit), x2: x(e.overfit),
        y1: yBottom, y2: margin.top, stroke: e.color, "stroke-width": 1.2, "stroke-dasharray": "2 4",
      }, losses);
    }
    if (!e.line) continue;
    if (e.group && e.line.min && e.line.max) {
      s("path", {
        class: "nas-band", "data-entry": e.name, d: bandPath(e.line.steps, e.line.min, e.line.max, x, yNas),
        fill: e.color, "fill-opacity": 0.15, stroke: "none",
      }, bands);
    }
    s("path", {
      class: "nas-line", "data-entry": e.name, d: linePath(e.line.steps, e.line.median, x, yNas),
      fill: "none", stroke: e.color, "stroke-width": 2, "stroke-linejoin": "round",
    }, lines);
  }

  drawEntryAlarms(plot, series, { x, yNas, unit: options.xLabel || "step" });
  drawLegend(svg, legendRows, {
    left: margin.left, top: yBottom + 38, theme, attr: "data-entry", colourOf: (e) => e.color, off: (e) => !e.line,
    titleOf: (e) => (e.line ? `${e.name}: median NAS${e.group ? ", band min..max across its runs" : ""}; dashed: its test loss`
      : `${e.name} logged no layer ${layer.name}`),
  });
  const drawn = series.filter((e) => e.line).map((e) => ({ ...e, colour: e.color, steps: e.line.steps, median: e.line.median }));
  hoverNearest(frame, { x, yNas, theme }, drawn, (e, step, v) => ({
    title: e.name, rows: [`${layer.name}, ${options.xLabel || "step"} ${step}`, `NAS ${fmt(v, 4)}`, ...(showLosses ? lossRows(e.loss, step) : [])],
  }), options.cursor);
  if (options.onYZoom) dragZoomY(frame, { yNas, theme }, options.onYZoom);
  return frame.root;
}

/** CSV of one layer's overlay: the columns of the export route, a row per entry and step. */
export function overlayCsv(layer, series) {
  const rows = [["run_or_group", "layer", "depth", "step", "min", "median", "max"]];
  for (const e of series) {
    if (!e.line) continue;
    e.line.steps.forEach((step, i) => rows.push([e.name, layer.name, layer.depth, step, e.line.min[i], e.line.median[i], e.line.max[i]]));
  }
  return csvText(rows);
}

/** A panel of the overlay view: the layer's name, depth and kind, a CSV button, and its overlayPlot. */
export function overlayPanel(layer, series, options) {
  const panel = h("section", { class: "nas-panel nas-overlay-panel", "data-key": `layer:${layer.name}`, "data-title": layer.name });
  const head = h("header", {}, panel);
  h("span", { class: "title", text: layerLabel(layer.name, layer.kind), title: `${layer.name} (${layer.kind || "layer"})` }, head);
  h("span", { class: "sub", text: `depth ${layer.depth}${layer.kind ? `, ${layer.kind}` : ""}` }, head);
  h("span", { class: "spacer" }, head);
  const csv = h("button", { class: "nas-csv", text: "CSV", title: "Download this layer of every entry as CSV" }, head);
  csv.addEventListener("click", () => downloadText(overlayCsv(layer, series), fileName(["nas", "overlay", layer.name], "csv")));
  h("div", { class: "body" }, panel).appendChild(overlayPlot(layer, series, options));
  return panel;
}

/**
 * The layer chooser of the overlay view: a checkbox per layer and "all"; onChange(names or null = all).
 */
export function layerChooser(layers, chosen, onChange) {
  const bar = h("div", { class: "nas-overlaybar" });
  h("span", { class: "nas-field", text: "Layers" }, bar);
  const all = h("button", { class: "nas-layers-all", text: "all", title: "Overlay every layer" }, bar);
  all.addEventListener("click", () => onChange(null));
  const boxes = [];
  for (const l of layers) {
    const label = h("label", { class: "nas-layer-choice", "data-layer": l.name }, bar);
    const box = h("input", { type: "checkbox" }, label);
    box.checked = !chosen || chosen.includes(l.name);
    h("span", { text: layerLabel(l.name, l.kind) }, label);
    boxes.push([l.name, box]);
    box.addEventListener("change", () => {
      const names = boxes.filter(([, b]) => b.checked).map(([n]) => n);
      onChange(names.length === layers.length ? null : names);
    });
  }
  return bar;
}
