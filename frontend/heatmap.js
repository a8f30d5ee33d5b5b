// NAS Heatmap: for one run and step, the s_k map of every layer on one shared 0..1 viridis scale, beside
// the probe image, tiles sized to the panel; a click on a tile enlarges it beside the probe. A loss curve
// with a marker at the chosen step. update(data) redraws in place, so moving the step slider only
// rewrites canvas pixels.
import { LOSS, themeColors, viridisBar, viridisPixels } from "./colors.js";
import { FONT, fmt, h, layerLabel, linear, s } from "./dom.js";
import { drawAxes, drawLegend, drawLosses, drawNote, layoutLegend, lossExtent, lossNote, lossScale, markKeys, niceLossDomain, stepExtent } from "./chart.js";
import { stepUnit } from "./steps.js";

// CSS pixels of the longer side of a heatmap tile: the panel's width shared by the tiles, within these.
const MIN_TILE = 84;
const MAX_TILE = 220;
const GAP = 12; // between tiles, as .heatmap-grid's CSS gap

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

function tileSize([hgt, wid], tile) {
  if (hgt * wid <= 1) return [tile / 2, tile / 2];
  const scale = tile / Math.max(hgt, wid);
  return [Math.round(wid * scale), Math.round(hgt * scale)];
}

/** Side of a tile when `count` tiles share `width` px: as few rows as tiles of MIN_TILE px need,
 * the tiles of each row filling it (up to MAX_TILE px). */
export function tileSide(count, width) {
  const fit = Math.max(1, Math.floor((width + GAP) / (MIN_TILE + GAP)));
  const cols = Math.ceil(count / Math.ceil(Math.max(1, count) / fit));
  return Math.max(MIN_TILE, Math.min(MAX_TILE, Math.floor((width + GAP) / cols) - GAP - 2));
}

/** The mean of the finite values (null/NaN skipped), or null. */
function meanOf(values) {
  const finite = values.filter((v) => v !== null && !Number.isNaN(v));
  return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
}

/**
 * One layer's map enlarged beside the probe image in a dialog over the page; closed by Esc or a click.
 * Returns { layer, paint(layer, step, probeUrl), close() }.
 */
