// Small DOM/SVG helpers, scales and ticks shared by every view. Names always go in with textContent.
export const SVG_NS = "http://www.w3.org/2000/svg";
// TensorBoard's font first (adopted from the parent page, see theme.js), then the system UI fonts.
export const FONT = "Roboto, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";

function apply(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "class") node.setAttribute("class", v);
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, String(v));
  }
  return node;
}

/** An HTML element: h("div", {class: "x", text: "label"}, parent). */
export function h(tag, attrs, parent) {
  const node = apply(document.createElement(tag), attrs);
  if (parent) parent.appendChild(node);
  return node;
}

/** An SVG element in the SVG namespace. */
export function s(tag, attrs, parent) {
  const node = apply(document.createElementNS(SVG_NS, tag), attrs);
  if (parent) parent.appendChild(node);
  return node;
}

/** An error box (role=alert): the bold `title`, then the error's message. */
export function errorBox(title, error) {
  const box = h("div", { class: "nas-error", role: "alert" });
  h("b", { text: title }, box);
  h("div", { class: "detail", text: error && error.message ? error.message : String(error) }, box);
  return box;
}

/** Linear map from [d0, d1] to [r0, r1]; a zero-width domain maps to the middle of the range. */
export function linear(d0, d1, r0, r1) {
  const span = d1 - d0;
  const f = (v) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) * (r1 - r0)) / span);
  f.invert = (p) => (r1 === r0 ? d0 : d0 + ((p - r0) * span) / (r1 - r0));
  f.domain = [d0, d1];
  f.range = [r0, r1];
  f.ticks = (n = 4) => ticks(d0, d1, n);
  return f;
}

/** Log10 map from [d0, d1] (both > 0) to [r0, r1], with invert/domain/range as linear's and ticks(n):
 * 1, 2, 5 x 10^k inside the domain (or the powers of ten when there are many). */
export function logScale(d0, d1, r0, r1) {
  const l0 = Math.log10(d0);
  const inner = linear(l0, Math.log10(d1), r0, r1);
  const f = (v) => (v > 0 ? inner(Math.log10(v)) : r0);
  f.invert = (p) => 10 ** inner.invert(p);
  f.domain = [d0, d1];
  f.range = [r0, r1];
  f.log = true;
  f.ticks = (n = 4) => {
    const out = [];
    const decades = Math.log10(d1) - l0;
    if (decades < 0.3) return ticks(d0, d1, 2 * n); // within a factor of 2: round values, placed on the log axis
    const mults = decades > 2 ? [1] : decades > 0.7 ? [1, 2, 5] : [1, 1.5, 2, 3, 4, 5, 6, 8];
    for (let k = Math.floor(l0); k <= Math.ceil(Math.log10(d1)); k++) {
      for (const m of mults) {
        const v = +(m * 10 ** k).toPrecision(6);
        if (v >= d0 && v <= d1) out.push(v);
      }
    }
    return out.length > 1 ? out : ticks(d0, d1, n);
  };
  return f;
}

/** About n round tick values covering [lo, hi]. */
export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw) || 10 * mag;
  const out = [];
  // Stops when adding `step` no longer moves v (a huge lo with a tiny range), never past 4n + 4 ticks.
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && out.length <= 4 * n + 4; v += step) {
    if (out.length && +v.toFixed(10) === out[out.length - 1]) break;
    out.push(+v.toFixed(10));
  }
  return out;
}

/** About n integer ticks for steps/epochs, on multiples of 1, 2 or 5 x 10^k. Beyond 2^53, where adding
 * a small step to a number may not change it, the ticks stop there: never one array slot per step. */
export function stepTicks(lo, hi, n = 6) {
  const first = Math.ceil(lo);
  const last = Math.floor(hi);
  if (!(last >= first)) return [];
  const raw = Math.max(1, (last - first) / Math.max(1, n));
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw);
  const out = [];
  for (let v = Math.ceil(first / step) * step; v <= last && out.length <= 4 * n + 4; v += step) {
    if (out.length && v === out[out.length - 1]) break;
    out.push(v);
  }
  return out;
}

