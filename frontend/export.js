// Export of a view as SVG or PNG (rasterised from the same SVG), downloaded through a blob URL.
import { FONT, s } from "./dom.js";

/** One SVG holding every panel's exportSvg() in a grid with its title, as on screen. */
export function composeSvg(panels, { columns = 1, background = "#ffffff", foreground = "#212121" } = {}) {
  const gap = 12;
  const titleH = 18;
  const sizes = panels.map((p) => p.svg.getAttribute("width") ? [+p.svg.getAttribute("width"), +p.svg.getAttribute("height")] : [640, 300]);
  const colW = Math.max(...sizes.map((z) => z[0]));
  const rows = Math.ceil(panels.length / columns);
  const rowH = [];
  for (let r = 0; r < rows; r++) rowH.push(Math.max(...sizes.slice(r * columns, (r + 1) * columns).map((z) => z[1])) + titleH);
  const width = columns * colW + (columns + 1) * gap;
  const height = rowH.reduce((a, b) => a + b + gap, gap);
  const out = s("svg", { xmlns: "http://www.w3.org/2000/svg", width, height, viewBox: `0 0 ${width} ${height}`, "font-family": FONT });
  s("rect", { x: 0, y: 0, width, height, fill: background }, out);
  let y = gap;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const i = r * columns + c;
      if (i >= panels.length) break;
      const x = gap + c * (colW + gap);
      const p = panels[i];
      if (p.chip) s("rect", { x, y: y + 3, width: 10, height: 10, rx: 2, fill: p.chip }, out);
      s("text", { x: x + (p.chip ? 15 : 0), y: y + 12, "font-size": 12, "font-weight": 500, fill: foreground, text: p.title }, out);
      p.svg.setAttribute("x", x);
      p.svg.setAttribute("y", y + titleH);
      out.appendChild(p.svg);
    }
    y += rowH[r] + gap;
  }
  return out;
}

/** One SVG with `svgs` stacked top to bottom on a `background` rectangle. */
export function stackSvg(svgs, background) {
  const width = Math.max(...svgs.map((g) => +g.getAttribute("width")));
  const height = svgs.reduce((sum, g) => sum + +g.getAttribute("height"), 0);
  const out = s("svg", { xmlns: "http://www.w3.org/2000/svg", width, height, "font-family": FONT });
  s("rect", { x: 0, y: 0, width, height, fill: background }, out);
  let y = 0;
  for (const g of svgs) {
    g.setAttribute("x", 0);
    g.setAttribute("y", y);
    y += +g.getAttribute("height");
    out.appendChild(g);
  }
  return out;
}

export function serialize(svg) {
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
}

function download(blob, filename) {
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = filename;
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

export function downloadSvg(svg, filename) {
  download(new Blob([serialize(svg)], { type: "image/svg+xml" }), filename);
}

/** Rasterise the SVG at `scale` x its size and download it as PNG. */
export async function downloadPng(svg, filename, scale = 2) {
  const width = +svg.getAttribute("width");
  const height = +svg.getAttribute("height");
  const href = URL.createObjectURL(new Blob([serialize(svg)], { type: "image/svg+xml" }));
  try {
    const img = new Image();
    img.decoding = "sync";
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("the browser could not rasterise the SVG"));
      img.src = href;
    });
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const ctx = canvas.getContext("2d");
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0, width, height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    download(blob, filename);
  } finally {
    URL.revokeObjectURL(href);
  }
}

/** A file name from run/group names: letters, digits, '-', '_' and '.' only. */
export function fileName(parts, ext) {
  const base = parts.join("_").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 80) || "nas";
  return `${base}.${ext}`;
}

// First characters that make a spreadsheet run a cell as a formula (OWASP "CSV Injection"), as the
// server's export route guards them.
const FORMULA_START = ["=", "+", "-", "@", "\t", "\r"];

/** RFC 4180 CSV of `rows` (arrays of strings, numbers, null): CRLF rows, quoted where needed, a
 * leading ' on text that a spreadsheet would run as a formula; null is an empty cell. */
export function csvText(rows) {
  const cell = (v) => {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return String(v);
    const text = FORMULA_START.some((c) => v.startsWith(c)) ? "'" + v : v;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return rows.map((r) => r.map(cell).join(",") + "\r\n").join("");
}

export function downloadText(text, filename, type = "text/csv") {
  download(new Blob([text], { type }), filename);
}
