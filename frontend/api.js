// JSON from the plugin's routes (relative to the iframe's base href plugin/nas/), cached per URL and data version.

export class ApiError extends Error {
  constructor(message, status, parameter) {
    super(message);
    this.status = status;
    this.parameter = parameter || null;
  }
}

const cache = new Map();
// Enough for every heatmap step of a few runs; the oldest responses are dropped first.
const MAX_CACHED = 600;

/** "route?k=v&..." with undefined/null/"" parameters left out. */
export function url(route, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const qs = q.toString();
  return qs ? `${route}?${qs}` : route;
}

/** The parsed JSON of `path`, fetched now (not cached). */
export async function fetchJSON(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new ApiError(`cannot reach the TensorBoard server (${e.message})`, 0);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const what = body && body.error ? body.error : text.slice(0, 200) || response.statusText;
    throw new ApiError(`${path.split("?")[0]}: ${response.status} ${what}`, response.status, body && body.parameter);
  }
  if (body === null) throw new ApiError(`${path.split("?")[0]}: the server sent no JSON`, response.status);
  return body;
}

/** The parsed JSON of `path`; repeated calls with one `version` (the runs' data versions that the route's
 * answer depends on, see NasApp.versionOf) share one request, a new version fetches anew. Failed requests
 * are not cached. */
export function getJSON(path, version = "") {
  const id = version ? `${path}\n${version}` : path;
  let p = cache.get(id);
  if (p) {
    cache.delete(id); // refresh its place in the eviction order
  } else {
    p = fetchJSON(path);
    p.catch(() => cache.delete(id));
  }
  cache.set(id, p);
  while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value);
  return p;
}

export function clearCache() {
  cache.clear();
}
