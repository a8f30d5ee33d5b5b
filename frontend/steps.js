// Steps as the server sends them: a number, or a decimal string beyond +-(2^53 - 1), which a JavaScript
// number cannot hold exactly. A step's identity (===, URL parameter, label) is that value as sent; its
// position on an axis is stepValue(step), a number (approximate beyond 2^53, which is fine for pixels).

/** The step as a number, for positions and distances. */
export function stepValue(step) {
  return typeof step === "string" ? Number(step) : step;
}

/** Exact order of two steps (BigInt where either is a string). */
export function compareSteps(a, b) {
  if (typeof a === "string" || typeof b === "string") {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a - b;
}

/** Sorted union of step arrays, each step once. */
export function unionSteps(arrays) {
  return [...new Set(arrays.flat())].sort(compareSteps);
}

/** The element of `sorted` equal to `step`, else the nearest one by value (undefined when empty). */
export function nearestStep(sorted, step) {
  if (sorted.includes(step)) return step;
  const v = stepValue(step);
  let best = sorted[0];
  for (const s of sorted) if (Math.abs(stepValue(s) - v) < Math.abs(stepValue(best) - v)) best = s;
  return best;
}

/** What the steps of a response count ("epoch", "global step", ...); responses from before units: epochs. */
export function stepUnit(data) {
  return (data && data.step_unit) || "epoch";
}

/** Map unit -> [lo, hi]: the step range shared by the panels whose data count steps in that unit (their
 * x axes line up); `extentOf(data)` is one panel's range or null. Panels of different units never share one:
 * epochs 0..30 beside global steps 0..10000 would squash the epochs into a corner. */
export function domainsByUnit(datas, extentOf) {
  const domains = new Map();
  for (const data of datas) {
    const range = extentOf(data);
    if (!range) continue;
    const unit = stepUnit(data);
    const seen = domains.get(unit);
    domains.set(unit, seen ? [Math.min(seen[0], range[0]), Math.max(seen[1], range[1])] : range);
  }
  return domains;
}
