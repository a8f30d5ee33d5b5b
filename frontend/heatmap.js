// NAS Heatmap: for one run and step, the s_k map of every layer on one shared 0..1 viridis scale, beside
// the probe image; a loss curve with a marker at the chosen step. update(data) redraws in place, so
// moving the step slider only rewrites canvas pixels.
import { LOSS, themeColors, viridisBar, viridisPixels } from "./colors.js";
import { FONT, fmt, h, linear, s } from "./dom.js";
import { drawAxes, drawLosses, lossExtent, niceLossDomain, stepExtent } from "./lineplot.js";

const TILE = 84; // CSS pixels of the longer side of a heatmap tile

/** Paint row-major values (h x w) into a canvas of that many pixels, on viridis. */
export function paintHeatmap(canvas, shape, values) {
  const [hgt, wid] = shape;
  if (canvas.width !== wid || canvas.height !== hgt) {
    canvas.width = wid;
    canvas.height = hgt;
  }
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(wid, hgt);
  viridisPixels(values, img.data);
  ctx.putImageData(img, 0, 0);
}

function tileSize([hgt, wid]) {
  if (hgt * wid <= 1) return [TILE / 2, TILE / 2];
  const scale = TILE / Math.max(hgt, wid);
  return [Math.round(wid * scale), Math.round(hgt * scale)];
}

/** A horizontal viridis colour bar 0..1 as SVG. */
export function colorBar(width, dark) {
  const svg = s("svg", { class: "nas-colorbar", xmlns: "http://www.w3.org/2000/svg", width, height: 30, "font-family": FONT, "font-size": 10 });
  viridisBar(svg, themeColors(!!dark), { x: 30, y: 3, length: width - 42 });
  return svg;
}

/**
 * The test loss of a `lines` response with a vertical marker at the chosen step.
 * Returns an <svg class="nas-losscurve"> with setStep(step).
 */
export function lossCurve(lines, options = {}) {
  const theme = themeColors(!!options.dark);
  const width = options.width || 360;
  const height = options.height || 120;
  const margin = { left: 48, right: 12, top: 8, bottom: 32 };
  const xr = options.xDomain || stepExtent(lines) || [0, 1];
  const x = linear(xr[0], xr[1], margin.left, width - margin.right);
  const yb = height - margin.bottom;
  const ld = options.lossDomain || niceLossDomain(lossExtent(lines));
  const yLoss = linear(ld[0], ld[1], yb, margin.top);
  const yNas = linear(0, 1, yb, margin.top);
  const svg = s("svg", { class: "nas-losscurve", xmlns: "http://www.w3.org/2000/svg", width, height, "font-family": FONT });
  drawAxes(svg, { x, yLoss, yNas, theme, right: false, grid: false });
  drawLosses(svg, lines, { x, yLoss, theme });
  if (!lines.loss) s("text", { x: width / 2, y: height / 2 - 8, "text-anchor": "middle", fill: theme.muted, "font-size": 11, text: "no test loss logged" }, svg);
  const marker = s("line", { class: "step-marker", y1: yb, y2: margin.top, stroke: theme.fg, "stroke-width": 1.5 }, svg);
  const dot = s("circle", { r: 3.5, fill: LOSS, stroke: theme.bg, "stroke-width": 1 }, svg);
  svg.setStep = (step) => {
    marker.setAttribute("x1", x(step));
    marker.setAttribute("x2", x(step));
    marker.dataset.step = step;
    const i = lines.loss ? lines.loss.steps.indexOf(step) : -1;
    const v = i >= 0 ? lines.loss.values[i] : null;
    dot.setAttribute("visibility", v === null || v === undefined ? "hidden" : "visible");
    if (v !== null && v !== undefined) {
      dot.setAttribute("cx", x(step));
      dot.setAttribute("cy", yLoss(v));
    }
  };
  if (options.step !== undefined && options.step !== null) svg.setStep(options.step);
  return svg;
}

/**
 * The heatmap grid of one run: probe image, one tile per layer (in the server's order), colour bar.
 * data: a `heatmaps` response; options: probeUrl, dark, width. Returns an element with update(data).
 */
