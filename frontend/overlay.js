// NAS Overlay: one panel per layer with every selected run or group in its chip colour: its median NAS
// (right axis, solid), for a group the min..max band across its runs, and its test loss (left axis,
// dashed) with a dashed mark at its overfitting step. Answers "did NASReg keep conv3 sparser than Vanilla?".
import { themeColors } from "./colors.js";
import { bandPath, fmt, h, layerLabel, linear, linePath, s } from "./dom.js";
import { csvText, downloadText, fileName } from "./export.js";
import { alarmOnsets, chartFrame, dragZoomY, drawEntryAlarms, drawLegend, hoverNearest, lossRows, lossScale, nasDomain, plotLayout, smoothEma } from "./chart.js";

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

/** Legend keys of the marks an overlay draws for `series` (its entries' losses when `losses`). */
function overlayKeys(series, losses) {
  const keys = [];
  if (losses && series.some((e) => e.loss)) keys.push({ name: "test loss", mark: "dashed", title: "dashed, in each entry's colour: its test loss (left axis)" });
  if (series.some((e) => e.overfit !== null && e.overfit !== undefined)) keys.push({ name: "test-loss minimum", mark: "entryMin", title: "dotted, in each entry's colour: the step of its lowest test loss" });
  if (series.some((e) => e.alarms.length)) keys.push({ name: "NAS alarm", mark: "alarm", title: "dotted purple, triangle in the entry's colour: its NAS overfitting alarm" });
  if (series.some((e) => e.onsets.length)) keys.push({ name: "NAS alarm onset", mark: "onset", title: "hollow triangle on the step axis, in the entry's colour: where its NAS climb became significant" });
  return keys;
}

/** Each entry in its colour: its dashed test loss (when `losses`), dotted overfit line, median NAS line
 * and, for a group, its min..max band. */
function drawEntries(plot, series, { x, yNas, yLoss, losses, smoothing }) {
  const [yBottom, top] = yNas.range;
  const bands = s("g", { class: "bands" }, plot);
  const lossLines = s("g", { class: "losses" }, plot);
  const lines = s("g", { class: "lines" }, plot);
  for (const e of series) {
    if (losses && e.loss && e.loss.steps.length) {
      s("path", {
        class: "loss-line", "data-entry": e.name, d: linePath(e.loss.steps, smoothEma(e.loss.values, smoothing), x, yLoss),
        fill: "none", stroke: e.color, "stroke-width": 1.3, "stroke-dasharray": "5 3", "stroke-opacity": 0.85,
      }, lossLines);
    }
    if (e.overfit !== null && e.overfit !== undefined) {
      s("line", {
        class: "overfit-line", "data-entry": e.name, "data-step": e.overfit, x1: x(e.overfit), x2: x(e.overfit),
        y1: yBottom, y2: top, stroke: e.color, "stroke-width": 1.2, "stroke-dasharray": "2 4",
      }, lossLines);
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
  const margin = { left: 48, right: 42, top: 8, bottom: 32 };
  const losses = options.losses !== false;
  const { legendRows, height, x, yBottom } = plotLayout({
    width: options.width || 640, plotHeight: options.height || 220, margin,
    legendItems: [...series, ...overlayKeys(series, losses)], xDomain: options.xDomain || [0, 1],
  });
  const drawn = series.filter((e) => e.line);
  const yNas = linear(...nasDomain(drawn.map((e) => (e.group ? e.line : { median: e.line.median })), options.fitY, true, options.yZoom), yBottom, margin.top);
  const yLoss = lossScale(options.lossDomain || [0, 1], yBottom, margin.top, options.logLoss);
  const hasLoss = losses && series.some((e) => e.loss);
  const frame = chartFrame("nas-overlay", options.width || 640, height, {
    x, yLoss: hasLoss ? yLoss : null, yNas, theme, lossColour: theme.muted, lossLabel: "test loss (dashed)",
    xLabel: options.xLabel, xFormat: options.xFormat,
  });
  frame.root.dataset.layer = layer.name;
  drawEntries(frame.plot, series, { x, yNas, yLoss, losses, smoothing: options.smoothing || 0 });
  drawEntryAlarms(frame.plot, series, { x, yNas, unit: options.xLabel || "step" });
  drawLegend(frame.svg, legendRows, {
    left: margin.left, top: yBottom + 38, theme, attr: "data-entry", colourOf: (e) => e.color, off: (e) => !e.line,
    titleOf: (e) => (e.line ? `${e.name}: median NAS${e.group ? ", band min..max across its runs" : ""}; dashed: its test loss`
      : `${e.name} logged no layer ${layer.name}`),
  });
  const hoverable = drawn.map((e) => ({ ...e, colour: e.color, steps: e.line.steps, median: e.line.median }));
  hoverNearest(frame, { x, yNas, theme }, hoverable, (e, step, v) => ({
    title: e.name, rows: [`${layer.name}, ${options.xLabel || "step"} ${step}`, `NAS ${fmt(v, 4)}`, ...(losses ? lossRows(e.loss, step) : [])],
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
