// The heatmap view's state and its step bar: the union of the shown runs' steps, the chosen step (slider,
// play, the URL's p.nas.step), the probe image, the run that each group's panel shows, and the panels drawn
// with heatmap.js. The app (app.js) hands it the panels, the fetches and the URL (see HeatmapView's host).
import { getJSON, url } from "./api.js";
import { themeColors } from "./colors.js";
import { errorBox, h } from "./dom.js";
import { stackSvg } from "./export.js";
import { heatmapGrid, lossCurve } from "./heatmap.js";
import { sharedDomains, stepExtent } from "./chart.js";
import { key } from "./sidebar.js";
import { domainsByUnit, nearestStep, stepUnit, unionSteps } from "./steps.js";

const PLAY_MS = 350;

/** Where a heatmap panel opens, from its `steps` response: { step, why }. */
function openingStep(timeline) {
  const steps = timeline.steps || [];
  if (timeline.overfit_step !== null && timeline.overfit_step !== undefined) return { step: timeline.overfit_step, why: "lowest test loss of this run" };
  if (steps.length) return { step: steps[steps.length - 1], why: "last logged step (no test-loss minimum to open at yet)" };
  return { step: null, why: "" };
}

/** The heatmaps of a panel's run at one step: its `heatmaps` URL. panel: { run, runSteps, probe }. */
function heatUrl(panel, step) {
  return url("heatmaps", { run: panel.run, step: nearestStep(panel.runSteps, step), probe: panel.probe || null });
}

export class HeatmapView {
  /**
   * host: the app, which owns the panels and the URL: panels, message (elements), versions (run -> data
   * version), token (the current render's), dark, smoothing, logLoss, and panelEntries(), panelShell(entry,
   * subtitle), layout(n), fetchWithLosses(route, params, version), noteMissingLosses(results),
   * noteUnits(domains), record(timing), saveState(replace), renderView().
   */
  constructor(host) {
    this.host = host;
    this.steps = [];
    this.stepIndex = null;
    this.stepChosen = false; // a step picked on the slider or in the URL: every heatmap panel shows it
    this.heatPanels = [];
    this.playTimer = null;
    this.probeIndex = 0; // which of the logged probe samples the heatmaps show
    this.heatRuns = new Map(); // group key -> the run of the group that its heatmap panel shows
    this.wantStep = null; // a heatmap step from the URL, applied once its steps are known
    this.stepUnit = stepUnit(null);
    this.stepBar = h("div", { class: "nas-stepbar", hidden: true });
    this.playButton = h("button", { class: "nas-play", text: "\u25b6", title: "Play through the steps", "aria-label": "play" }, this.stepBar);
    this.playButton.addEventListener("click", () => this.togglePlay());
    this.slider = h("input", { class: "nas-step", type: "range", min: 0, max: 0, value: 0, "aria-label": "step" }, this.stepBar);
    this.slider.addEventListener("input", () => this.setStep(+this.slider.value));
    this.slider.addEventListener("change", () => this.host.saveState());
    this.stepLabel = h("span", { class: "nas-step-label" }, this.stepBar);
  }

  /** This view's part of the URL state (urlstate.js FIELDS); `shown`: the heatmap is the view shown. */
  urlState(shown) {
    return {
      step: shown && this.stepChosen && this.steps.length ? String(this.steps[this.stepIndex]) : null,
      probe: this.probeIndex || null,
      heatruns: this.heatRuns.size ? Object.fromEntries(this.heatRuns) : null,
    };
  }

  applyState(state) {
    this.probeIndex = Number.isInteger(state.probe) && state.probe > 0 ? state.probe : 0; // a hand-edited -1 or 1.5: the first
    this.heatRuns = new Map(Object.entries(state.heatruns || {}));
    this.wantStep = state.step === undefined ? null : state.step;
  }

  /** Back to the panels' own opening steps (a URL without a chosen step is shown). */
  forgetStep() {
    this.stopPlay();
    this.stepIndex = null;
    this.stepChosen = false;
  }

  /** The run whose heatmaps the panel of `entry` shows: the run, or the one chosen among the group's. */
  heatRun(entry) {
    if (entry.type === "run") return entry.name;
    const chosen = this.heatRuns.get(key(entry));
    return entry.runs.includes(chosen) ? chosen : entry.runs[0];
  }

  /** What an export's panel title adds for `entry`: its run (of a group) and the step its panel shows (each
   * panel opens at its own run's test-loss minimum until a step is chosen). */
  exportTitle(entry) {
    const run = entry.type === "group" ? `run ${this.heatRun(entry)}, ` : "";
    const shown = this.heatPanels.find((p) => p.panel.dataset.key === key(entry));
    const step = shown ? shown.grid.dataset.step : this.steps[this.stepIndex];
    return `  (${run}${this.stepUnit} ${step})`;
  }

