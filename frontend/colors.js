// Colours of the paper's figures: viridis for NAS values and (over most of its range) for layers by depth,
// red/orange losses, a run palette that stays distinct.
import { linear, s, uniqueId } from "./dom.js";

// Viridis at 0, 0.1, ..., 1 (matplotlib); linear interpolation between them is visually exact.
const VIRIDIS_STOPS = [
  "#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
  "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725",
];

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function rgbToHex([r, g, b]) {
  return "#" + [r, g, b].map((c) => Math.round(c).toString(16).padStart(2, "0")).join("");
}

/** 256 x RGB lookup table of viridis, for canvas ImageData. */
const VIRIDIS_LUT = (() => {
  const stops = VIRIDIS_STOPS.map(hexToRgb);
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const j = Math.min(stops.length - 2, Math.floor(t));
    const f = t - j;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = stops[j][c] + (stops[j + 1][c] - stops[j][c]) * f;
  }
  return lut;
})();

const MISSING_RGB = hexToRgb("#9e9e9e"); // null/NaN cells

/** Write RGBA pixels of viridis(values[i]) into `pixels` (an ImageData's data); null/NaN are grey. */
export function viridisPixels(values, pixels) {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const o = i * 4;
    if (v === null || v === undefined || Number.isNaN(v)) {
      pixels[o] = MISSING_RGB[0]; pixels[o + 1] = MISSING_RGB[1]; pixels[o + 2] = MISSING_RGB[2];
    } else {
      const k = Math.max(0, Math.min(255, Math.round(v * 255))) * 3;
      pixels[o] = VIRIDIS_LUT[k]; pixels[o + 1] = VIRIDIS_LUT[k + 1]; pixels[o + 2] = VIRIDIS_LUT[k + 2];
    }
    pixels[o + 3] = 255;
  }
}

export const VIRIDIS_GRADIENT_STOPS = VIRIDIS_STOPS.map((c, i) => [i / (VIRIDIS_STOPS.length - 1), c]);

/**
 * The NAS colour bar, viridis 0..1, drawn into SVG `parent`: a 10 px thick bar of `length` px from (x, y),
 * ticks at 0, 0.25, ..., 1 and the label "NAS". Horizontal: 0 at the left, labels below, "NAS" to the
 * left; vertical: 0 at the bottom, labels to the right, "NAS" below.
 */
export function viridisBar(parent, theme, { x, y, length, vertical = false }) {
  const id = uniqueId("viridis");
  const grad = s("linearGradient", { id, x1: 0, y1: vertical ? 1 : 0, x2: vertical ? 0 : 1, y2: 0 }, s("defs", {}, parent));
  for (const [t, c] of VIRIDIS_GRADIENT_STOPS) s("stop", { offset: t, "stop-color": c }, grad);
  const [width, height] = vertical ? [10, length] : [length, 10];
  s("rect", { x, y, width, height, fill: `url(#${id})`, stroke: theme.axis, "stroke-width": 0.5 }, parent);
  const at = vertical ? linear(0, 1, y + length, y) : linear(0, 1, x, x + length);
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    if (vertical) {
      s("line", { x1: x + 10, x2: x + 13, y1: at(v), y2: at(v), stroke: theme.axis }, parent);
      s("text", { x: x + 15, y: at(v) + 3, fill: theme.muted, text: v }, parent);
    } else {
      s("line", { x1: at(v), x2: at(v), y1: y + 10, y2: y + 13, stroke: theme.axis }, parent);
      s("text", { x: at(v), y: y + 23, "text-anchor": "middle", fill: theme.muted, text: v }, parent);
    }
  }
  const label = vertical ? { x: x - 2, y: y + length + 12 } : { x: x - 30, y: y + 9 };
  s("text", { ...label, fill: theme.muted, text: "NAS" }, parent);
}

export const LOSS = "#d32f2f";
export const LOSS2 = "#f57c00";
export const OVERFIT = "#e53935";
// The NAS-only overfitting alarm: a hue none of the other marks use.
export const ALARM = "#8e24aa";

function hslToHex(h, s, l) {
  s /= 100;
  l /= 100;
  const k = (n) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return rgbToHex([f(0) * 255, f(8) * 255, f(4) * 255]);
}

/** RGB of viridis at t in [0, 1]. */
function viridisAt(t) {
  const k = Math.max(0, Math.min(255, Math.round(t * 255))) * 3;
  return [VIRIDIS_LUT[k], VIRIDIS_LUT[k + 1], VIRIDIS_LUT[k + 2]];
}

/** Colour of a layer at `depth` out of [0, maxDepth]: viridis, dark for early layers and light for deep
 * ones (the paper's ordering), over 85 % of its range so that neighbouring layers stay apart (CIEDE2000
 * >= 14 between 6 layers). The light theme leaves out viridis' pale yellow end, the dark theme its
 * near-black start. */
export function depthColor(depth, maxDepth, dark = false) {
  const t = maxDepth > 0 ? Math.max(0, Math.min(1, depth / maxDepth)) : 0;
  const [t0, t1] = dark ? [0.15, 1] : [0, 0.85];
  return rgbToHex(viridisAt(t0 + (t1 - t0) * t));
}

// Run and group colours: 12 colours chosen by CIEDE2000 (every pair >= 19 apart, each >= 23 from the loss
// red and >= 12 from the second loss's orange and the alarm's purple, readable on both themes' backgrounds).
export const RUN_PALETTE = [
  "#0077bb", "#117733", "#9467bd", "#17becf", "#bcbd22", "#e7298a",
  "#a6761d", "#332288", "#fdbf6f", "#882255", "#c49c94", "#7f7f7f",
];

/** The colour of the i-th listed run or group: the palette, then golden-angle hues that skip the reds. */
export function runColor(i) {
  if (i < RUN_PALETTE.length) return RUN_PALETTE[i];
  const k = i - RUN_PALETTE.length;
  const hue = 50 + ((k * 137.508) % 260); // 50..310 degrees: far from the loss red (CIEDE2000 > 30)
  return hslToHex(hue, 60, k % 2 ? 58 : 42);
}

/** Colours of text, axes and grid for the current TensorBoard theme. */
export function themeColors(dark) {
  return dark
    ? { fg: "#e0e0e0", muted: "#9e9e9e", axis: "#757575", grid: "#474747", bg: "#303030", halo: "#000000" }
    : { fg: "#212121", muted: "#616161", axis: "#9e9e9e", grid: "#e8e8e8", bg: "#ffffff", halo: "#ffffff" };
}
