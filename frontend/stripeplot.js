// NAS Stripe Plot: one row per layer (sorted by depth, first layer on top), one cell per step, colour =
// median NAS on viridis (canvas), with the test loss, the dashed overfit line, layer names and a colour bar
// drawn in an SVG overlay; its frame, axes and legend are chart.js's.
import { themeColors, viridisBar, viridisPixels } from "./colors.js";
import { fmt, h, hoverTip, linear, nearestIndex, s, layerLabel, middleEllipsis } from "./dom.js";
import { chartFrame, drawLegend, drawLosses, drawNote, extent, layoutLegend, lossNote, lossScale, markKeys, niceLossDomain } from "./chart.js";
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

/** The rows of a `stripes` response, first layer on top: [{ name, label }], a bare-number name labelled
 * with its kind (`0 (conv2d)`) where the response sends the kinds (`kinds`, beside `layers`). */
function stripeRows(data) {
  const kinds = data.kinds || [];
  return (data.layers || []).map((name, r) => ({ name, label: layerLabel(name, kinds[r]) }));
}

/** Sizes and scales of a stripe plot: rows of rowH px (up to 64 layers each keeps a readable name, >= 10
 * px; beyond that rows compress to 1.5 px and every k-th layer is named; the panel scrolls when that is
 * still taller than it), the label column as wide as the longest label, the legend of the marks below. */
function stripeLayout(data, rows, options) {
  const width = options.width || 640;
  const n = rows.length;
  const fit = (options.targetHeight || 320) / Math.max(1, n);
  const rowH = Math.max(n <= 64 ? 10 : 1.5, Math.min(options.maxRowHeight || 36, fit));
  const plotHeight = Math.max(1, Math.round(n * rowH));
  const longest = rows.reduce((m, row) => Math.max(m, row.label.length), 0);
  // The top margin holds the note, and is kept without one so that the plots of a row line up.
  const margin = { left: Math.max(36, Math.min(150, longest * 6 + 10)), right: 44 + 56, top: 20, bottom: 34 };
  const legendRows = layoutLegend(markKeys(data), width - margin.left - margin.right);
  const height = margin.top + plotHeight + margin.bottom + (legendRows.length ? legendRows.length * 16 + 6 : 0);
  const xr = options.xDomain || stripeStepExtent(data) || [0, 1];
  const x = linear(xr[0], xr[1], margin.left, width - margin.right);
  const yBottom = margin.top + plotHeight;
  const ld = options.lossDomain || niceLossDomain(extent(data.loss && data.loss.values, data.loss2 && data.loss2.values), options.logLoss);
  return {
    width, height, rowH, plotHeight, margin, legendRows, x, yBottom,
    rowsY: linear(0, 1, yBottom, margin.top), // the rows' extent (NAS is the cells' colour, not a y axis)
    yLoss: lossScale(ld, yBottom, margin.top, options.logLoss),
  };
}

/** The cells: one pixel per (step, layer) in an offscreen canvas, stretched column by column onto a canvas
 * over the plot area (device pixels). */
function cellCanvas(data, steps, n, { x, margin, plotHeight }) {
  const [x0, x1] = x.range;
  const dpr = window.devicePixelRatio || 1;
  const canvas = h("canvas", {
    class: "stripe-canvas", "data-rows": n, "data-cols": steps.length,
    style: { left: `${x0}px`, top: `${margin.top}px`, width: `${x1 - x0}px`, height: `${plotHeight}px` },
  });
  canvas.width = Math.max(1, Math.round((x1 - x0) * dpr));
  canvas.height = Math.max(1, Math.round(plotHeight * dpr));
  if (n === 0 || steps.length === 0) return canvas;
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
  const uniform = steps.length < 3 || steps.every((v, j) => j < 2 || Math.abs(v - steps[j - 1] - (steps[1] - steps[0])) < 1e-9);
  if (uniform) {
    ctx.drawImage(cells, 0, 0, steps.length, n, (edges[0] - x0) * dpr, 0, (edges[steps.length] - edges[0]) * dpr, canvas.height);
  } else {
    for (let j = 0; j < steps.length; j++) {
      ctx.drawImage(cells, j, 0, 1, n, (edges[j] - x0) * dpr, 0, Math.max(1, (edges[j + 1] - edges[j]) * dpr), canvas.height);
    }
  }
  return canvas;
}

