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

/**
 * Runs a query or mutation; resolves to `data`, or rejects with an ApiError. A query answered
 * with errors and partial data is an error too: a view shows what it was asked for, or why not.
 */
export async function gql(query, variables = {}, { quietAuth = false } = {}) {
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json;q=0.9",
  };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
      // The token travels in Authorization only; no cookie is ever needed.
      credentials: "omit",
      cache: "no-store",
    });
  } catch (cause) {
    throw new ApiError("NETWORK", `The server did not answer (${cause.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Said below, with the status.
  }
  const errors = Array.isArray(body?.errors) ? body.errors : [];
  const first = errors[0];
  const code = first?.extensions?.code ?? `HTTP_${response.status}`;
  const message = first?.message ?? `The server answered ${response.status} ${response.statusText}.`;
  if (response.status === 401 || response.status === 403) {
    const error = new AuthError(code, message, { status: response.status, errors });
    if (!quietAuth && authListener) authListener(error);
    throw error;
  }
  if (!body || typeof body !== "object") {
    throw new ApiError("BAD_RESPONSE", message, { status: response.status });
  }
  if (errors.length) {
    throw new ApiError(code, message, {
      status: response.status,
      details: first?.extensions?.details ?? [],
      resolutions: first?.extensions?.resolutions ?? [],
      errors,
    });
  }
  return body.data;
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