  /** Per panel one light `steps` request (steps, losses, overfit step) and one `heatmaps` request. */
  async render(token, t0) {
    const host = this.host;
    const entries = host.panelEntries();
    const timelines = await Promise.all(entries.map((e) =>
      host.fetchWithLosses("steps", { run: this.heatRun(e) }, host.versions.get(this.heatRun(e))).then((data) => ({ entry: e, data }), (error) => ({ entry: e, error }))));
    if (token !== host.token) return;
    host.noteMissingLosses(timelines);
    const ok = timelines.filter((r) => r.data);
    this.steps = unionSteps(ok.map((r) => r.data.steps));
    const axes = { ...sharedDomains(ok.map((r) => r.data), host.logLoss), xDomains: domainsByUnit(ok.map((r) => r.data), stepExtent), width: host.layout(entries.length).width };
    host.noteUnits(axes.xDomains);
    this.stepUnit = [...new Set(ok.map((r) => stepUnit(r.data)))].join(" / ") || stepUnit(null);
    this.slider.setAttribute("aria-label", this.stepUnit);
    const opening = this.openingSteps(ok);
    const first = await Promise.all(timelines.map((r) => (r.error ? r : this.firstHeatmaps(r, opening.get(r.entry)))));
    if (token !== host.token) return;
    const t1 = performance.now();
    this.probePicker(Math.max(1, ...ok.map((r) => r.data.probes)));
    this.heatPanels = [];
    host.panels.replaceChildren(...first.map((r) => this.heatPanel(r, axes)));
    this.showStep(this.steps[this.stepIndex]);
    host.record({ view: "heatmap", panels: entries.length, fetchMs: t1 - t0, drawMs: performance.now() - t1 });
    this.prefetch(this.stepIndex);
  }

  /** Where each panel of the `steps` responses `ok` opens (entry -> { step, why }), with the slider set.
   * Opened without a chosen step, each panel starts at its own run's test-loss minimum (else its last
   * step) and says so; a step chosen on the slider or in the URL applies to every panel. */
  openingSteps(ok) {
    if (this.wantStep !== null) {
      const at = this.steps.findIndex((s) => String(s) === this.wantStep);
      if (at >= 0) {
        this.stepIndex = at;
        this.stepChosen = true;
      }
      this.wantStep = null;
    }
    if (this.stepIndex !== null && this.stepIndex >= this.steps.length) this.stepChosen = false;
    const own = new Map(ok.map((r) => [r.entry, openingStep(r.data)]));
    if (!this.stepChosen) {
      const first = ok.length ? own.get(ok[0].entry).step : null;
      this.stepIndex = first !== null ? Math.max(0, this.steps.indexOf(nearestStep(this.steps, first))) : this.steps.length - 1;
    }
    this.slider.max = Math.max(0, this.steps.length - 1);
    this.slider.value = this.stepIndex;
    if (!this.stepChosen) return own;
    const chosen = { step: this.steps[this.stepIndex], why: "the step chosen on the slider" };
    return new Map(ok.map((r) => [r.entry, chosen]));
  }

  /** The `heatmaps` of timeline `r`'s run at its opening step `open`: r with { source, heat, open }, or
   * with { error }. */
  firstHeatmaps(r, open) {
    const host = this.host;
    const source = { run: this.heatRun(r.entry), runSteps: r.data.steps, probe: Math.max(0, Math.min(this.probeIndex, r.data.probes - 1)) };
    return getJSON(heatUrl(source, open.step), host.versions.get(source.run)).then((heat) => ({ ...r, source, heat, open }), (error) => ({ ...r, error }));
  }

