// The NAS tab: run/group list with colour chips, view switcher, small multiples with shared axes,
// exports, empty and error states, and TensorBoard's light/dark theme: the selection, the data fetching and
// which view draws. Live: refreshes with TensorBoard (refresh.js), refetching only runs whose data version
// changed; its view state lives in the top page's URL (urlstate.js). The run list is sidebar.js's, the
// toolbar toolbar.js's, the heatmap view's state and step bar heatmapview.js's.
import { fetchJSON, getJSON, url, clearCache } from "./api.js";
import { runColor, themeColors } from "./colors.js";
import { errorBox, h, middleEllipsis } from "./dom.js";
import { composeSvg, downloadPng, downloadSvg, fileName } from "./export.js";
import { extent, lossExtent, makeCursor, niceLossDomain, sharedDomains, stepExtent } from "./chart.js";
import { HeatmapView } from "./heatmapview.js";
import { linePlot } from "./lineplot.js";
import { layerChooser, layerSeries, overlayLayers, overlayPanel } from "./overlay.js";
import { Refresher } from "./refresh.js";
import { firstSelection, inListOrder } from "./selection.js";
import { Sidebar, displayOrder, key } from "./sidebar.js";
import { domainsByUnit, stepUnit } from "./steps.js";
import { stripePlot, stripeStepExtent } from "./stripeplot.js";
import { adoptParentFonts, isDark, watchTheme } from "./theme.js";
import { X_AXES, onXAxis } from "./timeaxis.js";
import { Toolbar } from "./toolbar.js";
import { onStateChange, readState, writeState } from "./urlstate.js";

const VIEWS = [["lines", "Line plot"], ["stripes", "Stripe plot"], ["heatmap", "Heatmap"], ["overlay", "Overlay"]];
const EMPTY_CODE = [
  "import nas_logger",
  "",
  'monitor = nas_logger.watch(model, "runs/exp")        # once, before training',
  "for epoch in range(epochs):",
  "    train_one_epoch(model)",
  "    monitor.log(epoch, test_loss=test_loss)           # once per epoch",
];
// Up to this many overlaid entries the overlay draws their losses unless the URL says otherwise.
const OVERLAY_LOSSES = 3;
const MIN_PANEL_W = 420;
const MIN_PLOT_H = 150;
const MAX_PLOT_H = 700;
const PANEL_CHROME = 150;
const ASPECT_MIN = 1.2;
const ASPECT_MAX = 3;

/** The NAS axis zoom of a URL's p.nas.yzoom (["lo", "hi"]): [lo, hi] with 0 <= lo < hi <= 1, else null. */
function nasZoom(pair) {
  const [lo, hi] = (pair || []).map(Number);
  return pair && pair.length === 2 && lo >= 0 && hi <= 1 && lo < hi ? [lo, hi] : null;
}

export class NasApp {
  constructor(body) {
    this.body = body;
    this.view = "lines";
    this.selected = [];
    this.hidden = new Set();
    this.lossTag = "";
    this.loss2Tag = "";
    this.dark = isDark();
    this.timings = [];
    this.token = 0;
    this.catalog = { runs: [], groups: [] };
    this.overlayLayers = null; // the overlay view's layers by name; null: every layer
    this.heatmap = new HeatmapView(this);
    this.versions = new Map(); // run -> data version (its last step and when it was logged, from the runs route)
    this.colors = new Map(); // entry key -> colour, kept while the list changes
    this.regex = "";
    this.restored = null; // the URL state to apply to the first list of runs
    this.redraw = false; // draw on the next list of runs even if no selected run changed
    this.refresher = new Refresher(() => this.refresh());
  }

  async start() {
    performance.mark("nas-start");
    this.restored = readState();
    this.applyState(this.restored);
    // The run list is asked for while the style sheet loads: the first plot waits for one round trip less.
    this.pendingRuns = fetchJSON(url("runs", { group_regex: this.regex }));
    this.pendingRuns.catch(() => {});
    const css = h("link", { rel: "stylesheet", href: new URL("./style.css", import.meta.url).href }, document.head);
    await new Promise((resolve) => {
      css.addEventListener("load", resolve);
      css.addEventListener("error", resolve);
      setTimeout(resolve, 2000);
    });
    adoptParentFonts();
    this.body.classList.add("nas-body");
    this.body.classList.toggle("dark-mode", this.dark);
    watchTheme((dark) => {
      this.dark = dark;
      this.body.classList.toggle("dark-mode", dark);
      this.rerender();
    });
    this.root = h("div", { class: "nas-app" }, this.body);
    this.root.replaceChildren(h("div", { class: "nas-loading", text: "Loading NAS runs\u2026" }));
    await this.loadCatalog();
    // Back in this tab from another: its URL is "#nas", so put the state that is still shown back in it.
    onStateChange((state, stayed) => (stayed ? this.restore(state) : this.saveState(true)));
    this.refresher.start();
  }

