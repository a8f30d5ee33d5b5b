// The run list: grouping regex, filter, select/clear what is shown, groups that fold over their runs. Built once;
// setEntries() redraws the rows and keeps the filter, the folded groups and the scroll position.
import { h, middleEllipsis } from "./dom.js";

// Above this many runs, groups start folded.
const UNFOLDED_RUNS = 40;

export function key(entry) {
  return `${entry.type}:${entry.name}`;
}

/** `entries` in the order the list shows them: each group followed by its runs, then the runs in no group. */
export function displayOrder(entries) {
  const groups = entries.filter((e) => e.type === "group");
  const inGroup = new Set(groups.flatMap((g) => g.runs));
  const byRun = new Map(entries.filter((e) => e.type === "run").map((e) => [e.name, e]));
  const out = [];
  for (const g of groups) out.push(g, ...g.runs.filter((r) => byRun.has(r)).map((r) => byRun.get(r)));
  return [...out, ...entries.filter((e) => e.type === "run" && !inGroup.has(e.name))];
}

/** The server's 400 about a group regex in a person's words: "Not a valid regular expression: missing )
 * in (seed" (RE2's reason and the part it stopped at); the server's whole text stays in the title. */
export function plainRegexError(message) {
  const m = /not a valid regular expression[^:]*:\s*(.*)$/s.exec(message);
  if (!m) return message;
  const cut = m[1].lastIndexOf(": ");
  return cut > 0 ? `Not a valid regular expression: ${m[1].slice(0, cut)} in ${m[1].slice(cut + 2)}` : `Not a valid regular expression: ${m[1]}`;
}

export class Sidebar {
  /** on: {toggle(entry, on), selectMany(entries, on), regex(text)}. */
  constructor(on) {
    this.on = on;
    this.folded = null; // group names; null until the first entries decide the default
    this.el = h("aside", { class: "nas-sidebar" });
    const grouping = h("label", { class: "nas-grouping", title: "Runs whose names this regular expression maps to one name form a group (RE2 syntax)" }, this.el);
    h("span", { text: "Group runs by" }, grouping);
    this.regexInput = h("input", { class: "nas-regex", type: "text", spellcheck: "false", "aria-label": "group regex" }, grouping);
    this.regexInput.addEventListener("change", () => this.on.regex(this.regexInput.value.trim()));
    this.regexError = h("div", { class: "nas-regex-error", role: "alert", hidden: true }, this.el);
    this.regexErrorText = h("span", { class: "text" }, this.regexError);
    const reset = h("button", { class: "nas-regex-reset", text: "use default", title: "Group by the default regular expression" }, this.regexError);
    reset.addEventListener("click", () => {
      this.regexInput.value = "";
      this.on.regex("");
    });
    this.filter = h("input", { class: "nas-filter", type: "search", placeholder: "Filter runs", "aria-label": "Filter runs" }, this.el);
    this.filter.addEventListener("input", () => this.applyFilter());
    const bulk = h("div", { class: "nas-bulk" }, this.el);
    for (const [cls, label, on] of [["nas-select-shown", "Select shown", true], ["nas-clear-shown", "Clear shown", false]]) {
      h("button", { class: cls, text: label, title: `${label.split(" ")[0]} every run and group listed below` }, bulk)
        .addEventListener("click", () => this.on.selectMany(this.shown(), on));
    }
    this.list = h("div", { class: "nas-list" }, this.el);
  }

  /** Show the user's regex `text` (empty: the server's default `fallback`, shown greyed) and an error, if any. */
  setRegex(text, fallback, error) {
    if (document.activeElement !== this.regexInput) this.regexInput.value = text;
    this.regexInput.placeholder = fallback || "";
    this.regexError.hidden = !error;
    this.regexErrorText.textContent = error ? plainRegexError(error) : "";
    this.regexError.title = error || "";
    this.regexInput.classList.toggle("invalid", Boolean(error));
  }

