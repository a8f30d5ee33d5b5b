// When the tab looks for new data: after each TensorBoard reload (tbhost.js) and, between them, every `period`
// seconds (TensorBoard's own default, 30 s; the URL's p.nas.refresh sets another). Refreshes never overlap.
import { onDataReloaded } from "./tbhost.js";

export const DEFAULT_PERIOD_S = 30;
const MIN_PERIOD_S = 0.5;
// setTimeout fires at once for delays above 2^31 - 1 ms (about 24.8 days): longer periods wait this long.
const MAX_PERIOD_S = 2 ** 31 / 1000 - 1;

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
    const wanted = Number.isFinite(periodS) && periodS > 0 ? periodS : DEFAULT_PERIOD_S;
    this.periodMs = 1000 * Math.min(MAX_PERIOD_S, Math.max(MIN_PERIOD_S, wanted));
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
