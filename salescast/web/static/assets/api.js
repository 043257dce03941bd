// The API client: one place that adds the key, reads problem details and names what went wrong in
// words a person can act on (never a stack trace).

const KEY_STORAGE = "salescast.apiKey";

export class ApiError extends Error {
  /**
   * @param {string} kind unreachable | auth | scope | no-model | not-found | invalid | limited | server
   * @param {string} message what to show
   * @param {number} status HTTP status (0 when the API could not be reached)
   */
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export class Api {
  constructor(baseUrl) {
    this.base = `${baseUrl.replace(/\/$/, "")}/api/v1`;
    this.origin = baseUrl || window.location.origin;
  }

  get(path, query = {}) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    const search = params.toString();
    return this.request("GET", search ? `${path}?${search}` : path);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch {
      throw new ApiError("unreachable", `Cannot reach the API at ${this.origin}. Is the server running?`, 0);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (response.ok) return payload;
    throw problemError(response.status, payload);
  }
}

function problemError(status, problem) {
  const detail = problem && typeof problem.detail === "string" ? problem.detail : "";
  if (status === 401) {
    return new ApiError("auth", `The API rejected the key: ${detail || "unknown API key"}.`, status);
  }
  if (status === 403) {
    return new ApiError("scope", `This key may not do that: ${detail}.`, status);
  }
  if (status === 503 && /no production version/.test(detail)) {
    return new ApiError("no-model", "No model is in production yet: run `salescast pipeline run` first.", status);
  }
  if (status === 404) return new ApiError("not-found", detail || "Not found.", status);
  if (status === 422 || status === 400 || status === 409) {
    return new ApiError("invalid", detail || "The request was refused.", status);
  }
  if (status === 429) return new ApiError("limited", "Too many requests: wait a moment and try again.", status);
  const id = problem && problem.request_id ? ` (request id ${problem.request_id})` : "";
  return new ApiError("server", `The API failed to answer${id}${detail ? `: ${detail}` : ""}.`, status);
}