  /** Fetch the run list (with the grouping regex; on its 400 the default's, the error shown beside the
   * regex) and redraw what changed. The first list sets the layout; later ones keep it. */
  async loadCatalog() {
    let catalog;
    let regexError = null;
    try {
      try {
        const pending = this.pendingRuns;
        this.pendingRuns = null;
        catalog = await (pending || fetchJSON(url("runs", { group_regex: this.regex })));
        performance.mark("nas-runs");
      } catch (e) {
        if (!this.regex || e.parameter !== "group_regex") throw e;
        regexError = e.message;
        catalog = await fetchJSON("runs");
      }
    } catch (e) {
      if (this.panels) {
        this.message.replaceChildren(errorBox("Could not refresh the list of NAS runs", e));
        return;
      }
      this.root.replaceChildren(errorBox("Could not load the list of NAS runs", e));
      this.root.dataset.state = "error";
      return;
    }
    const oldVersions = this.versions;
    this.catalog = { runs: catalog.runs || [], groups: catalog.groups || [], defaultRegex: catalog.default_group_regex };
    this.versions = new Map(this.catalog.runs.map((r) => [r.run, `${r.max_step}@${r.wall_time}`]));
    if (this.catalog.runs.length === 0) {
      this.root.replaceChildren(this.emptyState());
      this.root.dataset.state = "empty";
      this.panels = null;
      return;
    }
    const entries = this.entries();
    this.entryByKey = new Map(entries.map((e) => [key(e), e]));
    this.listOrder = displayOrder(entries); // panels follow the list's order
    const first = !this.panels;
    if (first) this.buildLayout();
    const oldSelection = this.selected.map(key).join("\n");
    this.selected = this.selectionFrom(this.restored ? this.restored.runs : this.selected.map(key));
    this.restored = null;
    this.sidebar.setEntries(entries, new Set(this.selected.map(key)));
    this.sidebar.setRegex(this.regex, this.catalog.defaultRegex, regexError);
    this.root.dataset.state = "ready";
    this.root.dataset.runs = String(this.catalog.runs.length);
    const changed = first || this.redraw || this.selected.map(key).join("\n") !== oldSelection ||
      this.selected.some((e) => e.runs.some((r) => oldVersions.get(r) !== this.versions.get(r)));
    this.redraw = false;
    if (changed) {
      this.loadTags();
      await this.renderView();
    }
  }

  /** New data since the last look: the run list, then the views of the selected runs that changed. */
  async refresh() {
    if (this.panels) await this.loadCatalog();
  }

  /** Selectable entries: groups of 2+ runs first, then every run; each keeps its colour while the list changes. */
  entries() {
    const groups = this.catalog.groups.filter((g) => g.matched !== false && (g.runs || []).length > 1);
    const list = [
      ...groups.map((g) => ({ type: "group", name: g.group, runs: g.runs })),
      ...this.catalog.runs.map((r) => ({ type: "run", name: r.run, runs: [r.run], info: r })),
    ];
    for (const e of list) {
      if (!this.colors.has(key(e))) this.colors.set(key(e), runColor(this.colors.size));
      e.color = this.colors.get(key(e));
    }
    return list;
  }

  /** The listed entries of `keys` (a URL's, or the selection before a new list of runs); the first view
   * (firstSelection) when there are no keys (undefined) or none of them is listed any more. An empty list
   * stays empty: "nothing selected" is the user's choice. */
  selectionFrom(keys) {
    const found = (keys || []).filter((k) => this.entryByKey.has(k)).map((k) => this.entryByKey.get(k));
    if (found.length || (keys && keys.length === 0)) return inListOrder(found, this.listOrder);
    return inListOrder(firstSelection([...this.entryByKey.values()], this.catalog.runs), this.listOrder);
  }

