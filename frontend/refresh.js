// When the tab looks for new data: after each TensorBoard reload (tbhost.js) and, between them, every `period`
// seconds (TensorBoard's own default, 30 s; the URL's p.nas.refresh sets another). Refreshes never overlap.
import { onDataReloaded } from "./tbhost.js";

export const DEFAULT_PERIOD_S = 30;
const MIN_PERIOD_S = 0.5;

export class Refresher {
  /** `refresh()`: an async function that fetches what changed and redraws. */
  constructor(refresh, periodS = DEFAULT_PERIOD_S) {
    this.refresh = refresh;
    this.timer = null;
    this.busy = null;
    this.setPeriod(periodS);
  }

  start() {
    onDataReloaded(() => this.now());
    this.schedule();
  }

  setPeriod(periodS) {
    this.periodMs = 1000 * Math.max(MIN_PERIOD_S, Number.isFinite(periodS) && periodS > 0 ? periodS : DEFAULT_PERIOD_S);
    if (this.timer !== null) this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.now(), this.periodMs);
  }

  /** Refresh now (once, if one is running) and restart the period. */
  async now() {
    clearTimeout(this.timer);
    if (!this.busy) {
      this.busy = this.refresh().catch(() => {}).finally(() => { this.busy = null; });
    }
    await this.busy;
    this.schedule();
  }
}
