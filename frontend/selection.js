// Which entries (groups, runs; see NasApp.entries) the tab shows: on first sight, and in what order.
import { key } from "./sidebar.js";

// The first view shows every group when there are at most this many, else the most recently written runs.
export const FIRST_GROUPS = 4;

/** Every group (a run in no group counting as one) when there are few, else the entries of the runs
 * logged to last (`runs`: the run list's rows, with their `wall_time`). */
export function firstSelection(entries, runs) {
  const groups = entries.filter((e) => e.type === "group");
  const groupOf = new Map(groups.flatMap((g) => g.runs.map((r) => [r, g])));
  const single = entries.filter((e) => e.type === "run" && !groupOf.has(e.name));
  if (groups.length + single.length <= FIRST_GROUPS) return [...groups, ...single];
  const runEntry = new Map(single.map((e) => [e.name, e]));
  const recent = [...runs].sort((a, b) => b.wall_time - a.wall_time).map((r) => groupOf.get(r.run) || runEntry.get(r.run));
  return [...new Set(recent)].slice(0, FIRST_GROUPS);
}

/** `selected` in the order of `entries`, however it was ticked. */
export function inListOrder(selected, entries) {
  const order = new Map(entries.map((e, i) => [key(e), i]));
  return [...selected].sort((a, b) => order.get(key(a)) - order.get(key(b)));
}