  /** The data versions of an entry's runs: the cache key of every response about it. */
  versionOf(entry) {
    return entry.runs.map((r) => this.versions.get(r) || "").join(",");
  }

  /** The view state that the URL holds (see urlstate.js FIELDS). */
  urlState() {
    return {
      view: this.view, runs: this.selected.map(key), loss: this.lossTag, loss2: this.loss2Tag,
      ...this.heatmap.urlState(this.view === "heatmap"),
      hidden: this.hidden.size ? [...this.hidden] : null, regex: this.regex, refresh: this.refreshSeconds,
      layers: this.overlayLayers,
      losses: this.overlayLosses, height: this.panelHeight,
      smooth: this.smoothing || null, xaxis: this.xAxis === "step" ? null : this.xAxis, yfit: this.fitY ? "1" : null, yzoom: this.yZoom, logloss: this.logLoss ? "1" : null,
      enlarge: this.enlarged,
    };
  }

  applyState(state) {
    this.view = VIEWS.some(([id]) => id === state.view) ? state.view : "lines";
    this.lossTag = state.loss || "";
    this.loss2Tag = state.loss2 || "";
    this.hidden = new Set(state.hidden || []);
    this.overlayLayers = state.layers || null;
    this.heatmap.applyState(state);
    this.regex = state.regex || "";
    this.smoothing = Number.isFinite(state.smooth) ? Math.max(0, Math.min(0.99, state.smooth)) : 0;
    this.fitY = state.yfit === "1";
    this.yZoom = nasZoom(state.yzoom);
    this.xAxis = X_AXES.some(([id]) => id === state.xaxis) ? state.xaxis : "step";
    this.logLoss = state.logloss === "1";
    this.enlarged = state.enlarge || null;
    if (this.toolbar) this.toolbar.sync();
    this.panelHeight = Number.isFinite(state.height) && state.height > 0 ? Math.max(80, Math.min(2000, Math.round(state.height))) : null;
    this.overlayLosses = state.losses === "on" || state.losses === "off" ? state.losses : null;
    this.refreshSeconds = state.refresh;
    this.refresher.setPeriod(state.refresh);
  }

  /** Record the state in the URL: a history entry, or in place for moves that come in streams (the slider). */
  saveState(replace = false) {
    writeState(this.urlState(), { replace });
  }

  /** Show the view that a URL (Back/Forward, an edited link) describes. */
  async restore(state) {
    const regex = this.regex;
    this.heatmap.forgetStep();
    this.applyState(state);
    this.restored = state;
    if (!this.panels) return;
    this.showViewBars();
    this.toolbar.syncLosses();
    if (regex !== this.regex) {
      this.redraw = true;
      this.panels.dataset.ready = "0";
      await this.loadCatalog();
      return;
    }
    this.selected = this.selectionFrom(state.runs);
    this.restored = null;
    this.sidebar.check(new Set(this.selected.map(key)));
    this.loadTags();
    await this.renderView();
  }

  /** The loss tags of the selected entries (of a group, its first run's) in the two loss menus. */
  async loadTags() {
    const runs = [...new Set(this.selected.map((e) => e.runs[0]))];
    const details = await Promise.all(runs.map((r) => getJSON(url("run", { run: r }), this.versions.get(r)).catch(() => null)));
    this.toolbar.fillTags([...new Set(details.flatMap((d) => (d && d.scalar_tags) || []))].sort());
  }

  setRegex(text) {
    if (text === this.regex) return;
    this.regex = text;
    this.saveState();
    this.redraw = true; // the groups, so the selected entries, may be others
    this.panels.dataset.ready = "0";
    this.loadCatalog();
  }

  emptyState() {
    const box = h("div", { class: "nas-empty" });
    h("h2", { text: "No NAS data in this log directory yet" }, box);
    h("p", { text: "Add two lines to your PyTorch training loop, then reload TensorBoard:" }, box);
    h("pre", { class: "nas-code", text: EMPTY_CODE.join("\n") }, box);
    h("p", { text: "nas_logger.watch() measures Neural Activation Sparsity on every Conv and Linear layer; " +
      "monitor.log() writes it next to the test loss. Run tensorboard --logdir runs to see this tab fill." }, box);
    return box;
  }