/** Layer names left of the rows: every row when rows are tall enough, else every k-th row; a cut name
 * carries its full label in a <title>. */
function drawRowLabels(svg, rows, { x, margin, rowH, theme }) {
  const every = Math.max(1, Math.ceil(10 / rowH));
  const g = s("g", { class: "stripe-labels" }, svg);
  for (let r = 0; r < rows.length; r += every) {
    const { name, label: full } = rows[r];
    const label = middleEllipsis(full);
    const t = s("text", {
      class: "stripe-label", x: x.range[0] - 5, y: margin.top + (r + 0.5) * rowH + 3.5, "text-anchor": "end",
      fill: theme.fg, "font-size": Math.min(10.5, Math.max(8, rowH)), text: label, "data-layer": name,
    }, g);
    if (label !== name) s("title", { text: full }, t);
  }
}

/** Hover: the layer, step and value of the cell under the pointer. */
function hoverCells(frame, data, rows, steps, { x, margin, rowH, plotHeight, width }) {
  const [x0, x1] = x.range;
  const unit = stepUnit(data);
  const area = s("rect", { class: "hover", x: x0, y: margin.top, width: x1 - x0, height: plotHeight, fill: "transparent" }, frame.svg);
  hoverTip(frame.root, frame.svg, area, (mx, my) => {
    const r = Math.min(rows.length - 1, Math.max(0, Math.floor((my - margin.top) / rowH)));
    const j = nearestIndex(steps, x.invert(mx));
    if (r < 0 || j < 0) return null;
    return { title: rows[r].name, rows: [`${unit} ${data.steps[j]}`, `NAS ${fmt((data.medians[r] || [])[j], 4)}`],
             left: Math.min(mx + 12, width - 150), top: Math.max(0, my - 36) };
  });
}

/**
 * Draw a `stripes` response. options: width, dark, xDomain (shared step range), lossDomain,
 * maxRowHeight (default 36), targetHeight (height the rows shrink into, default 320).
 */
export function stripePlot(data, options = {}) {
  const theme = themeColors(!!options.dark);
  const rows = stripeRows(data);
  const steps = (data.steps || []).map(stepValue); // positions; data.steps keeps the exact values
  const layout = stripeLayout(data, rows, options);
  const { width, height, x, yLoss, yBottom, margin, plotHeight } = layout;
  const canvas = cellCanvas(data, steps, rows.length, layout);
  const hasLoss = !!(data.loss || data.loss2);
  const image = () => s("image", {
    x: x.range[0], y: margin.top, width: x.range[1] - x.range[0], height: plotHeight, preserveAspectRatio: "none",
    href: canvas.toDataURL("image/png"), style: "image-rendering:pixelated",
  });
  // Steps below, the loss on the right of the stripes, a frame around them; no NAS axis (the colour bar is).
  const frame = chartFrame("nas-stripeplot", width, height, {
    x, yLoss: hasLoss ? yLoss : null, yNas: layout.rowsY, theme, lossSide: "right", right: false, grid: false, box: true,
    xLabel: stepUnit(data), xFormat: data.x_format,
  }, { underlay: image, clipPad: 0 });
  const { root, svg, plot } = frame;
  root.classList.add("nas-stripes-chart");
  Object.assign(root.style, { width: `${width}px`, height: `${height}px` });
  svg.setAttribute("font-size", 10);
  root.insertBefore(canvas, svg);
  drawRowLabels(svg, rows, { ...layout, theme });
  const note = lossNote(data);
  if (note) drawNote(svg, note, { x, theme });
  drawLegend(svg, layout.legendRows, { left: x.range[0], top: yBottom + 42, theme, colourOf: () => null, titleOf: (k) => k.title });
  drawLosses(plot, data, { x, yLoss, theme, halo: true, smoothing: options.smoothing || 0 });
  viridisBar(s("g", { class: "colorbar" }, svg), theme, { x: x.range[1] + 58, y: margin.top, length: Math.max(60, Math.min(plotHeight, 240)), vertical: true });
  hoverCells(frame, data, rows, steps, layout);
  return root;
}
