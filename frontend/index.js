// Entry point that TensorBoard imports in the plugin iframe (plugin_entry.html?name=nas) and whose
// render() it calls with no arguments. Everything else is served from /data/plugin/nas/static/.
// Every module of the tab is named here, so that the browser asks for them all at once instead of one
// level of imports per round trip (app.js -> chart.js -> timeaxis.js -> steps.js).
import "./static/api.js";
import "./static/chart.js";
import "./static/colors.js";
import "./static/dom.js";
import "./static/export.js";
import "./static/heatmap.js";
import "./static/heatmapview.js";
import "./static/lineplot.js";
import "./static/overlay.js";
import "./static/refresh.js";
import "./static/selection.js";
import "./static/sidebar.js";
import "./static/steps.js";
import "./static/stripeplot.js";
import "./static/tbhost.js";
import "./static/theme.js";
import "./static/timeaxis.js";
import "./static/toolbar.js";
import "./static/urlstate.js";
import { mount } from "./static/app.js";

export function render() {
  return mount(document.body);
}
