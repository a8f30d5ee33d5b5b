// NAS Stripe Plot: one row per layer (sorted by depth, first layer on top), one cell per step, colour =
// median NAS on viridis (canvas), with the test loss, the dashed overfit line, layer names and a colour bar
// drawn in an SVG overlay.
import { LOSS, themeColors, viridisBar, viridisPixels } from "./colors.js";
import { FONT, fmt, h, hoverTip, linear, nearestIndex, s, layerLabel, middleEllipsis, uniqueId } from "./dom.js";
import { drawLegend, drawLossAxis, drawLosses, drawNote, drawStepAxis, extent, layoutLegend, lossNote, lossScale, markKeys, niceLossDomain } from "./chart.js";
import { stepUnit, stepValue } from "./steps.js";

/** Pixel edges of each step's cell: halfway between neighbouring steps (numbers, see stepValue). Columns
 * are the steps' indices: a sparse step axis costs one column per logged step, never one per integer. */
function cellEdges(steps, x) {
  const edges = new Float64Array(steps.length + 1);
  for (let j = 0; j <= steps.length; j++) {
    let v;
    if (steps.length === 1) v = j === 0 ? steps[0] - 0.5 : steps[0] + 0.5;
    else if (j === 0) v = steps[0] - (steps[1] - steps[0]) / 2;
    else if (j === steps.length) v = steps[j - 1] + (steps[j - 1] - steps[j - 2]) / 2;
    else v = (steps[j - 1] + steps[j]) / 2;
    edges[j] = x(v);
  }
  return edges;
}

/** Step range covered by the cells of a `stripes` response (half a step beyond each end). */
export function stripeStepExtent(data) {
  const st = (data.steps || []).map(stepValue);
  if (st.length === 0) return null;
  const half = st.length > 1 ? (st[1] - st[0]) / 2 : 0.5;
  return [st[0] - half, st[st.length - 1] + half];
}

/**
 * Draw a `stripes` response. options: width, dark, xDomain (shared step range), lossDomain,
 * maxRowHeight (default 36), targetHeight (height the rows shrink into, default 320).
 */