function zoomDialog(layerName, run, dark, onClose) {
  const backdrop = h("div", { class: "nas-zoom", role: "dialog", "aria-label": `${layerName} enlarged`, title: "Esc or click outside to close" }, document.body);
  const outer = h("div", { class: "nas-zoom-outer" }, backdrop);
  outer.addEventListener("click", (ev) => ev.stopPropagation());
  const head = h("div", { class: "nas-zoom-head" }, outer);
  const title = h("span", { class: "nas-zoom-title" }, head);
  const closeButton = h("button", { class: "nas-zoom-close", text: "\u2715", title: "Close (Esc)", "aria-label": "close" }, head);
  const box = h("div", { class: "nas-zoom-box" }, outer);
  const side = Math.max(160, Math.min(520, window.innerHeight - 160, (window.innerWidth - 120) / 2));
  const mapFig = h("figure", { class: "zoom-map" }, box);
  const canvas = h("canvas", { class: "heatmap-canvas zoom-canvas", "data-layer": layerName }, mapFig);
  const caption = h("figcaption", {}, mapFig);
  const probeFig = h("figure", { class: "zoom-probe" }, box);
  const img = h("img", { class: "probe zoom-probe-img", alt: "probe image", width: side, height: side }, probeFig);
  h("figcaption", { text: "probe" }, probeFig);
  outer.appendChild(colorBar(Math.min(420, 2 * side), dark));
  const close = () => {
    document.removeEventListener("keydown", onKey);
    backdrop.remove();
    onClose();
  };
  const onKey = (ev) => { if (ev.key === "Escape") close(); };
  document.addEventListener("keydown", onKey);
  backdrop.addEventListener("click", close);
  closeButton.addEventListener("click", close);
  return {
    layer: layerName,
    close,
    paint(layer, step, probeUrl, unit) {
      paintHeatmap(canvas, layer.shape, layer.values);
      const [w, hgt] = tileSize(layer.shape, side);
      canvas.style.width = `${w}px`;
      canvas.style.height = `${hgt}px`;
      canvas.dataset.step = step;
      caption.textContent = `${layer.name} at ${unit} ${step}: mean NAS ${fmt(meanOf(layer.values), 3)}`;
      title.textContent = `${run ? `${run} \u00b7 ` : ""}${layer.name}${layer.kind ? ` (${layer.kind})` : ""} \u00b7 ${unit} ${step}`;
      probeFig.hidden = !probeUrl;
      if (probeUrl && img.getAttribute("src") !== probeUrl) img.src = probeUrl;
    },
  };
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
  const note = lossNote(lines);
  const margin = { left: 48, right: 12, top: note ? 20 : 8, bottom: 32 };
  const legendRows = layoutLegend(markKeys(lines, { losses: false }), width - margin.left - margin.right);
  const height = (options.height || 120) + (note ? 12 : 0) + legendRows.length * 16;
  const xr = options.xDomain || stepExtent(lines) || [0, 1];
  const x = linear(xr[0], xr[1], margin.left, width - margin.right);
  const yb = height - margin.bottom - legendRows.length * 16;
  const ld = options.lossDomain || niceLossDomain(lossExtent(lines), options.logLoss);
  const yLoss = lossScale(ld, yb, margin.top, options.logLoss);
  const yNas = linear(0, 1, yb, margin.top);
  const svg = s("svg", { class: "nas-losscurve", xmlns: "http://www.w3.org/2000/svg", width, height, "font-family": FONT });
  drawAxes(svg, { x, yLoss, yNas, theme, right: false, grid: false, xLabel: stepUnit(lines) });
  drawLosses(svg, lines, { x, yLoss, theme, smoothing: options.smoothing || 0 });
  if (note) drawNote(svg, note, { x, theme });
  drawLegend(svg, legendRows, { left: margin.left, top: yb + 40, theme, colourOf: () => null, titleOf: (k) => k.title });
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

/** A layer's tile in `grid`: its canvas sized to the tile by the map's shape, its label and shape below;
 * a click calls onClick. Returns { canvas, fig, layer }. */
function layerTile(grid, layer, tile, onClick) {
  const fig = h("figure", { class: "heatmap-tile", "data-layer": layer.name, "data-kind": layer.kind || "" }, grid);
  fig.addEventListener("click", onClick);
  const canvas = h("canvas", { class: "heatmap-canvas", "data-layer": layer.name }, fig);
  const [w, hgt] = tileSize(layer.shape, tile);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${hgt}px`;
  const cap = h("figcaption", {}, fig);
  h("span", { class: "name", text: layerLabel(layer.name, layer.kind) }, cap);
  h("span", { class: "shape", text: ` ${layer.shape[0]}\u00d7${layer.shape[1]}` }, cap);
  fig.title = `${layer.name} (${layer.kind || "layer"}, depth ${layer.depth})`;
  return { canvas, fig, layer };
}

/** The probe image's tile in `grid`, first. Returns its <img>. */
function probeTile(grid, url, tile) {
  const fig = h("figure", { class: "heatmap-tile probe-tile" }, grid);
  const img = h("img", { class: "probe", src: url, alt: "probe image", width: tile, height: tile }, fig);
  h("figcaption", { text: "probe" }, fig);
  return img;
}

/** The images of a grid's tiles for its export: [{ name, href (PNG data URL), size }], the probe first
 * (once it has loaded). */
function tileImages(probe, tiles, tile) {
  const cells = [];
  if (probe && probe.complete && probe.naturalWidth > 0) {
    const c = document.createElement("canvas");
    c.width = probe.naturalWidth;
    c.height = probe.naturalHeight;
    c.getContext("2d").drawImage(probe, 0, 0);
    cells.push({ name: "probe", href: c.toDataURL("image/png"), size: [tile, tile] });
  }
  for (const { canvas, layer } of tiles.values()) {
    cells.push({ name: layer.name, href: canvas.toDataURL("image/png"), size: tileSize(layer.shape, tile) });
  }
  return cells;
}

/** An SVG of tile images (tileImages) in rows of `cols`, each named below, and the colour bar under them. */
function gridSvg(cells, { tile, cols, dark }) {
  const theme = themeColors(!!dark);
  const rows = Math.ceil(cells.length / cols);
  const width = cols * (tile + 16) + 8;
  const height = rows * (tile + 24) + 40;
  const svg = s("svg", { xmlns: "http://www.w3.org/2000/svg", width, height, "font-family": FONT, "font-size": 10 });
  s("rect", { x: 0, y: 0, width, height, fill: theme.bg }, svg);
  cells.forEach((c, i) => {
    const cx = 8 + (i % cols) * (tile + 16);
    const cy = 4 + Math.floor(i / cols) * (tile + 24);
    s("image", { x: cx, y: cy + tile - c.size[1], width: c.size[0], height: c.size[1], href: c.href, preserveAspectRatio: "none", style: "image-rendering:pixelated" }, svg);
    s("text", { x: cx, y: cy + tile + 14, fill: theme.fg, text: c.name }, svg);
  });
  const bar = colorBar(260, dark);
  bar.setAttribute("x", 8);
  bar.setAttribute("y", rows * (tile + 24) + 6);
  svg.appendChild(bar);
  return svg;
}

/**
 * The heatmap grid of one run: probe image, one tile per layer (in the server's order), colour bar.
 * data: a `heatmaps` response; options: probeUrl, dark, width (the tiles share it), run (named in the
 * enlarged view). Returns an element
 * with update(data) and zoom(layer name), which enlarges a layer (also on a click on its tile).
 */
export function heatmapGrid(data, options = {}) {
  const root = h("div", { class: "nas-heatmaps" });
  const grid = h("div", { class: "heatmap-grid" }, root);
  const layers = [...(data.layers || [])]; // the server's order: each monitor's layers by depth
  const tile = tileSide(layers.length + (options.probeUrl ? 1 : 0), options.width || 640);
  root.dataset.tile = tile;
  grid.style.setProperty("--tile", `${tile}px`);
  let probeUrl = options.probeUrl || null;
  const probe = probeUrl ? probeTile(grid, probeUrl, tile) : null;
  let zoom = null;
  let step = data.step;
  let unit = stepUnit(data);
  const tiles = new Map(layers.map((layer) => [layer.name, layerTile(grid, layer, tile, () => root.zoom(layer.name))]));
  root.appendChild(colorBar(260, options.dark));
  root.zoom = (name) => {
    if (zoom) zoom.close();
    const t = tiles.get(name);
    if (!t) return;
    zoom = zoomDialog(name, options.run || "", options.dark, () => { zoom = null; });
    zoom.paint(t.layer, step, probeUrl, unit);
  };
  root.update = (next) => {
    step = next.step;
    unit = stepUnit(next);
    if (probe && next.probe && next.probe !== probeUrl) probe.src = next.probe;
    probeUrl = next.probe || probeUrl;
    for (const layer of next.layers || []) {
      const t = tiles.get(layer.name);
      if (!t) continue;
      paintHeatmap(t.canvas, layer.shape, layer.values);
      t.layer = layer;
      t.canvas.dataset.step = next.step;
      t.fig.title = `${layer.name} (${layer.kind || "layer"}, depth ${layer.depth}) at ${unit} ${next.step}: mean NAS ${fmt(meanOf(layer.values), 3)} (click to enlarge)`;
    }
    if (zoom && tiles.has(zoom.layer)) zoom.paint(tiles.get(zoom.layer).layer, step, probeUrl, unit);
    root.dataset.step = next.step;
  };
  root.update(data);
  const cols = Math.max(1, Math.floor(((options.width || 640) - 8) / (tile + 16)));
  root.exportSvg = () => gridSvg(tileImages(probe, tiles, tile), { tile, cols, dark: options.dark });
  return root;
}