export function heatmapGrid(data, options = {}) {
  const theme = themeColors(!!options.dark);
  const root = h("div", { class: "nas-heatmaps" });
  const grid = h("div", { class: "heatmap-grid" }, root);
  let probe = null;
  if (options.probeUrl) {
    const fig = h("figure", { class: "heatmap-tile probe-tile" }, grid);
    probe = h("img", { class: "probe", src: options.probeUrl, alt: "probe image", width: TILE, height: TILE }, fig);
    h("figcaption", { text: "probe" }, fig);
  }
  const tiles = new Map();
  const layers = [...(data.layers || [])]; // the server's order: each monitor's layers by depth
  for (const layer of layers) {
    const fig = h("figure", { class: "heatmap-tile", "data-layer": layer.name, "data-kind": layer.kind || "" }, grid);
    const canvas = h("canvas", { class: "heatmap-canvas", "data-layer": layer.name }, fig);
    const [w, hgt] = tileSize(layer.shape);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${hgt}px`;
    const cap = h("figcaption", {}, fig);
    h("span", { class: "name", text: layer.name }, cap);
    h("span", { class: "shape", text: ` ${layer.shape[0]}\u00d7${layer.shape[1]}` }, cap);
    fig.title = `${layer.name} (${layer.kind || "layer"}, depth ${layer.depth})`;
    tiles.set(layer.name, { canvas, fig, layer });
  }
  root.appendChild(colorBar(260, options.dark));

  root.update = (next) => {
    for (const layer of next.layers || []) {
      const tile = tiles.get(layer.name);
      if (!tile) continue;
      paintHeatmap(tile.canvas, layer.shape, layer.values);
      tile.layer = layer;
      tile.canvas.dataset.step = next.step;
      const finite = layer.values.filter((v) => v !== null && !Number.isNaN(v));
      const mean = finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
      tile.fig.title = `${layer.name} (${layer.kind || "layer"}, depth ${layer.depth}) at step ${next.step}: mean NAS ${fmt(mean, 3)}`;
    }
    root.dataset.step = next.step;
  };
  root.update(data);

  root.exportSvg = () => {
    const cols = Math.max(1, Math.floor(((options.width || 640) - 8) / (TILE + 16)));
    const cells = [];
    if (probe && probe.complete && probe.naturalWidth > 0) {
      const c = document.createElement("canvas");
      c.width = probe.naturalWidth;
      c.height = probe.naturalHeight;
      c.getContext("2d").drawImage(probe, 0, 0);
      cells.push({ name: "probe", href: c.toDataURL("image/png"), size: [TILE, TILE] });
    }
    for (const { canvas, layer } of tiles.values()) {
      const [w, hgt] = tileSize(layer.shape);
      cells.push({ name: layer.name, href: canvas.toDataURL("image/png"), size: [w, hgt] });
    }
    const rows = Math.ceil(cells.length / cols);
    const width = cols * (TILE + 16) + 8;
    const height = rows * (TILE + 24) + 40;
    const svg = s("svg", { xmlns: "http://www.w3.org/2000/svg", width, height, "font-family": FONT, "font-size": 10 });
    s("rect", { x: 0, y: 0, width, height, fill: theme.bg }, svg);
    cells.forEach((c, i) => {
      const cx = 8 + (i % cols) * (TILE + 16);
      const cy = 4 + Math.floor(i / cols) * (TILE + 24);
      s("image", { x: cx, y: cy + TILE - c.size[1], width: c.size[0], height: c.size[1], href: c.href, preserveAspectRatio: "none", style: "image-rendering:pixelated" }, svg);
      s("text", { x: cx, y: cy + TILE + 14, fill: theme.fg, text: c.name }, svg);
    });
    const bar = colorBar(260, options.dark);
    bar.setAttribute("x", 8);
    bar.setAttribute("y", rows * (TILE + 24) + 6);
    svg.appendChild(bar);
    return svg;
  };
  return root;
}
