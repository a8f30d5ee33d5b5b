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

/** Use TensorBoard's own Roboto: copy the parent page's @font-face rules (their URLs point at files
 *  TensorBoard serves) into this iframe, whose CSP allows inline styles but no other origin. */
export function adoptParentFonts() {
  const body = parentBody();
  if (!body) return 0;
  const rules = [];
  for (const sheet of body.ownerDocument.styleSheets) {
    let list;
    try {
      list = sheet.cssRules;
    } catch (e) {
      continue;
    }
    for (const rule of list) if (rule.type === 5 /* CSSRule.FONT_FACE_RULE */) rules.push(rule.cssText);
  }
  if (rules.length) {
    const style = document.createElement("style");
    style.textContent = rules.join("\n");
    document.head.appendChild(style);
  }
  return rules.length;
}
