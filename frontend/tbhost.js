// TensorBoard's reload (its auto-reload, every 30 s by default, and its reload button) as a dynamic plugin hears
// of it: plugin_lib's channel. The iframe posts "experimental.bootstrap" with a MessagePort to the host page,
// which then sends JSON messages {type, id, payload, error, isReply} on it and waits for a reply to each; after
// every reload of its data it sends "experimental.DataReloaded" (TensorBoard 2.21, tensorboard/components/
// experimental/plugin_lib). Written here rather than imported: plugin_lib is not served to plugins.

const RELOADED = "experimental.DataReloaded";

/** Call `callback()` after each TensorBoard data reload; false when there is no TensorBoard page around. */
export function onDataReloaded(callback) {
  if (window.parent === window) return false;
  const channel = new MessageChannel();
  const port = channel.port1;
  port.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    if (!message || message.isReply) return;
    if (message.type === RELOADED) callback();
    port.postMessage(JSON.stringify({ type: message.type, id: message.id, payload: null, error: null, isReply: true }));
  });
  port.start();
  window.parent.postMessage("experimental.bootstrap", "*", [channel.port2]);
  return true;
}
