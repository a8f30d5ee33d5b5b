// The toolbar above the panels: the view switcher, the two loss menus, TensorBoard's chart controls (loss
// smoothing, x axis, NAS axis fitted to the data, log loss axis), the exports and the reload button. It
// keeps no state of its own: it shows the app's (sync) and reports each change through its callbacks.
import { h } from "./dom.js";
import { X_AXES, hasTimes } from "./timeaxis.js";

export class Toolbar {
  /**
   * parent: the element the bar goes in. views: [[id, label]]. state(): the app's { view, lossTag,
   * loss2Tag, smoothing, xAxis, fitY, logLoss }. on: { view(id), change(patch, save) (apply `patch` to
   * the state; save: record it in the URL, false / "replace" / true = a new history entry), exportView(format), reload() }.
   */
  constructor(parent, { views, state, on }) {
    this.state = state;
    this.on = on;
    const bar = h("div", { class: "nas-toolbar" }, parent);
    const switcher = h("div", { class: "nas-views", role: "tablist" }, bar);
    this.viewButtons = views.map(([id, label]) => {
      const b = h("button", { class: "nas-view-btn", "data-view": id, role: "tab", text: label }, switcher);
      b.addEventListener("click", () => on.view(id));
      return b;
    });
    this.lossSelect = this.tagSelect(bar, "Loss", "nas-loss", "default", "lossTag");
    this.loss2Select = this.tagSelect(bar, "2nd loss", "nas-loss2", "none", "loss2Tag");
    this.syncControls = this.chartControls(bar);
    h("span", { class: "spacer" }, bar);
    for (const [format, label] of [["png", "PNG"], ["svg", "SVG"]]) {
      const b = h("button", { class: "nas-export", "data-format": format, text: label, title: `Download this view as ${label}` }, bar);
      b.addEventListener("click", () => on.exportView(format));
    }
    const reload = h("button", { class: "nas-reload", text: "\u21bb", title: "Reload data from the log directory" }, bar);
    reload.addEventListener("click", () => on.reload());
    this.sync();
  }

  /** A loss menu: "" (`none`'s label) and the tags that fillTags puts in; sets the state's `field`. */
  tagSelect(parent, label, cls, none, field) {
    const wrap = h("label", { class: "nas-field" }, parent);
    h("span", { text: label }, wrap);
    const select = h("select", { class: cls }, wrap);
    h("option", { value: "", text: none }, select);
    select.addEventListener("change", () => this.on.change({ [field]: select.value }, true));
    return select;
  }

  /** The chart controls, TensorBoard's: loss smoothing, x axis, NAS axis fitted to the data, log loss
   * axis. Returns a function that shows the current state in them. */
  chartControls(bar) {
    const wrap = h("label", { class: "nas-field", title: "Smoothing of the loss curves: TensorBoard's debiased exponential moving average (the raw curve stays faint)" }, bar);
    h("span", { text: "Smoothing" }, wrap);
    const slider = h("input", { class: "nas-smoothing", type: "range", min: 0, max: 0.99, step: 0.01, "aria-label": "smoothing" }, wrap);
    const value = h("span", { class: "nas-smoothing-value" }, wrap);
    // The slider redraws as it moves and records its last place in the URL in place (no history entry per move).
    slider.addEventListener("input", () => { value.textContent = slider.value; this.on.change({ smoothing: +slider.value }, false); });
    slider.addEventListener("change", () => this.on.change({}, "replace"));
    // A toggle's change sets its field and the fields of `also`.
    const toggle = (cls, label, title, field, also = {}) => {
      const t = h("label", { class: `nas-toggle ${cls}`, title }, bar);
      const box = h("input", { type: "checkbox" }, t);
      h("span", { text: label }, t);
      box.addEventListener("change", () => this.on.change({ [field]: box.checked, ...also }, true));
      return () => { box.checked = this.state()[field]; };
    };
    const axis = h("label", { class: "nas-field nas-xaxis-field" }, bar);
    h("span", { text: "X axis" }, axis);
    this.xSelect = h("select", { class: "nas-xaxis", "aria-label": "x axis" }, axis);
    for (const [id, text] of X_AXES) h("option", { value: id, text }, this.xSelect);
    this.xSelect.addEventListener("change", () => this.on.change({ xAxis: this.xSelect.value }, true));
    // A zoom dragged on a plot sets the NAS axis by hand; ticking or unticking the box asks for the fitted
    // or the whole axis, so it lets go of the zoom.
    const syncFit = toggle("nas-fit-y", "Fit NAS axis", "Fit the NAS axis to the values shown instead of 0..1 (in place of a dragged zoom)", "fitY", { yZoom: null });
    const syncLog = toggle("nas-log-loss", "Log loss", "Show the loss axis in log scale", "logLoss");
    return () => {
      const state = this.state();
      slider.value = state.smoothing;
      this.xSelect.value = state.xAxis;
      value.textContent = String(state.smoothing);
      syncFit();
      syncLog();
    };
  }

  /** Show the state: the active view's button and the chart controls. */
  sync() {
    const view = this.state().view;
    for (const b of this.viewButtons) {
      const on = b.dataset.view === view;
      b.classList.toggle("active", on);
      b.setAttribute("aria-selected", String(on));
    }
    this.syncControls();
  }

  /** Show the state's loss tags in the loss menus (after a URL put others in it). */
  syncLosses() {
    const state = this.state();
    this.lossSelect.value = state.lossTag;
    this.loss2Select.value = state.loss2Tag;
  }

  /** The loss menus' choices: `tags` (the selection's scalar tags), and a chosen tag that they lack. */
  fillTags(tags) {
    const state = this.state();
    for (const [select, value] of [[this.lossSelect, state.lossTag], [this.loss2Select, state.loss2Tag]]) {
      const all = value && !tags.includes(value) ? [...tags, value].sort() : tags;
      select.replaceChildren(select.options[0], ...all.map((t) => h("option", { value: t, text: t })));
      select.value = value;
    }
  }

  /** The x axis menu: Relative and Wall need the wall times of the responses (`results`); without them
   * it is disabled and says why. */
  xAxisChoice(results) {
    const timed = results.some((r) => hasTimes(r.data));
    this.xSelect.disabled = !timed;
    this.xSelect.parentElement.title = timed ? "Steps, hours since the first logged step, or clock time"
      : "Relative and Wall need the wall times of the logged steps, which these runs' answers lack";
  }
}