/** How many step ticks fit in `width` pixels for labels as long as those of [lo, hi] (long beyond 1e6). */
export function stepTickCount(width, lo, hi) {
  const digits = String(Math.round(Math.max(Math.abs(lo), Math.abs(hi)))).length;
  return Math.max(2, Math.floor(width / Math.max(60, 6.5 * digits + 14)));
}

export function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "n/a";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(2);
  return String(+v.toFixed(digits));
}

/** SVG path through (xs[i], ys[i]) that breaks at null/NaN values. */
export function linePath(xs, ys, x, y) {
  let d = "";
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    const v = ys[i];
    if (v === null || v === undefined || Number.isNaN(v)) {
      pen = false;
      continue;
    }
    d += (pen ? "L" : "M") + x(xs[i]).toFixed(1) + "," + y(v).toFixed(1);
    pen = true;
  }
  return d;
}

/** Closed band between lo[i] and hi[i]; one polygon per run of finite values. */
export function bandPath(xs, lo, hi, x, y) {
  let d = "";
  let seg = [];
  const flush = () => {
    if (seg.length > 0) {
      const top = seg.map((i) => x(xs[i]).toFixed(1) + "," + y(hi[i]).toFixed(1));
      const bottom = seg.reverse().map((i) => x(xs[i]).toFixed(1) + "," + y(lo[i]).toFixed(1));
      d += "M" + top.join("L") + "L" + bottom.join("L") + "Z";
    }
    seg = [];
  };
  for (let i = 0; i < xs.length; i++) {
    const ok = [lo[i], hi[i]].every((v) => v !== null && v !== undefined && !Number.isNaN(v));
    if (ok) seg.push(i);
    else flush();
  }
  flush();
  return d;
}

/** Index of the element of the sorted array `xs` nearest to v. */
export function nearestIndex(xs, v) {
  let lo = 0;
  let hi = xs.length - 1;
  if (hi < 0) return -1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= v) lo = mid;
    else hi = mid;
  }
  return Math.abs(xs[hi] - v) < Math.abs(xs[lo] - v) ? hi : lo;
}

let uid = 0;
/** A document-unique id for SVG gradients and clip paths. */
export function uniqueId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A layer's name as shown: a bare number (a child of a top-level nn.Sequential, "0") with its kind,
 * "0 (conv2d)"; other names as they are. */
export function layerLabel(name, kind) {
  return /^\d+$/.test(name) && kind ? `${name} (${kind})` : name;
}

/** `name` cut to `max` characters by an ellipsis in its middle, keeping both ends (runs that differ only
 * in a seed suffix stay apart); the full name belongs in a <title>. */
export function middleEllipsis(name, max = 24) {
  if (name.length <= max) return name;
  const tail = Math.floor((max - 1) / 2);
  return name.slice(0, max - 1 - tail) + "\u2026" + name.slice(name.length - tail);
}

/**
 * A tooltip <div class="nas-tooltip"> in `root`, shown while the pointer moves over `area` (an element of
 * `svg`): describe(mx, my) (pointer in svg pixels) returns { title, rows (texts or h() attributes), left,
 * top } or null to leave the tooltip as it is; onLeave() runs when the pointer leaves.
 */
export function hoverTip(root, svg, area, describe, onLeave) {
  const tip = h("div", { class: "nas-tooltip", hidden: true }, root);
  area.addEventListener("mousemove", (ev) => {
    const box = svg.getBoundingClientRect();
    const found = describe(ev.clientX - box.left, ev.clientY - box.top);
    if (!found) return;
    tip.replaceChildren();
    h("b", { text: found.title }, tip);
    for (const row of found.rows) h("div", typeof row === "string" ? { text: row } : row, tip);
    tip.hidden = false;
    tip.style.left = `${found.left}px`;
    tip.style.top = `${found.top}px`;
  });
  area.addEventListener("mouseleave", () => {
    tip.hidden = true;
    if (onLeave) onLeave();
  });
}
