// The x axis as TensorBoard's scalars offer it: Step, Relative (hours since the run's first logged step) or
// Wall (clock time), from the `times` of a `lines`/`stripes` response ({ steps, wall_times }). A pure
// transform of a response: every step in it becomes its position on the chosen axis.
import { stepValue } from "./steps.js";

export const X_AXES = [["step", "Step"], ["relative", "Relative"], ["wall", "Wall"]];

/** Whether a response carries the wall times that Relative and Wall need. */
export function hasTimes(data) {
  return !!(data && data.times && (data.times.steps || []).length && (data.times.wall_times || []).length);
}

/** step -> seconds since the epoch, linear between the logged steps (and held beyond them). */
function clockOf(times) {
  const pairs = times.steps.map((s, i) => [stepValue(s), times.wall_times[i]]).filter(([, t]) => Number.isFinite(t)).sort((a, b) => a[0] - b[0]);
  return (step) => {
    const v = stepValue(step);
    if (!pairs.length) return null;
    if (v <= pairs[0][0]) return pairs[0][1];
    for (let i = 1; i < pairs.length; i++) {
      if (v <= pairs[i][0]) {
        const [s0, t0] = pairs[i - 1];
        const [s1, t1] = pairs[i];
        return t0 + ((v - s0) * (t1 - t0)) / (s1 - s0 || 1);
      }
    }
    return pairs[pairs.length - 1][1];
  };
}

/** `data` with every step replaced by its position on `mode`'s axis (step_unit and x_format say which);
 * the response itself when mode is "step" or it has no wall times. */
export function onXAxis(data, mode) {
  if (mode === "step" || !mode || !hasTimes(data)) return data;
  const clock = clockOf(data.times);
  const t0 = Math.min(...data.times.wall_times.filter(Number.isFinite));
  const at = mode === "relative" ? (s) => (clock(s) - t0) / 3600 : (s) => clock(s);
  const map = (steps) => (steps || []).map(at);
  const curve = (c) => (c ? { ...c, steps: map(c.steps) } : c);
  const out = {
    ...data,
    step_unit: mode === "relative" ? "hours since the first step" : "wall time",
    x_format: mode === "relative" ? "hours" : "clock",
    loss: curve(data.loss), loss2: curve(data.loss2),
    overfit_step: data.overfit_step === null || data.overfit_step === undefined ? data.overfit_step : at(data.overfit_step),
    alarms: (data.alarms || []).map((a) => ({ ...a, step: at(a.step) })),
  };
  if (data.alarm_status) {
    out.alarm_status = Object.fromEntries(Object.entries(data.alarm_status).map(([run, st]) =>
      [run, st && st.onset !== null && st.onset !== undefined ? { ...st, onset: at(st.onset) } : st]));
  }
  if (Array.isArray(data.layers) && data.layers.length && typeof data.layers[0] === "object") {
    out.layers = data.layers.map((l) => ({ ...l, steps: map(l.steps) }));
  }
  if (Array.isArray(data.steps)) out.steps = map(data.steps);
  return out;
}

/** A tick label of an axis in `format` ("hours", "clock"; else the value as it is). */
export function formatX(value, format) {
  if (format === "hours") return `${+value.toFixed(2)}h`;
  if (format === "clock") {
    const d = new Date(value * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return value;
}