  /** Rows for `entries` (groups, then runs; see NasApp.entries), ticked where `selected` has their key. */
  setEntries(entries, selected) {
    const scroll = this.el.scrollTop;
    const groups = entries.filter((e) => e.type === "group");
    if (this.folded === null) {
      const runs = entries.filter((e) => e.type === "run").length;
      this.folded = new Set(runs > UNFOLDED_RUNS ? groups.map((g) => g.name) : []);
    }
    const inGroup = new Map(groups.flatMap((g) => g.runs.map((r) => [r, g])));
    const byRun = new Map(entries.filter((e) => e.type === "run").map((e) => [e.name, e]));
    const rows = [];
    if (groups.length) rows.push(h("div", { class: "nas-section", text: "Groups (repeats)" }));
    for (const g of groups) {
      rows.push(this.row(g, selected));
      for (const run of g.runs) if (byRun.has(run)) rows.push(this.row(byRun.get(run), selected, g));
    }
    const single = entries.filter((e) => e.type === "run" && !inGroup.has(e.name));
    if (single.length) rows.push(h("div", { class: "nas-section", text: "Runs" }));
    for (const e of single) rows.push(this.row(e, selected));
    this.list.replaceChildren(...rows);
    this.applyFilter();
    this.el.scrollTop = scroll;
  }

  row(entry, selected, group = null) {
    const row = h("label", { class: group ? "nas-entry member" : "nas-entry", "data-key": key(entry), "data-type": entry.type });
    if (group) row.dataset.group = group.name;
    if (entry.type === "group") {
      const fold = h("button", { class: "nas-fold", "aria-label": `fold ${entry.name}` }, row);
      fold.addEventListener("click", (event) => {
        event.preventDefault();
        if (this.folded.has(entry.name)) this.folded.delete(entry.name);
        else this.folded.add(entry.name);
        this.applyFilter();
      });
    }
    const box = h("input", { type: "checkbox" }, row);
    box.checked = selected.has(key(entry));
    h("span", { class: "chip", style: { background: entry.color } }, row);
    h("span", { class: "name", text: middleEllipsis(entry.name, group ? 19 : 22), title: entry.name }, row);
    if (entry.type === "group") h("span", { class: "count", text: `${entry.runs.length}` }, row);
    box.addEventListener("change", () => this.on.toggle(entry, box.checked));
    return row;
  }

  /** Rows matching the filter; a folded group's runs only while the filter names them. */
  applyFilter() {
    const q = this.filter.value.toLowerCase();
    const match = (row) => q === "" || row.dataset.key.toLowerCase().includes(q);
    const rows = [...this.list.querySelectorAll(".nas-entry")];
    const groupShown = new Map();
    for (const row of rows) if (row.dataset.type === "group") groupShown.set(row.dataset.key.slice(6), match(row));
    for (const row of rows) {
      if (row.dataset.type === "group") {
        const name = row.dataset.key.slice(6);
        const anyMember = q !== "" && rows.some((r) => r.dataset.group === name && match(r));
        row.hidden = !(match(row) || anyMember);
        row.classList.toggle("folded", this.folded.has(name));
      } else if (row.dataset.group !== undefined) {
        row.hidden = q === "" ? this.folded.has(row.dataset.group) : !match(row);
      } else {
        row.hidden = !match(row);
      }
    }
    // A section heading stays only while a row under it does.
    let heading = null;
    for (const el of this.list.children) {
      if (el.classList.contains("nas-section")) {
        heading = el;
        heading.hidden = true;
      } else if (heading && !el.hidden) {
        heading.hidden = false;
      }
    }
  }

  /** Keys of the entries whose rows are shown now. */
  shown() {
    return [...this.list.querySelectorAll(".nas-entry")].filter((r) => !r.hidden).map((r) => r.dataset.key);
  }

  /** Tick exactly the rows whose key is in `selected`. */
  check(selected) {
    for (const row of this.list.querySelectorAll(".nas-entry")) row.querySelector("input").checked = selected.has(row.dataset.key);
  }
}