export function stripePlot(data, options = {}) {
  const theme = themeColors(!!options.dark);
  const width = options.width || 640;
  const names = data.layers || [];
  const n = names.length;
  const steps = (data.steps || []).map(stepValue); // positions; data.steps keeps the exact values
  // Up to 64 layers every row keeps a readable name (>= 10 px); beyond that rows compress to 1.5 px
  // and every k-th layer is named; the panel scrolls when that is still taller than it.
  const fit = (options.targetHeight || 320) / Math.max(1, n);
  const rowH = Math.max(n <= 64 ? 10 : 1.5, Math.min(options.maxRowHeight || 36, fit));
  const plotHeight = Math.max(1, Math.round(n * rowH));
  const longest = names.reduce((m, name) => Math.max(m, name.length), 0);
  const labelWidth = Math.max(36, Math.min(150, longest * 6 + 10));
  const note = lossNote(data);
  // The top margin holds the note, and is kept without one so that the plots of a row line up.
  const margin = { left: labelWidth, right: 44 + 56, top: 20, bottom: 34 };
  const legendRows = layoutLegend(markKeys(data), width - margin.left - margin.right);
  const height = margin.top + plotHeight + margin.bottom + (legendRows.length ? legendRows.length * 16 + 6 : 0);
  const x0 = margin.left;
  const x1 = width - margin.right;
  const xr = options.xDomain || stripeStepExtent(data) || [0, 1];
  const x = linear(xr[0], xr[1], x0, x1);
  const yBottom = margin.top + plotHeight;
  const ld = options.lossDomain || niceLossDomain(extent(data.loss && data.loss.values, data.loss2 && data.loss2.values), options.logLoss);
  const yLoss = lossScale(ld, yBottom, margin.top, options.logLoss);

  const root = h("div", { class: "nas-chart nas-stripes-chart", style: { width: `${width}px`, height: `${height}px` } });
  // Cells: one pixel per (step, layer) in an offscreen canvas, stretched column by column.
  const dpr = window.devicePixelRatio || 1;
  const canvas = h("canvas", {
    class: "stripe-canvas", "data-rows": n, "data-cols": steps.length,
    style: { left: `${x0}px`, top: `${margin.top}px`, width: `${x1 - x0}px`, height: `${plotHeight}px` },
  }, root);
  canvas.width = Math.max(1, Math.round((x1 - x0) * dpr));
  canvas.height = Math.max(1, Math.round(plotHeight * dpr));
  if (n > 0 && steps.length > 0) {
    const cells = document.createElement("canvas");
    cells.width = steps.length;
    cells.height = n;
    const cctx = cells.getContext("2d");
    const img = cctx.createImageData(steps.length, n);
    const values = new Array(n * steps.length);
    for (let r = 0; r < n; r++) {
      const row = data.medians[r] || [];
      for (let j = 0; j < steps.length; j++) values[r * steps.length + j] = row[j];
    }
    viridisPixels(values, img.data);
    cctx.putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    const edges = cellEdges(steps, x);
    const sx = dpr;
    const uniform = steps.length < 3 || steps.every((v, j) => j < 2 || Math.abs(v - steps[j - 1] - (steps[1] - steps[0])) < 1e-9);
    if (uniform) {
      ctx.drawImage(cells, 0, 0, steps.length, n, (edges[0] - x0) * sx, 0, (edges[steps.length] - edges[0]) * sx, canvas.height);
    } else {
      for (let j = 0; j < steps.length; j++) {
        ctx.drawImage(cells, j, 0, 1, n, (edges[j] - x0) * sx, 0, Math.max(1, (edges[j + 1] - edges[j]) * sx), canvas.height);
      }
    }
  }

  const svg = s("svg", {
    class: "nas-stripeplot", xmlns: "http://www.w3.org/2000/svg", width, height,
    viewBox: `0 0 ${width} ${height}`, "font-family": FONT, "font-size": 10,
  }, root);
  // Layer names: every row when rows are tall enough, else every k-th row.
  const every = Math.max(1, Math.ceil(10 / rowH));
  const gLabels = s("g", { class: "stripe-labels" }, svg);
  for (let r = 0; r < n; r += every) {
    const name = names[r];
    const full = layerLabel(name, (data.kinds || [])[r]);
    const label = middleEllipsis(full);
    const t = s("text", {
      class: "stripe-label", x: x0 - 5, y: margin.top + (r + 0.5) * rowH + 3.5, "text-anchor": "end",
      fill: theme.fg, "font-size": Math.min(10.5, Math.max(8, rowH)), text: label, "data-layer": name,
    }, gLabels);
    if (label !== name) s("title", { text: full }, t);
  }
  // Axes: steps below, loss on the right of the stripes.
  s("rect", { x: x0, y: margin.top, width: x1 - x0, height: plotHeight, fill: "none", stroke: theme.axis }, svg);
  const unit = stepUnit(data);
  drawStepAxis(svg, x, { y: yBottom, theme, label: unit, format: data.x_format });
  const hasLoss = !!(data.loss || data.loss2);
  if (hasLoss) drawLossAxis(svg, yLoss, { x: x1, side: "right", colour: LOSS, label: "test loss" });
  if (note) drawNote(svg, note, { x, theme });
  const keys = markKeys(data);
  drawLegend(svg, layoutLegend(keys, x1 - x0), { left: x0, top: yBottom + 42, theme, colourOf: () => null, titleOf: (k) => k.title });
  const clipId = uniqueId("clip");
  s("rect", { x: x0, y: margin.top, width: x1 - x0, height: plotHeight }, s("clipPath", { id: clipId }, s("defs", {}, svg)));
  drawLosses(s("g", { "clip-path": `url(#${clipId})` }, svg), data, { x, yLoss, theme, halo: true, smoothing: options.smoothing || 0 });

  // Colour bar: viridis, 0 (bottom) to 1 (top).
  const barH = Math.max(60, Math.min(plotHeight, 240));
  viridisBar(s("g", { class: "colorbar" }, svg), theme, { x: x1 + 58, y: margin.top, length: barH, vertical: true });

  // Hover: layer, step and value of the cell under the pointer.
  const overlay = s("rect", { class: "hover", x: x0, y: margin.top, width: x1 - x0, height: plotHeight, fill: "transparent" }, svg);
  hoverTip(root, svg, overlay, (mx, my) => {
    const r = Math.min(n - 1, Math.max(0, Math.floor((my - margin.top) / rowH)));
    const j = nearestIndex(steps, x.invert(mx));
    if (r < 0 || j < 0) return null;
    return { title: names[r], rows: [`${unit} ${data.steps[j]}`, `NAS ${fmt((data.medians[r] || [])[j], 4)}`],
             left: Math.min(mx + 12, width - 150), top: Math.max(0, my - 36) };
  });

  root.exportSvg = () => {
    const copy = svg.cloneNode(true);
    copy.querySelectorAll(".hover").forEach((node) => node.remove());
    const image = s("image", {
      x: x0, y: margin.top, width: x1 - x0, height: plotHeight, preserveAspectRatio: "none",
      href: canvas.toDataURL("image/png"), style: "image-rendering:pixelated",
    });
    const bg = s("rect", { x: 0, y: 0, width, height, fill: theme.bg });
    copy.insertBefore(image, copy.firstChild);
    copy.insertBefore(bg, image);
    return copy;
  };
  return root;
}
