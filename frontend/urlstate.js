// The tab's view state in the top page's URL hash, TensorBoard-style: "#nas&p.nas.view=stripes&p.nas.runs=...".
// TensorBoard keeps a plugin's URL data under "p.<plugin>.<key>" (plugin_lib's getURLPluginData returns those
// keys), but TensorBoard 2.21's host answers that message with {} (it reads another hash dictionary than the
// page's), and has no message to write them. The plugin's iframe is same-origin and unsandboxed, so the tab
// reads and writes the top page's hash itself, leaving TensorBoard's own part ("nas", its other keys) as it is.

const PLUGIN = "nas";
const PREFIX = `p.${PLUGIN}.`;

// One line per piece of state: its key in the URL and how it is written ("string", "number", "list": a JSON
// array, or "map": a JSON object of strings). To add state (a view's own options, an axis unit), add it here and
// to NasApp.urlState()/applyState() (the heatmap view's: HeatmapView.urlState()/applyState()).
export const FIELDS = {
  view: "string",
  runs: "list", // selected entries' keys, "group:NAME" / "run:NAME"
  loss: "string",
  loss2: "string",
  step: "string", // the heatmap step, as the server sent it (a string beyond 2^53)
  hidden: "list", // layers hidden in the line plots
  regex: "string", // group_regex; absent: the server's default
  refresh: "number", // seconds between refreshes of the run list
  layers: "list", // the overlay view's chosen layers; absent: every layer
  probe: "number", // which probe image the heatmaps show
  heatruns: "map", // the run that a group's heatmap panel shows, by group key ("group:NAME")
  height: "number", // plot height of every panel in px; absent: fitted to the window
  smooth: "number", // loss smoothing weight in [0, 1), TensorBoard's slider; absent: 0
  xaxis: "string", // "relative" / "wall" x axis (timeaxis.js); absent: steps
  yfit: "string", // "1": the NAS axis fitted to the shown values; absent: 0..1
  yzoom: "list", // [lo, hi] of the NAS axis dragged on a plot; absent: yfit's axis
  logloss: "string", // "1": the loss axis in log scale
  enlarge: "string", // the key of the one panel shown enlarged
  losses: "string", // the overlay's dashed losses: "on" / "off"; absent: on for up to OVERLAY_LOSSES entries
};

/** The window whose URL a user copies: TensorBoard's page, or this page when opened on its own. */
export function topWindow() {
  try {
    if (window.parent !== window && window.parent.location.href) return window.parent;
  } catch (e) {
    // a cross-origin parent: keep the state in this page's own URL
  }
  return window;
}

/** decodeURIComponent, or null for a malformed escape ("%E0%A4%A" typed into the address bar). */
function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch (e) {
    return null;
  }
}

function parts(hash) {
  return hash.replace(/^#/, "").split("&").filter((p) => p !== "");
}

/** {field: value} of the fields present in the top page's hash; malformed values are left out. */
export function readState() {
  const state = {};
  for (const part of parts(topWindow().location.hash)) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = decode(part.slice(0, eq));
    if (key === null || !key.startsWith(PREFIX)) continue;
    const name = key.slice(PREFIX.length);
    const kind = FIELDS[name];
    const text = decode(part.slice(eq + 1));
    if (text === null) continue; // a malformed value: as if absent
    if (kind === "string") state[name] = text;
    else if (kind === "number" && Number.isFinite(+text) && text !== "") state[name] = +text;
    else if (kind === "list" || kind === "map") {
      let value;
      try {
        value = JSON.parse(text);
      } catch (e) {
        continue; // a hand-edited value that is not JSON: as if absent
      }
      if (kind === "list" && Array.isArray(value)) state[name] = value.map(String);
      else if (kind === "map" && value && typeof value === "object" && !Array.isArray(value)) {
        state[name] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
      }
    }
  }
  return state;
}

/** The top page's hash with `state`'s fields in place of the tab's old ones; null, undefined and "" are left
 * out (an empty list is written: "nothing selected" is not "the default"). */
export function hashOf(state) {
  const kept = parts(topWindow().location.hash).filter((p) => !(decode(p.split("=")[0]) || "").startsWith(PREFIX));
  for (const [name, kind] of Object.entries(FIELDS)) {
    const value = state[name];
    if (value === undefined || value === null || value === "") continue;
    const text = kind === "list" || kind === "map" ? JSON.stringify(value) : String(value);
    kept.push(`${encodeURIComponent(PREFIX + name)}=${encodeURIComponent(text)}`);
  }
  return "#" + kept.join("&");
}

/** Put `state` in the top page's URL: a new history entry (Back returns to this one), or in place. */
export function writeState(state, { replace = false } = {}) {
  const top = topWindow();
  const hash = hashOf(state);
  if (hash === top.location.hash) return;
  const next = new URL(top.location.href);
  next.hash = hash;
  if (replace) top.history.replaceState(top.history.state, "", next.href);
  else top.history.pushState(top.history.state, "", next.href);
}

/** TensorBoard's active tab in a hash ("#nas&..." -> "nas"); "" for none (this page opened on its own). */
function tabOf(hash) {
  const first = parts(hash)[0] || "";
  return first.includes("=") ? "" : decode(first) || "";
}

/** Call `callback(readState(), stayed)` when the user moves through history or edits the URL while the tab
 * is TensorBoard's active one; `stayed` is false when the user comes back from another tab (whose URL held
 * none of this tab's state). */
export function onStateChange(callback) {
  const top = topWindow();
  let tab = tabOf(top.location.hash);
  top.addEventListener("hashchange", () => {
    const was = tab;
    tab = tabOf(top.location.hash);
    if (top === window || tab === PLUGIN) callback(readState(), top === window || was === PLUGIN);
  });
}