  /** The panel of one entry: its heatmap grid, why it shows its step, and its loss curve on the shared
   * `axes` ({ lossDomain, xDomains (by step unit), width }); an error box when its data did not load. */
  heatPanel(r, { lossDomain, xDomains, width }) {
    const host = this.host;
    const { panel, body } = host.panelShell(r.entry, r.entry.type === "group" ? "showing run" : "");
    if (r.entry.type === "group") this.heatRunPicker(r.entry, panel.querySelector("header .sub"));
    if (r.error) {
      body.appendChild(errorBox(`Could not load heatmaps for "${this.heatRun(r.entry)}"`, r.error));
      return panel;
    }
    // The server links the probe image of the monitor that logged one (with its monitor= parameter).
    const grid = heatmapGrid(r.heat, { probeUrl: r.heat.probe || null, dark: host.dark, width, run: this.heatRun(r.entry) });
    const why = h("div", { class: "nas-note nas-heat-why", text: `${stepUnit(r.heat)} ${r.heat.step}: ${r.open.why}` }, body);
    const curve = lossCurve(r.data, { smoothing: host.smoothing, logLoss: host.logLoss, width: Math.min(width, 520), height: 120, xDomain: xDomains.get(stepUnit(r.data)), lossDomain, dark: host.dark, step: r.heat.step });
    body.append(grid, curve);
    grid.why = why;
    this.heatPanels.push({ ...r.source, grid, curve, panel });
    body.exportSvg = () => stackSvg([grid.exportSvg(), curve.cloneNode(true)], themeColors(host.dark).bg);
    return panel;
  }

  /** The step bar's choice of probe sample, 1..count (shown when there is a choice). */
  probePicker(count) {
    if (!this.probeSelect) {
      const wrap = h("label", { class: "nas-field nas-probe-field", title: "Which probe image the heatmaps are of" }, this.stepBar);
      h("span", { text: "Probe image" }, wrap);
      this.probeSelect = h("select", { class: "nas-probe" }, wrap);
      this.probeSelect.addEventListener("change", () => { this.probeIndex = +this.probeSelect.value; this.host.saveState(); this.host.renderView(); });
    }
    this.probeSelect.replaceChildren(...Array.from({ length: count }, (_, i) => h("option", { value: i, text: `#${i + 1}` })));
    this.probeSelect.value = String(Math.min(this.probeIndex, count - 1));
    this.probeSelect.parentElement.hidden = count < 2;
  }

  /** A group heatmap panel's choice among the group's runs, in place of its subtitle `sub`. */
  heatRunPicker(entry, sub) {
    const select = h("select", { class: "nas-heat-run", "aria-label": `run of ${entry.name} shown` });
    for (const run of entry.runs) h("option", { value: run, text: run }, select);
    select.value = this.heatRun(entry);
    select.addEventListener("change", () => { this.heatRuns.set(key(entry), select.value); this.host.saveState(); this.host.renderView(); });
    sub.after(select);
  }

  showStep(step) {
    this.stepLabel.textContent = `${this.stepUnit} ${step}  (${this.stepIndex + 1}/${this.steps.length})`;
    this.slider.value = this.stepIndex;
    this.stepBar.dataset.step = step;
  }

  /** Move every heatmap panel to steps[index]; the frame is drawn once all of its data is here. */
  async setStep(index) {
    if (!this.steps.length) return;
    const host = this.host;
    this.stepChosen = true;
    this.stepIndex = Math.max(0, Math.min(this.steps.length - 1, index));
    const step = this.steps[this.stepIndex];
    const token = host.token;
    this.showStep(step);
    const data = await Promise.all(this.heatPanels.map((p) => getJSON(heatUrl(p, step), host.versions.get(p.run)).catch((e) => e)));
    if (token !== host.token || this.steps[this.stepIndex] !== step) return;
    const t = performance.now();
    this.heatPanels.forEach((p, i) => {
      if (data[i] instanceof Error) {
        host.message.replaceChildren(errorBox(`Could not load heatmaps for "${p.run}" at ${this.stepUnit} ${step}`, data[i]));
        return;
      }
      p.grid.update(data[i]);
      p.grid.why.textContent = `${stepUnit(data[i])} ${data[i].step}: the step chosen on the slider`;
      p.curve.setStep(data[i].step);
    });
    host.record({ view: "heatmap-step", step, drawMs: performance.now() - t });
    host.panels.dataset.step = step;
    this.prefetch(this.stepIndex);
  }

  prefetch(index) {
    for (let k = 1; k <= 2; k++) {
      const step = this.steps[(index + k) % this.steps.length];
      for (const p of this.heatPanels) getJSON(heatUrl(p, step), this.host.versions.get(p.run)).catch(() => {});
    }
  }

  togglePlay() {
    if (this.playTimer) this.stopPlay();
    else {
      this.playButton.textContent = "\u275a\u275a";
      this.playButton.classList.add("playing");
      let busy = false;
      this.playTimer = setInterval(async () => {
        if (busy) return;
        busy = true;
        await this.setStep((this.stepIndex + 1) % this.steps.length);
        busy = false;
      }, PLAY_MS);
    }
  }

  stopPlay() {
    clearInterval(this.playTimer);
    this.playTimer = null;
    this.playButton.textContent = "\u25b6";
    this.playButton.classList.remove("playing");
  }
}
