// Entry point that TensorBoard imports in the plugin iframe (plugin_entry.html?name=nas) and whose
// render() it calls with no arguments. Everything else is served from /data/plugin/nas/static/.
import { mount } from "./static/app.js";

export function render() {
  return mount(document.body);
}
