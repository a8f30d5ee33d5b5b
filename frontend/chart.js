// The chart module every view draws with: scales' domains, the shared axes (steps, loss, NAS), loss curves
// with the overfit line and the NAS alarms, legends (with keys for those marks), the chart frame with its
// clip and export, and hover tooltips. Views (lineplot, stripeplot, overlay, heatmap) call only into this
// file and dom.js/colors.js, never into each other.
import { ALARM, LOSS, LOSS2, OVERFIT, themeColors } from "./colors.js";
import { FONT, bandPath, fmt, h, hoverTip, linear, linePath, logScale, nearestIndex, s, stepTickCount, stepTicks, ticks, middleEllipsis, uniqueId } from "./dom.js";
import { stepUnit, stepValue } from "./steps.js";
import { formatX } from "./timeaxis.js";

/** [min, max] over finite values (numbers, or steps sent as strings) of the given arrays, or null. */
export function extent(...arrays) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    if (!a) continue;
    for (const value of a) {
      if (value === null || value === undefined) continue;
      const v = stepValue(value);
      if (Number.isNaN(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/** Step range [first, last] over every series of a `lines` (or `steps`) response. */
export function stepExtent(data) {
  return extent(...(data.layers || []).map((l) => l.steps), data.steps, data.loss && data.loss.steps, data.loss2 && data.loss2.steps);
}

/** Step and loss axes shared by the panels of `lines`/`steps` responses: { xDomain (or null), lossDomain }. */
export function sharedDomains(responses, logLoss = false) {
  return {
    xDomain: extent(...responses.map((d) => stepExtent(d) || [])),
    lossDomain: niceLossDomain(extent(...responses.map((d) => lossExtent(d) || [])), logLoss),
  };
}

/** Loss range of a `lines` response (both losses), padded to round numbers. */
export function lossExtent(data) {
  return extent(data.loss && data.loss.values, data.loss2 && data.loss2.values);
}

/** TensorBoard's scalar smoothing: an exponential moving average with weight `w` in [0, 1), debiased
 * (divided by 1 - w^n) so that the first points are not pulled towards 0; non-finite values pass through
 * and do not advance it. */
export function smoothEma(values, w) {
  if (!(w > 0)) return values;
  let last = 0;
  let n = 0;
  return values.map((y) => {
    if (y === null || y === undefined || !Number.isFinite(y)) return y;
    last = last * w + (1 - w) * y;
    n += 1;
    return last / (1 - w ** n);
  });
}

/** The loss axis' scale: log10 when `log` and the domain is positive, else linear. */
export function lossScale(domain, r0, r1, log = false) {
  return log && domain[0] > 0 ? logScale(domain[0], domain[1], r0, r1) : linear(domain[0], domain[1], r0, r1);
}

/** The NAS axis' domain: `zoom` ([lo, hi] dragged on a plot) when set; else 0..1, or fitted to the medians
 * (and, when drawn, the bands) of `layers` when `fit`, padded by 5 %. */
export function nasDomain(layers, fit, bands = false, zoom = null) {
  if (zoom) return zoom;
  if (!fit) return [0, 1];
  const range = extent(...layers.flatMap((l) => (bands ? [l.median, l.min, l.max] : [l.median])));
  if (!range) return [0, 1];
  const pad = (range[1] - range[0]) * 0.05 || 0.01;
  return [Math.max(0, range[0] - pad), Math.min(1, range[1] + pad)];
}

export function niceLossDomain(range, log = false) {
  if (!range) return [0, 1];
  if (log && range[0] > 0) return [range[0] / 1.08, range[1] * 1.08];
  const [lo, hi] = range;
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  const t = ticks(lo - pad, hi + pad, 4);
  return [Math.min(t[0], lo - pad), Math.max(t[t.length - 1], hi + pad)];
}

/**
 * The layout of a plot with its legend below (line plot, overlay): { legendRows (of legendItems),
 * height (plot area, margins and legend), x (xDomain over the plot area's width), yBottom }.
 */
export function plotLayout({ width, plotHeight, margin, legendItems, xDomain }) {
  const legendRows = layoutLegend(legendItems, width - margin.left - margin.right);
  return {
    legendRows,
    height: margin.top + plotHeight + margin.bottom + legendRows.length * 16 + 4,
    x: linear(xDomain[0], xDomain[1], margin.left, width - margin.right),
    yBottom: margin.top + plotHeight,
  };
}

/** The step axis along y = `y`: its line, ticks that fit, and the unit's label below. */
function drawStepAxis(g, x, { y, theme, label, format = null }) {
  const [x0, x1] = x.range;
  s("line", { x1: x0, x2: x1, y1: y, y2: y, stroke: theme.axis }, g);
  // Steps are integers; hours and clock times (timeaxis.js) take round fractional ticks.
  const values = format ? ticks(x.domain[0], x.domain[1], Math.max(2, Math.floor((x1 - x0) / 80)))
    : stepTicks(x.domain[0], x.domain[1], stepTickCount(x1 - x0, x.domain[0], x.domain[1]));
  for (const v of values) {
    if (v < x.domain[0] || v > x.domain[1]) continue;
    s("line", { x1: x(v), x2: x(v), y1: y, y2: y + 4, stroke: theme.axis }, g);
    s("text", { class: "x-tick", "data-value": v, x: x(v), y: y + 14, "text-anchor": "middle", fill: theme.muted, text: formatX(v, format) }, g);
  }
  s("text", { class: "x-label", x: (x0 + x1) / 2, y: y + 26, "text-anchor": "middle", fill: theme.muted, text: label }, g);
}

/** A loss axis at x = `x` on the left or right of a plot: ticks in the loss colour (as many as fit) and
 * its rotated label. */
function drawLossAxis(g, yLoss, { x, side, colour, label }) {
  const [lo, hi] = yLoss.domain;
  const [yb, yt] = yLoss.range;
  const dir = side === "left" ? -1 : 1;
  for (const v of yLoss.ticks(Math.max(1, Math.min(4, Math.floor((yb - yt) / 30))))) {
    if (v < lo || v > hi) continue;
    s("line", { x1: x, x2: x + 4 * dir, y1: yLoss(v), y2: yLoss(v), stroke: colour }, g);
    s("text", { class: "loss-tick", "data-value": v, x: x + 6 * dir, y: yLoss(v) + 3, "text-anchor": side === "left" ? "end" : "start", fill: colour, text: fmt(v, 2) }, g);
  }
  s("text", {
    transform: `translate(${x + 38 * dir},${(yb + yt) / 2}) rotate(${90 * dir})`, "text-anchor": "middle", fill: colour, text: label,
  }, g);
}

/** Axes shared by every plot of a view: x = steps (labelled with their unit, xLabel), y = loss on the
 * `lossSide` (none without yLoss), right y = NAS in [0, 1] (when `right`); `box`: a frame around the plot
 * area in place of the loss axis' line. */
export function drawAxes(svg, { x, yLoss, yNas, theme, lossSide = "left", right = true, grid = true, box = false, xLabel = "epoch", xFormat = null, lossColour = LOSS, lossLabel = "test loss" }) {
  const [x0, x1] = x.range;
  const [yb, yt] = yNas.range;
  const g = s("g", { class: "axes", "font-family": FONT, "font-size": 10 }, svg);
  if (box) s("rect", { x: x0, y: yt, width: x1 - x0, height: yb - yt, fill: "none", stroke: theme.axis }, g);
  if (grid) {
    for (const v of yNas.ticks(4)) {
      s("line", { x1: x0, x2: x1, y1: yNas(v), y2: yNas(v), stroke: theme.grid, "stroke-width": 1 }, g);
    }
  }
  drawStepAxis(g, x, { y: yb, theme, label: xLabel, format: xFormat });
  if (right) {
    s("line", { x1: x1, x2: x1, y1: yb, y2: yt, stroke: theme.axis }, g);
    for (const v of yNas.ticks(4)) {
      s("text", { class: "nas-tick", "data-value": v, x: x1 + 5, y: yNas(v) + 3, fill: theme.muted, text: v }, g);
    }
    s("text", {
      transform: `translate(${x1 + 32},${(yb + yt) / 2}) rotate(90)`, "text-anchor": "middle",
      fill: theme.muted, text: "NAS (median)",
    }, g);
  }
  if (yLoss) {
    const at = lossSide === "left" ? x0 : x1;
    if (!box) s("line", { x1: at, x2: at, y1: yb, y2: yt, stroke: theme.axis }, g);
    drawLossAxis(g, yLoss, { x: at, side: lossSide, colour: lossColour, label: lossLabel });
  }
  return g;
}

/** The text of the note above a plot whose loss has no overfit step: its lowest point lies within the last
 * few logged points (the server's smoothing window), so nothing can be judged yet; null otherwise. */
export function lossNote(data) {
  const logged = data.loss && (data.loss.values || []).some((v) => v !== null && !Number.isNaN(v));
  return logged && (data.overfit_step === null || data.overfit_step === undefined)
    ? "too few epochs after the lowest test loss to judge" : null;
}

/** A one-line note in a plot's top margin (above the plot area, never over its marks), right-aligned. */
export function drawNote(svg, text, { x, theme }) {
  return s("text", { class: "overfit-note", x: x.range[1], y: 12, "text-anchor": "end", "font-size": 10.5, fill: theme.muted, text }, svg);
}

/** Onset steps of the NAS alarms of a response's runs (contract: alarm_status[run].onset). */
export function alarmOnsets(data) {
  const status = data.alarm_status || {};
  return Object.entries(status).filter(([, st]) => st && st.onset !== null && st.onset !== undefined)
    .map(([run, st]) => ({ run, step: st.onset }));
}

/** A NAS alarm marker: dotted purple line, a triangle on top (filled with `fill`), its description in a <title>. */
function alarmMarker(g, alarm, { x, yb, yt, unit, fill = ALARM }) {
  const xa = x(alarm.step);
  const marker = s("g", { class: "alarm-marker", "data-step": alarm.step, "data-run": alarm.run }, g);
  s("title", { text: `NAS overfitting alarm at ${unit} ${alarm.step} (${alarm.run}): ${(alarm.layers || []).join(", ")}` }, marker);
  s("line", { x1: xa, x2: xa, y1: yb, y2: yt, stroke: ALARM, "stroke-width": 1.6, "stroke-dasharray": "2 3" }, marker);
  s("path", { d: `M${xa - 5},${yt}L${xa + 5},${yt}L${xa},${yt + 8}Z`, fill }, marker);
  return marker;
}

/** The alarm's onset on the x axis: an upward hollow triangle at the axis line, outlined in `stroke`. */
function onsetMarker(g, onset, { x, yb, unit, stroke = ALARM }) {
  const xo = x(onset.step);
  const m = s("path", { class: "onset-marker", "data-step": onset.step, "data-run": onset.run, d: `M${xo - 5},${yb}L${xo + 5},${yb}L${xo},${yb - 8}Z`, fill: "none", stroke, "stroke-width": 1.5 }, g);
  s("title", { text: `NAS alarm onset: the climb became significant at ${unit} ${onset.step} (${onset.run})` }, m);
  return m;
}

/** Loss curves, the dashed overfit line, the NAS alarms (dotted purple, a triangle on top, the triggering
 * layers in its tooltip) and their onsets on the x axis, drawn over a plot. */
export function drawLosses(svg, data, { x, yLoss, theme, halo = false, smoothing = 0 }) {
  const g = s("g", { class: "losses" }, svg);
  const [yb, yt] = yLoss.range;
  const curves = [[data.loss2, LOSS2, "loss2-line"], [data.loss, LOSS, "loss-line"]];
  for (const [curve, colour, cls] of curves) {
    if (!curve || !curve.steps || curve.steps.length === 0) continue;
    // Smoothed as TensorBoard's scalars: the raw curve stays, faint, behind the smoothed one.
    if (smoothing > 0) s("path", { class: `${cls}-raw`, d: linePath(curve.steps, curve.values, x, yLoss), fill: "none", stroke: colour, "stroke-width": 1.2, "stroke-opacity": 0.25 }, g);
    const d = linePath(curve.steps, smoothEma(curve.values, smoothing), x, yLoss);
    if (halo) s("path", { d, fill: "none", stroke: theme.halo, "stroke-width": 3.5, "stroke-opacity": 0.7 }, g);
    s("path", { class: cls, d, fill: "none", stroke: colour, "stroke-width": 1.8, "data-tag": curve.tag || "" }, g);
  }
  if (data.overfit_step !== null && data.overfit_step !== undefined) {
    const xo = x(data.overfit_step);
    s("line", {
      class: "overfit-line", x1: xo, x2: xo, y1: yb, y2: yt, stroke: OVERFIT, "stroke-width": 1.6,
      "stroke-dasharray": "6 4", "data-step": data.overfit_step,
    }, g);
  }
  const unit = stepUnit(data);
  for (const alarm of data.alarms || []) alarmMarker(g, alarm, { x, yb, yt, unit });
  for (const onset of alarmOnsets(data)) onsetMarker(g, onset, { x, yb, unit });
  return g;
}

/** The alarms of several entries in one plot (the overlay): each alarm's and onset's triangle in its entry's colour. */
export function drawEntryAlarms(svg, entries, { x, yNas, unit }) {
  const g = s("g", { class: "alarms" }, svg);
  const [yb, yt] = yNas.range;
  for (const e of entries) {
    for (const alarm of e.alarms || []) alarmMarker(g, alarm, { x, yb, yt, unit, fill: e.color }).setAttribute("data-entry", e.name);
    for (const onset of e.onsets || []) onsetMarker(g, onset, { x, yb, unit, stroke: e.color }).setAttribute("data-entry", e.name);
  }
  return g;
}

/** Legend keys of the marks drawn for `data` (drawLosses), for a legend's end: [{ name, mark, title }]. */
export function markKeys(data, { losses = true } = {}) {
  const keys = [];
  if (losses && data.loss) keys.push({ name: data.loss.tag || "test loss", mark: "loss", title: "test loss (left axis)" });
  if (losses && data.loss2) keys.push({ name: data.loss2.tag || "2nd loss", mark: "loss2", title: "second loss (left axis)" });
  if (data.overfit_step !== null && data.overfit_step !== undefined) {
    keys.push({ name: "test-loss minimum", mark: "overfit", title: "dashed: the step of the lowest (smoothed) test loss" });
  }
  if ((data.alarms || []).length) keys.push({ name: "NAS alarm", mark: "alarm", title: "dotted, triangle on top: the NAS overfitting alarm" });
  if (alarmOnsets(data).length) keys.push({ name: "NAS alarm onset", mark: "onset", title: "triangle on the step axis: where the NAS climb became significant" });
  return keys;
}

/** The swatch of a legend item at (0, -2): a line in `colour`, or the symbol of a mark key. */
function swatch(g, item, colour) {
  const marks = {
    loss: () => s("line", { x1: 0, x2: 16, y1: -2, y2: -2, stroke: LOSS, "stroke-width": 2 }, g),
    loss2: () => s("line", { x1: 0, x2: 16, y1: -2, y2: -2, stroke: LOSS2, "stroke-width": 2 }, g),
    overfit: () => s("line", { x1: 0, x2: 16, y1: -2, y2: -2, stroke: OVERFIT, "stroke-width": 1.6, "stroke-dasharray": "6 4" }, g),
    alarm: () => {
      s("line", { x1: 8, x2: 8, y1: -9, y2: 5, stroke: ALARM, "stroke-width": 1.6, "stroke-dasharray": "2 3" }, g);
      s("path", { d: "M3,-9L13,-9L8,-2Z", fill: ALARM }, g);
    },
    onset: () => s("path", { d: "M3,3L13,3L8,-5Z", fill: "none", stroke: ALARM, "stroke-width": 1.5 }, g),
    entryMin: () => s("line", { x1: 0, x2: 16, y1: -2, y2: -2, stroke: "#9e9e9e", "stroke-width": 1.6, "stroke-dasharray": "2 4" }, g),
    dashed: () => s("line", { x1: 0, x2: 16, y1: -2, y2: -2, stroke: "#9e9e9e", "stroke-width": 2, "stroke-dasharray": "5 3" }, g),
  };
  if (item.mark && marks[item.mark]) marks[item.mark]();
  else s("line", { x1: 0, x2: 16, y1: -2, y2: -2, stroke: colour, "stroke-width": 3 }, g);
}

/** Fade every series of `svg` but the one whose `attr` is `name` (null: show all evenly). */
export function focusSeries(svg, attr, name) {
  svg.classList.toggle("focus", name !== null);
  for (const el of svg.querySelectorAll(`.lines [${attr}], .bands [${attr}], .losses [${attr}]`)) {
    el.classList.toggle("focused", el.getAttribute(attr) === name);
  }
}

/** Legend rows fitting `width` px: [[{ item, x, w }]], items (with a .name) in order. */
export function layoutLegend(items, width) {
  const rows = [];
  let row = [];
  let used = 0;
  for (const item of items) {
    const w = 26 + Math.min(24, (item.label || item.name).length) * 6.2;
    if (row.length > 0 && used + w > width) {
      rows.push(row);
      row = [];
      used = 0;
    }
    row.push({ item, x: used, w });
    used += w;
  }
  if (row.length) rows.push(row);
  return rows;
}

/**
 * Draw legend `rows` (from layoutLegend) into `svg` from (left, top), 16 px a row: a line swatch in
 * colourOf(item) and the truncated name; dimmed where off(item), a <title> of titleOf(item), onClick(item).
 */
export function drawLegend(svg, rows, { left, top, theme, colourOf, titleOf, off = () => false, onClick = null, attr = "data-layer" }) {
  const legend = s("g", { class: "legend", "font-size": 10.5 }, svg);
  rows.forEach((row, r) => {
    for (const { item, x: lx, w } of row) {
      const hidden = off(item);
      const g = s("g", {
        class: "legend-item" + (hidden ? " off" : ""), [attr]: item.name, cursor: onClick ? "pointer" : null,
        transform: `translate(${left + lx},${top + r * 16})`, opacity: hidden ? 0.35 : 1,
      }, legend);
      s("rect", { x: -2, y: -9, width: w - 4, height: 14, fill: "transparent" }, g);
      swatch(g, item, item.mark ? null : colourOf(item));
      s("text", { x: 20, y: 2, fill: theme.fg, text: middleEllipsis(item.label || item.name) }, g);
      s("title", { text: item.mark ? item.title : titleOf(item) }, g);
      if (item.mark) {
        g.setAttribute("class", "legend-item legend-key");
        g.setAttribute("data-mark", item.mark);
        g.removeAttribute(attr);
        continue;
      }
      if (onClick) g.addEventListener("click", () => onClick(item));
      // Hovering a key fades every other series of the plot (its lines and bands carry the same attribute).
      g.addEventListener("mouseenter", () => focusSeries(svg, attr, item.name));
      g.addEventListener("mouseleave", () => focusSeries(svg, attr, null));
    }
  });
  return legend;
}

/**
 * A chart's frame: <div class="nas-chart"> holding <svg class=cls> (width x height) on the theme's
 * background with drawAxes(axes) under a <g> clipped to the plot area, whose top and bottom are
 * yNas's range and left and right x's (`clipPad` px more above and below). root.exportSvg() copies the
 * SVG without its hover layer. A plot area painted on a canvas under the SVG: `underlay()` returns its
 * SVG stand-in for the export, and the SVG has no background of its own (the canvas shows through).
 */
export function chartFrame(cls, width, height, axes, { underlay = null, clipPad = 2 } = {}) {
  const root = h("div", { class: "nas-chart" });
  const svg = s("svg", {
    class: cls, xmlns: "http://www.w3.org/2000/svg", width, height, viewBox: `0 0 ${width} ${height}`, "font-family": FONT,
  }, root);
  const background = () => s("rect", { class: "bg", x: 0, y: 0, width, height, fill: axes.theme.bg });
  if (!underlay) svg.appendChild(background());
  drawAxes(svg, axes);
  const [left, right] = axes.x.range;
  const [bottom, top] = axes.yNas.range;
  const clipId = uniqueId("clip");
  const clip = s("clipPath", { id: clipId }, s("defs", {}, svg));
  s("rect", { x: left, y: top - clipPad, width: right - left, height: bottom - top + 2 * clipPad }, clip);
  const plot = s("g", { "clip-path": `url(#${clipId})` }, svg);
  root.exportSvg = () => {
    const copy = svg.cloneNode(true);
    copy.querySelectorAll(".hover").forEach((n) => n.remove());
    if (underlay) copy.prepend(background(), underlay());
    return copy;
  };
  return { root, svg, plot };
}

/** A crosshair shared by the panels of one view: move(step) tells every subscriber where the pointer is
 * (null: it left). */
export function makeCursor() {
  const listeners = new Set();
  return {
    subscribe: (fn) => listeners.add(fn),
    move: (step) => listeners.forEach((fn) => fn(step)),
  };
}

/**
 * Hover over the plot area of a chartFrame: the point of `series` ([{ steps, median, colour, label }])
 * nearest the pointer gets a ring and a tooltip { title, rows } from describe(item, step, value), followed by
 * every series' value at that step (largest first); a crosshair at that step in this plot and, through
 * `cursor` (makeCursor), in every other plot of the view.
 */
export function hoverNearest(frame, { x, yNas, theme }, series, describe, cursor = null) {
  const { root, svg } = frame;
  const [left, right] = x.range;
  const [bottom, top] = yNas.range;
  const width = +svg.getAttribute("width");
  const cross = s("line", { class: "crosshair", y1: bottom, y2: top, stroke: theme.muted, "stroke-width": 1, "stroke-dasharray": "3 3", visibility: "hidden", "pointer-events": "none" }, svg);
  const dot = s("circle", { r: 3.5, fill: "none", stroke: theme.fg, "stroke-width": 1.5, visibility: "hidden" }, svg);
  const showCross = (step) => {
    const inside = step !== null && step !== undefined && x(step) >= left - 0.5 && x(step) <= right + 0.5;
    cross.setAttribute("visibility", inside ? "visible" : "hidden");
    if (inside) {
      cross.setAttribute("x1", x(step));
      cross.setAttribute("x2", x(step));
      cross.dataset.step = step;
    }
  };
  if (cursor) cursor.subscribe(showCross);
  const area = s("rect", { class: "hover", x: left, y: top, width: right - left, height: bottom - top, fill: "transparent" }, svg);
  hoverTip(root, svg, area, (mx, my) => {
    const step = x.invert(mx);
    let best = null;
    for (const item of series) {
      const i = nearestIndex(item.steps, step);
      const v = i < 0 ? null : item.median[i];
      if (v === null || v === undefined) continue;
      const dist = Math.abs(yNas(v) - my) + Math.abs(x(item.steps[i]) - mx) * 0.2;
      if (!best || dist < best.dist) best = { item, i, v, dist };
    }
    if (!best) return null;
    const st = best.item.steps[best.i];
    dot.setAttribute("cx", x(st));
    dot.setAttribute("cy", yNas(best.v));
    dot.setAttribute("visibility", "visible");
    const { title, rows } = describe(best.item, st, best.v);
    const others = series.filter((item) => item !== best.item).map((item) => {
      const j = item.steps.indexOf(st);
      return { item, v: j < 0 ? null : item.median[j] };
    }).filter((o) => o.v !== null && o.v !== undefined).sort((a, b) => b.v - a.v);
    const all = others.map((o) => ({ class: "series", text: `${o.item.label || o.item.name}  ${fmt(o.v, 4)}`, style: { borderLeft: `8px solid ${o.item.colour || "transparent"}`, paddingLeft: "4px" } }));
    if (cursor) cursor.move(st);
    else showCross(st);
    return { title, rows: [...rows, ...all], left: Math.min(x(st) + 12, width - 170), top: Math.max(0, yNas(best.v) - 30) };
  }, () => {
    dot.setAttribute("visibility", "hidden");
    if (cursor) cursor.move(null);
    else showCross(null);
  });
}

/** [lo, hi] rounded to 4 significant digits of its span, so that the URL holds short numbers. */
function roundRange(lo, hi) {
  const unit = 10 ** (Math.floor(Math.log10(hi - lo)) - 3);
  return [Math.round(lo / unit) * unit, Math.round(hi / unit) * unit].map((v) => +v.toFixed(12));
}

/**
 * Drag-to-zoom on the NAS axis of a chartFrame (after hoverNearest, whose hover area it listens on): a
 * vertical drag over the plot shades the band and calls onZoom([lo, hi]) with its NAS values; a double-click
 * calls onZoom(null) (back to the unzoomed axis). Drags under 4 px are clicks and zoom nothing.
 */
export function dragZoomY(frame, { yNas, theme }, onZoom) {
  const { svg } = frame;
  const area = svg.querySelector("rect.hover");
  const [left, right] = [+area.getAttribute("x"), +area.getAttribute("x") + +area.getAttribute("width")];
  const [bottom, top] = yNas.range;
  const band = s("rect", { class: "zoom-band", x: left, width: right - left, y: top, height: 0, fill: theme.muted, "fill-opacity": 0.2, visibility: "hidden", "pointer-events": "none" }, svg);
  const yOf = (ev) => Math.max(top, Math.min(bottom, ev.clientY - svg.getBoundingClientRect().top));
  area.style.cursor = "ns-resize";
  area.addEventListener("mousedown", (down) => {
    if (down.button !== 0) return;
    down.preventDefault(); // no text selection while dragging
    const y0 = yOf(down);
    const move = (ev) => {
      const y1 = yOf(ev);
      band.setAttribute("y", Math.min(y0, y1));
      band.setAttribute("height", Math.abs(y1 - y0));
      band.setAttribute("visibility", "visible");
    };
    const up = (ev) => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      band.setAttribute("visibility", "hidden");
      const y1 = yOf(ev);
      if (Math.abs(y1 - y0) >= 4) onZoom(roundRange(yNas.invert(Math.max(y0, y1)), yNas.invert(Math.min(y0, y1))));
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
  area.addEventListener("dblclick", () => onZoom(null));
}

/** Tooltip row of the loss at `step` of a { steps, values } curve, or none. */
export function lossRows(loss, step, label = "test loss") {
  const j = loss ? loss.steps.indexOf(step) : -1;
  return j >= 0 ? [{ class: "loss", text: `${label} ${fmt(loss.values[j], 4)}` }] : [];
}