  buildLayout() {
    this.sidebar = new Sidebar({
      toggle: (entry, on) => this.toggleEntry(entry, on),
      selectMany: (keys, on) => this.selectMany(keys, on),
      regex: (text) => this.setRegex(text),
    });
    const sidebar = this.sidebar.el;

    const main = h("main", { class: "nas-main" });
    this.toolbar = new Toolbar(main, {
      views: VIEWS,
      state: () => this,
      on: {
        view: (id) => this.setView(id),
        change: (patch, save) => this.changeState(patch, save),
        exportView: (format) => this.exportView(format),
        reload: () => {
          clearCache();
          this.redraw = true;
          this.panels.dataset.ready = "0";
          this.refresher.now();
        },
      },
    });
    main.appendChild(this.heatmap.stepBar);

    this.message = h("div", { class: "nas-message" }, main);
    this.panels = h("div", { class: "nas-panels" }, main);
    this.root.replaceChildren(sidebar, main);
    this.showViewBars();
    // Panels are sized to the window's width and height (layout): redraw when either changes, but not for
    // the observer's first report of the width the first view was laid out for.
    let lastWidth = this.panels.clientWidth;
    let lastHeight = window.innerHeight;
    let timer = null;
    const resized = () => {
      const w = this.panels.clientWidth;
      if (Math.abs(w - lastWidth) < 8 && Math.abs(window.innerHeight - lastHeight) < 8) return;
      lastWidth = w;
      lastHeight = window.innerHeight;
      clearTimeout(timer);
      timer = setTimeout(() => this.rerender(), 150);
    };
    new ResizeObserver(resized).observe(this.panels);
    window.addEventListener("resize", resized);
  }

  /** The entries that get a panel: the enlarged one alone, else every selected one. */
  panelEntries() {
    const one = this.enlarged && this.selected.find((e) => key(e) === this.enlarged);
    return one ? [one] : this.selected;
  }

  /** Options every chart of a view shares: the toolbar's controls and one crosshair. */
  chartOptions() {
    return {
      smoothing: this.smoothing, fitY: this.fitY, logLoss: this.logLoss, cursor: makeCursor(),
      yZoom: this.yZoom, onYZoom: (range) => this.zoomY(range),
    };
  }

  /** Zoom the NAS axis of the line plots and overlays to `range` ([lo, hi]), or back (null). */
  zoomY(range) {
    if (!range && !this.yZoom) return;
    this.yZoom = range;
    this.saveState();
    this.renderView();
  }

  /** A toolbar control's change: `patch` of the state (fields of this app), recorded in the URL as a new
   * history entry (save true), in place ("replace") or not at all (false); a patch redraws the view. */
  changeState(patch, save) {
    Object.assign(this, patch);
    if (save) this.saveState(save === "replace");
    if (Object.keys(patch).length) this.renderView();
  }

  toggleEntry(entry, on) {
    this.selected = this.selected.filter((e) => key(e) !== key(entry));
    if (on) this.selected.push(entry);
    this.selected = inListOrder(this.selected, this.listOrder);
    this.saveState();
    this.loadTags();
    this.renderView();
  }

  /** Tick (`on`) or clear the entries `keys`, in the list's order. */
  selectMany(keys, on) {
    const these = new Set(keys);
    this.selected = this.selected.filter((e) => !these.has(key(e)));
    if (on) this.selected.push(...keys.map((k) => this.entryByKey.get(k)).filter(Boolean));
    this.selected = inListOrder(this.selected, this.listOrder);
    this.sidebar.check(new Set(this.selected.map(key)));
    this.saveState();
    this.loadTags();
    this.renderView();
  }

  setView(view) {
    if (this.view === view) return;
    this.heatmap.stopPlay();
    this.view = view;
    this.showViewBars();
    this.saveState();
    this.renderView();
  }

  /** The active view's button, and the bars of the views that have one. */
  showViewBars() {
    this.toolbar.sync();
    this.heatmap.stepBar.hidden = this.view !== "heatmap";
    if (this.overlayBar) this.overlayBar.hidden = this.view !== "overlay";
  }

  rerender() {
    if (this.panels) this.renderView();
  }

  params(entry) {
    return entry.type === "group" ? { group: entry.name } : { run: entry.name };
  }

