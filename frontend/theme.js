// Follow TensorBoard's theme: TB toggles `dark-mode` on its own <body>; our iframe is same-origin.

function parentBody() {
  try {
    if (window.parent && window.parent !== window) return window.parent.document.body;
  } catch (e) {
    // A cross-origin parent: no theme to follow.
  }
  return null;
}

export function isDark() {
  const body = parentBody();
  if (body) return body.classList.contains("dark-mode");
  return document.body.classList.contains("dark-mode");
}

/** Call onChange(dark) whenever TensorBoard switches theme; returns a function that stops watching. */
export function watchTheme(onChange) {
  const body = parentBody() || document.body;
  let last = isDark();
  const observer = new MutationObserver(() => {
    const now = isDark();
    if (now !== last) {
      last = now;
      onChange(now);
    }
  });
  observer.observe(body, { attributes: true, attributeFilter: ["class"] });
  return () => observer.disconnect();
}
