// NAS Line Plot: median NAS per layer against step (right axis, 0..1), blue by depth, min..max band,
// test loss in red on the left axis, optional second loss in orange, dashed red line at the overfit step,
// dotted purple line at each NAS overfitting alarm.
import { depthColor, themeColors } from "./colors.js";
import { bandPath, fmt, layerLabel, linear, linePath, s } from "./dom.js";
import { chartFrame, dragZoomY, drawLegend, drawLosses, drawNote, hoverNearest, lossExtent, lossNote, lossRows, lossScale, markKeys, nasDomain, niceLossDomain, plotLayout, stepExtent } from "./chart.js";
import { stepUnit } from "./steps.js";

/** Each layer's median line (and, with `band`, its min..max band) in its depth colour. */
function drawLayers(plot, layers, colours, { x, yNas, band }) {
  if (band) {
    const gb = s("g", { class: "bands" }, plot);
    for (const l of layers) {
      if (!l.min || !l.max) continue;
      s("path", {
        class: "nas-band", "data-layer": l.name, d: bandPath(l.steps, l.min, l.max, x, yNas),
        fill: colours.get(l.name), "fill-opacity": 0.16, stroke: "none",
      }, gb);
    }
  }
  const gl = s("g", { class: "lines" }, plot);
  for (const l of layers) {
    s("path", {
      class: "nas-line", "data-layer": l.name, "data-depth": l.depth, d: linePath(l.steps, l.median, x, yNas),
      fill: "none", stroke: colours.get(l.name), "stroke-width": 1.8, "stroke-linejoin": "round",
    }, gl);
  }
}

/**
 * Draw a `lines` response as an SVG line plot.
 * options: width, height (plot area + axes, legend extra), xDomain, lossDomain (shared axes of small
 * multiples), hidden (Set of layer names), onToggleLayer(name), dark, band (draw min..max), yZoom
 * ([lo, hi] of the NAS axis) and onYZoom(range or null) for drag-to-zoom (chart.js dragZoomY).
 * Returns a <div class="nas-chart"> holding the <svg class="nas-lineplot"> and its tooltip.
 */
export function linePlot(data, options = {}) {
  const theme = themeColors(!!options.dark);
  const hidden = options.hidden || new Set();
  // The server's order: each monitor's layers by depth.
  const layers = (data.layers || []).map((l) => ({ ...l, label: layerLabel(l.name, l.kind) }));
  const maxDepth = layers.reduce((m, l) => Math.max(m, l.depth), 0);
  const colours = new Map(layers.map((l) => [l.name, depthColor(l.depth, maxDepth, options.dark)]));
  // The top margin holds the note, and is kept without one so that the plots of a row line up.
  const margin = { left: 48, right: 42, top: 20, bottom: 32 };
  const { legendRows, height, x, yBottom } = plotLayout({
    width: options.width || 640, plotHeight: options.height || 240, margin, legendItems: [...layers, ...markKeys(data)],
    xDomain: options.xDomain || stepExtent(data) || [0, 1],
  });
  const shown = layers.filter((l) => !hidden.has(l.name));
  const band = options.band !== undefined ? options.band : (data.runs || []).length > 1;
  const yNas = linear(...nasDomain(shown, options.fitY, band, options.yZoom), yBottom, margin.top);
  const ld = options.lossDomain || niceLossDomain(lossExtent(data), options.logLoss);
  const yLoss = lossScale(ld, yBottom, margin.top, options.logLoss);
  const hasLoss = !!(data.loss || data.loss2);
  const unit = stepUnit(data);
  const frame = chartFrame("nas-lineplot", options.width || 640, height, { x, yLoss: hasLoss ? yLoss : null, yNas, theme, xLabel: unit, xFormat: data.x_format });
  drawLayers(frame.plot, shown, colours, { x, yNas, band });
  if (hasLoss) drawLosses(frame.plot, data, { x, yLoss, theme, smoothing: options.smoothing || 0 });
  else drawLosses(frame.plot, { overfit_step: data.overfit_step, alarms: data.alarms, step_unit: data.step_unit }, { x, yLoss, theme });
  const note = lossNote(data);
  if (note) drawNote(frame.svg, note, { x, theme });
  // Legend: click an entry to hide or show that layer (in every panel of the view).
  drawLegend(frame.svg, legendRows, {
    left: margin.left, top: yBottom + 38, theme, colourOf: (l) => colours.get(l.name), off: (l) => hidden.has(l.name),
    titleOf: (l) => `${l.name} (depth ${l.depth}, ${l.kind || "layer"}) - click to hide/show`,
    onClick: options.onToggleLayer ? (l) => options.onToggleLayer(l.name) : null,
  });
  // Hover: the nearest visible layer at the nearest step.
  hoverNearest(frame, { x, yNas, theme }, shown.map((l) => ({ ...l, colour: colours.get(l.name) })), (l, st, v) => ({
    title: l.label, rows: [`${unit} ${st}`, `NAS ${fmt(v, 4)}`, ...lossRows(data.loss, st)],
  }), options.cursor);
  if (options.onYZoom) dragZoomY(frame, { yNas, theme }, options.onYZoom);
  return frame.root;
}