  panelShell(entry, subtitle) {
    const panel = h("section", { class: "nas-panel", "data-key": key(entry), "data-type": entry.type });
    const head = h("header", {}, panel);
    h("span", { class: "chip", style: { background: entry.color } }, head);
    h("span", { class: "title", text: middleEllipsis(entry.name, this.titleChars || 40), title: entry.name }, head);
    if (subtitle) h("span", { class: "sub", text: subtitle }, head);
    h("span", { class: "spacer" }, head);
    h("a", { class: "nas-csv", href: url("export", { ...this.params(entry), format: "csv" }), download: fileName(["nas", entry.name], "csv"), text: "CSV", title: "Download the data as CSV" }, head);
    const big = this.enlarged === key(entry);
    const enlarge = h("button", { class: "nas-enlarge", text: big ? "\u2921 all" : "\u2922", title: big ? "Back to every panel" : "Enlarge this panel", "aria-label": big ? "back to every panel" : "enlarge" }, head);
    enlarge.addEventListener("click", () => { this.enlarged = big ? null : key(entry); this.saveState(); this.renderView(); });
    const body = h("div", { class: "body" }, panel);
    return { panel, body };
  }

  /** One line under a panel's header with the NAS alarm's status of its runs (alarm_status records), the
   * full text of every run on hover; none without records. */
  alarmStatusLine(panel, data) {
    const status = Object.entries((data && data.alarm_status) || {}).filter(([, st]) => st && st.message);
    if (!status.length) return;
    const shown = status.find(([, st]) => st.state === "fired") || status[0];
    const text = status.length > 1 ? `${shown[0]}: ${shown[1].message}` : shown[1].message;
    const line = h("div", { class: "nas-alarm-status", "data-state": shown[1].state, text, title: status.map(([run, st]) => `${run}: ${st.message}`).join("\n") });
    panel.querySelector("header").after(line);
  }

  /** Columns and panel size for `n` panels: of the column counts whose panels are >= MIN_PANEL_W px wide,
   * the one whose plots cover most of the window (a plot counts up to ASPECT_MIN..ASPECT_MAX width/height),
   * the window's height shared by the rows (plots between MIN_PLOT_H and MAX_PLOT_H px, more rows scroll),
   * or the URL's p.nas.height. Also sets how many characters of a name fit a panel's title. */
  layout(n) {
    const avail = Math.max(320, this.panels.clientWidth || 900);
    const top = this.panels.getBoundingClientRect().top + (window.scrollY || 0);
    const room = (window.innerHeight || 800) - top - 16;
    const maxCols = n <= 1 ? 1 : Math.max(1, Math.min(n, Math.floor((avail + 12) / (MIN_PANEL_W + 12))));
    let best = null;
    for (let cols = 1; cols <= maxCols; cols++) {
      const rows = Math.ceil(Math.max(1, n) / cols);
      const width = Math.floor((avail - (cols - 1) * 12) / cols) - 18;
      const fit = Math.floor((room - (rows - 1) * 12) / rows - PANEL_CHROME);
      const height = this.panelHeight || Math.max(MIN_PLOT_H, Math.min(MAX_PLOT_H, fit));
      const shownRows = Math.min(rows, Math.max(1, Math.floor((room + 12) / (height + PANEL_CHROME + 12))));
      const used = Math.min(width, height * ASPECT_MAX) * Math.min(height, width / ASPECT_MIN) * Math.min(n, cols * shownRows);
      if (!best || used > best.used) best = { cols, width, height, used };
    }
    this.panels.style.gridTemplateColumns = `repeat(${best.cols}, minmax(0, 1fr))`;
    this.titleChars = Math.max(12, Math.floor((best.width - 90) / 7.5));
    return best;
  }



  async renderView() {
    const token = ++this.token;
    const view = this.view;
    this.panels.dataset.ready = "0";
    this.message.replaceChildren();
    const t0 = performance.now();
    if (this.selected.length === 0) {
      this.panels.replaceChildren(h("div", { class: "nas-hint", text: "Select runs or groups on the left to compare them." }));
      this.panels.dataset.ready = "1";
      return;
    }
    try {
      if (view === "heatmap") await this.heatmap.render(token, t0);
      else if (view === "overlay") await this.renderOverlay(token, t0);
      else await this.renderSeries(view, token, t0);
    } catch (e) {
      if (token !== this.token) return;
      this.message.replaceChildren(errorBox("Could not draw this view", e));
    }
    if (token === this.token) {
      this.panels.dataset.view = view;
      this.panels.dataset.ready = "1";
      if (!performance.getEntriesByName("nas-first-plot").length) performance.mark("nas-first-plot");
    }
  }

