// The console's only way to the server: GraphQL over HTTP, POST /graphql, as any dashboard
// would call it (graphql-api.md). The token, when the server has tokens, lives in this tab's
// sessionStorage only: never a cookie (so no other page can make the browser send it), never
// localStorage (so it goes when the tab does).

const ENDPOINT = "/graphql";
const TOKEN_KEY = "group-licensing.token";

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage refused: there is nothing kept to clear.
  }
}

/** A refused or failed request: the server's `extensions.code` and message, as it sent them. */
export class ApiError extends Error {
  constructor(code, message, { status = 0, details = [], resolutions = [], errors = [] } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details;
    this.resolutions = resolutions;
    this.errors = errors;
  }
}

/** 401 (no or wrong token) or 403 (a reader's mutation): the token form takes over. */
export class AuthError extends ApiError {}

let authListener = null;
/** `listener(error)` runs on every 401 or 403, before the caller hears of it. */
export function onAuthFailure(listener) {
  authListener = listener;
}

/** The Authorization header of the token in use, if any. */
function authorization(headers) {
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  return headers;
}

/**
 * The error an answer carries, or null: its JSON body's first `extensions.code` and message
 * (graphql-api.md; the exports refuse with the same body). A 401 or 403 is an AuthError, and the
 * token form hears of it first unless `quietAuth`.
 */
function refusal(response, body, quietAuth) {
  const errors = Array.isArray(body?.errors) ? body.errors : [];
  const first = errors[0];
  const code = first?.extensions?.code ?? `HTTP_${response.status}`;
  const message = first?.message ?? `The server answered ${response.status} ${response.statusText}.`;
  if (response.status === 401 || response.status === 403) {
    const error = new AuthError(code, message, { status: response.status, errors });
    if (!quietAuth && authListener) authListener(error);
    return error;
  }
  if (!body || typeof body !== "object") return new ApiError("BAD_RESPONSE", message, { status: response.status });
  if (errors.length) {
    return new ApiError(code, message, {
      status: response.status,
      details: first?.extensions?.details ?? [],
      resolutions: first?.extensions?.resolutions ?? [],
      errors,
    });
  }
  return null;
}

async function send(url, init) {
  try {
    // The token travels in Authorization only; no cookie is ever needed.
    return await fetch(url, { ...init, credentials: "omit", cache: "no-store" });
  } catch (cause) {
    throw new ApiError("NETWORK", `The server did not answer (${cause.message}).`);
  }
}

async function jsonOf(response) {
  try {
    return await response.json();
  } catch {
    // Said by `refusal`, with the status.
    return null;
  }
}

/**
 * Runs a query or mutation; resolves to `data`, or rejects with an ApiError. A query answered
 * with errors and partial data is an error too: a view shows what it was asked for, or why not.
 */
export async function gql(query, variables = {}, { quietAuth = false } = {}) {
  const headers = authorization({
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json;q=0.9",
  });
  const response = await send(ENDPOINT, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = await jsonOf(response);
  const error = refusal(response, body, quietAuth);
  if (error) throw error;
  return body.data;
}

/**
 * Downloads one of the server's CSV exports (`path`, e.g. "/export/audit-events.csv", with the
 * query parameters `params` whose values are set) and saves it as the file the server names.
 * Fetched here rather than followed as a link so that the token goes in the Authorization
 * header: the server refuses it in a URL, where logs and the browser's history would keep it.
 * The file is held in memory until it is saved. Resolves to `{ name, size }` (bytes); rejects
 * with the server's refusal as an ApiError, before anything is saved.
 */
export async function downloadCsv(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const text = query.toString();
  const response = await send(text ? `${path}?${text}` : path, { headers: authorization({ Accept: "text/csv" }) });
  if (!response.ok) throw refusal(response, await jsonOf(response), false) ?? new ApiError(`HTTP_${response.status}`, response.statusText);
  let blob;
  try {
    blob = await response.blob();
  } catch (cause) {
    // The server ends a download that fails midway with a broken transfer, never a short file.
    throw new ApiError("NETWORK", `The download broke off (${cause.message}); nothing was saved.`);
  }
  const disposition = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "");
  const name = disposition ? disposition[1] : path.split("/").pop();
  const href = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = href;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser reads the blob after this task; a minute is ample, and then the memory goes.
  setTimeout(() => URL.revokeObjectURL(href), 60000);
  return { name, size: blob.size };
}

/**
 * What the token in use may do: "admin", "reader", or an AuthError when the server wants a
 * token and has none or a wrong one. The API has no field for a token's role; a mutation that
 * only asks for `__typename` changes nothing and tells it, since the server refuses a reader's
 * mutation (403) before it runs.
 */
export async function probeRole() {
  try {
    await gql("mutation ConsoleRole { __typename }", {}, { quietAuth: true });
    return "admin";
  } catch (error) {
    if (error instanceof AuthError && error.status === 403) return "reader";
    throw error;
  }
}