  /** The `route` response for `params` with the chosen loss tags; a tag that the selection lacks comes back
   * as a null loss, named in data.missing_loss_tags. */
  fetchWithLosses(route, params, version) {
    return getJSON(url(route, { ...params, loss_tag: this.lossTag, loss_tag2: this.loss2Tag }), version);
  }

  /** The `view` response of entry `e` as { entry, data } or { entry, error }. */
  fetchSeries(view, e) {
    return this.fetchWithLosses(view, this.params(e), this.versionOf(e)).then((data) => ({ entry: e, data }), (error) => ({ entry: e, error }));
  }

  /** One note above the panels per loss tag that some entries lack: "TAG is not logged by: a, b". */
  noteMissingLosses(results) {
    const by = new Map();
    for (const r of results) {
      for (const tag of (r.data && r.data.missing_loss_tags) || []) by.set(tag, [...(by.get(tag) || []), r.entry.name]);
    }
    for (const [tag, names] of by) h("div", { class: "nas-note missing-loss-note", text: `${tag} is not logged by: ${names.join(", ")}` }, this.message);
  }

  /** The `view` responses of `entries` on the chosen x axis, with the note on missing losses; null when a
   * newer render has begun meanwhile. */
  async seriesOnXAxis(view, entries, token) {
    const results = await Promise.all(entries.map((e) => this.fetchSeries(view, e)));
    if (token !== this.token) return null;
    this.noteMissingLosses(results);
    this.toolbar.xAxisChoice(results);
    for (const r of results) if (r.data) r.data = onXAxis(r.data, this.xAxis);
    return results;
  }

  async renderSeries(view, token, t0) {
    const results = await this.seriesOnXAxis(view, this.panelEntries(), token);
    if (!results) return;
    const t1 = performance.now();
    const ok = results.filter((r) => r.data);
    const xDomains = domainsByUnit(ok.map((r) => r.data), view === "lines" ? stepExtent : stripeStepExtent);
    this.noteUnits(xDomains);
    const lossRange = extent(...ok.map((r) => lossExtent(r.data) || []));
    const lossDomain = niceLossDomain(lossRange, this.logLoss);
    const shared = this.chartOptions();
    const { width, height } = this.layout(results.length);
    const nodes = [];
    for (const r of results) {
      const what = view === "lines" ? "band = min..max across them" : "median across them";
      const sub = r.entry.type === "group" ? `group of ${r.entry.runs.length} runs, ${what}` : "";
      const { panel, body } = this.panelShell(r.entry, sub);
      if (r.error) {
        body.appendChild(errorBox(`Could not load ${view} for ${r.entry.type} "${r.entry.name}"`, r.error));
      } else if (view === "lines") {
        this.alarmStatusLine(panel, r.data);
        body.appendChild(linePlot(r.data, {
          ...shared,
          width, height, xDomain: xDomains.get(stepUnit(r.data)), lossDomain, hidden: this.hidden, dark: this.dark,
          onToggleLayer: (name) => this.toggleLayer(name),
        }));
      } else {
        this.alarmStatusLine(panel, r.data);
        body.appendChild(stripePlot(r.data, { ...shared, width, xDomain: xDomains.get(stepUnit(r.data)), lossDomain, dark: this.dark, targetHeight: height + 40 }));
      }
      nodes.push(panel);
    }
    // Every panel of a row keeps its plot at one height: a status line in one means a (blank) line in all.
    if (nodes.some((n) => n.querySelector(".nas-alarm-status"))) {
      for (const n of nodes) if (!n.querySelector(".nas-alarm-status")) n.querySelector("header").after(h("div", { class: "nas-alarm-status", text: "\u00a0" }));
    }
    this.panels.replaceChildren(...nodes);
    this.record({ view, panels: results.length, fetchMs: t1 - t0, drawMs: performance.now() - t1 });
  }

  /** Panels whose steps count different units get their own step axes: say so above them. */
  noteUnits(domains) {
    if (domains.size < 2) return;
    const units = [...domains.keys()].join(", ");
    h("div", { class: "nas-note units-note", text: `These runs count steps in different units (${units}): each panel has its own step axis.` }, this.message);
  }

  /** Keep the last 200 render timings (window.nasApp.timings) for tests and benchmarks. */
  record(entry) {
    this.timings.push(entry);
    if (this.timings.length > 200) this.timings.splice(0, this.timings.length - 200);
  }

  /** The overlay view: the `lines` responses of the selection (shared with the line plot's cache), one
   * panel per chosen layer with every entry in its chip colour. */
  async renderOverlay(token, t0) {
    const results = await this.seriesOnXAxis("lines", this.selected, token);
    if (!results) return;
    const t1 = performance.now();
    const ok = results.filter((r) => r.data);
    const failed = results.filter((r) => r.error);
    if (failed.length) this.message.append(...failed.map((r) => errorBox(`Could not load lines for ${r.entry.type} "${r.entry.name}"`, r.error)));
    const layers = overlayLayers(ok.map((r) => r.data));
    const bar = layerChooser(layers, this.overlayLayers, (names) => { this.overlayLayers = names; this.saveState(); this.renderView(); });
    const losses = this.overlayLosses ? this.overlayLosses === "on" : ok.length <= OVERLAY_LOSSES;
    const lossToggle = h("label", { class: "nas-toggle nas-overlay-losses", title: "Draw each entry's test loss (dashed, left axis) in every panel" }, bar);
    const lossBox = h("input", { type: "checkbox" }, lossToggle);
    lossBox.checked = losses;
    h("span", { text: "show losses" }, lossToggle);
    lossBox.addEventListener("change", () => { this.overlayLosses = lossBox.checked ? "on" : "off"; this.saveState(); this.renderView(); });
    if (this.overlayBar) this.overlayBar.replaceWith(bar);
    else this.panels.before(bar);
    this.overlayBar = bar;
    const chosen = this.overlayLayers ? layers.filter((l) => this.overlayLayers.includes(l.name)) : layers;
    const { xDomain, lossDomain } = sharedDomains(ok.map((r) => r.data), this.logLoss);
    const { width, height } = this.layout(chosen.length);
    const xLabel = [...new Set(ok.map((r) => stepUnit(r.data)))].join(" / ") || stepUnit(null);
    const xFormat = ok.length ? ok[0].data.x_format : null;
    const options = { ...this.chartOptions(), width, height, xDomain, lossDomain, dark: this.dark, xLabel, xFormat, losses };
    this.panels.replaceChildren(...chosen.map((layer) => overlayPanel(layer, layerSeries(layer.name, ok), options)));
    if (!chosen.length) this.panels.replaceChildren(h("div", { class: "nas-hint", text: "Choose layers above to overlay them." }));
    this.record({ view: "overlay", panels: chosen.length, fetchMs: t1 - t0, drawMs: performance.now() - t1 });
  }

  toggleLayer(name) {
    if (this.hidden.has(name)) this.hidden.delete(name);
    else this.hidden.add(name);
    this.saveState();
    this.renderView();
  }

  async exportView(format) {
    const theme = themeColors(this.dark);
    const panels = [];
    for (const panel of this.panels.querySelectorAll(".nas-panel")) {
      const chart = panel.querySelector(".nas-chart") || panel.querySelector(".body");
      const maker = chart && chart.exportSvg ? chart.exportSvg : null;
      if (!maker) continue;
      const entry = this.entryByKey.get(panel.dataset.key);
      let title = entry ? entry.name : panel.dataset.title || panel.dataset.key;
      if (this.view === "heatmap" && entry) title += this.heatmap.exportTitle(entry);
      panels.push({ title, chip: entry && entry.color, svg: maker() });
    }
    if (!panels.length) return;
    const cols = Math.min(panels.length, Math.max(1, Math.round(getComputedStyle(this.panels).gridTemplateColumns.split(" ").length)));
    const svg = composeSvg(panels, { columns: cols, background: theme.bg, foreground: theme.fg });
    const name = fileName(["nas", this.view, ...this.selected.map((e) => e.name)], format);
    try {
      if (format === "svg") downloadSvg(svg, name);
      else await downloadPng(svg, name);
    } catch (e) {
      this.message.replaceChildren(errorBox("Export failed", e));
    }
  }
}

/** Mount the tab into `body` and start loading; resolves to the app once the first view is drawn. */
export async function mount(body) {
  const app = new NasApp(body);
  window.nasApp = app;
  await app.start();
  return app;
}
