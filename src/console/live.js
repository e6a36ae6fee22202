// Live updates: GraphQL subscriptions over a WebSocket on /graphql, in the graphql-transport-ws
// protocol (the graphql-ws library's) that the server speaks. Written here rather than taken
// from graphql-ws because the console has no third-party code and no build step; it needs only
// the client's half: connection_init (with the token: browsers cannot set headers on a
// WebSocket), subscribe, next, error, complete, ping and pong. Queries and mutations stay on
// POST /graphql (api.js), which is all the server lets through the socket anyway.
//
// One connection carries every subscription of the page: it opens with the first and closes
// with the last, so a view that unsubscribes when it is left leaves no socket behind. Nothing
// reconnects by itself: a subscription that stops for any reason but its own `stop` is told
// once (`end`), and its view goes back to polling, which always works.

import { ApiError, token } from "./api.js";

const PROTOCOL = "graphql-transport-ws";
/** How long the server may take to accept connection_init before the page stops waiting. */
const ACK_TIMEOUT_MS = 5000;

/** The connection in use: `{ ws, acked, timer }`, or null. */
let socket = null;
/** Subscriptions by id: `{ payload, next, end, sent }`. */
const subscriptions = new Map();
let lastId = 0;

function endpoint() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
}

function send(connection, message) {
  connection.ws.send(JSON.stringify(message));
}

/** The first GraphQL error of a payload as an ApiError, as api.js makes them from HTTP answers. */
function graphqlError(errors) {
  const first = Array.isArray(errors) ? errors[0] : null;
  return new ApiError(first?.extensions?.code ?? "SUBSCRIPTION_ERROR", first?.message ?? "The subscription failed.", { errors: errors ?? [] });
}

/** Why the socket closed, from its close code and the reason the server gave with it. */
function closeError(event) {
  const reason = event.reason ? `: ${event.reason}` : "";
  return new ApiError(`WEBSOCKET_${event.code}`, `The live connection closed (${event.code}${reason}).`);
}

/** Ends every subscription with `error` and forgets the connection. */
function fail(connection, error) {
  if (socket !== connection) return;
  socket = null;
  clearTimeout(connection.timer);
  try {
    connection.ws.close();
  } catch {
    // Already closed: nothing to undo.
  }
  const ended = [...subscriptions.values()];
  subscriptions.clear();
  for (const subscription of ended) subscription.end(error);
}

function open() {
  let ws;
  try {
    ws = new WebSocket(endpoint(), PROTOCOL);
  } catch (cause) {
    return { error: new ApiError("WEBSOCKET_UNAVAILABLE", `No live connection could be opened (${cause.message}).`) };
  }
  const connection = { ws, acked: false, timer: null };
  socket = connection;
  connection.timer = setTimeout(() => {
    if (!connection.acked) fail(connection, new ApiError("WEBSOCKET_TIMEOUT", "The server did not accept the live connection in time."));
  }, ACK_TIMEOUT_MS);
  ws.addEventListener("open", () => {
    const bearer = token();
    send(connection, { type: "connection_init", payload: bearer ? { Authorization: `Bearer ${bearer}` } : {} });
  });
  ws.addEventListener("message", (event) => receive(connection, event.data));
  // An `error` event is always followed by `close`, which says the rest.
  ws.addEventListener("close", (event) => fail(connection, closeError(event)));
  return { connection };
}

function receive(connection, text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    fail(connection, new ApiError("BAD_RESPONSE", "The live connection sent a message that is not JSON."));
    return;
  }
  const subscription = message.id !== undefined ? subscriptions.get(message.id) : null;
  switch (message.type) {
    case "connection_ack":
      connection.acked = true;
      clearTimeout(connection.timer);
      for (const [id, s] of subscriptions) {
        if (!s.sent) {
          s.sent = true;
          send(connection, { id, type: "subscribe", payload: s.payload });
        }
      }
      return;
    case "ping":
      send(connection, { type: "pong" });
      return;
    case "next":
      if (!subscription) return;
      // The server sends a stream's error (a lagging subscriber, a token gone) as a result with
      // errors, then completes it: for the view, the subscription ends there.
      if (message.payload?.errors?.length) {
        subscriptions.delete(message.id);
        subscription.end(graphqlError(message.payload.errors));
        closeIfIdle();
      } else {
        subscription.next(message.payload?.data ?? null);
      }
      return;
    case "error":
      if (!subscription) return;
      subscriptions.delete(message.id);
      subscription.end(graphqlError(message.payload));
      closeIfIdle();
      return;
    case "complete":
      if (!subscription) return;
      subscriptions.delete(message.id);
      subscription.end(new ApiError("SUBSCRIPTION_COMPLETE", "The server ended the subscription."));
      closeIfIdle();
      return;
    default:
    // pong, and whatever a later server adds: nothing to do.
  }
}

function closeIfIdle() {
  if (subscriptions.size > 0 || !socket) return;
  const connection = socket;
  socket = null;
  clearTimeout(connection.timer);
  connection.ws.close(1000, "no subscription left");
}

/**
 * Subscribes to `query` with `variables`. `next(data)` runs for each result; `end(error)` runs
 * once if the subscription stops without `stop` being called (the socket could not open, was
 * refused or closed, the server ended it or sent an error). Returns `stop()`, which unsubscribes
 * and, with the page's last subscription, closes the socket. `end` may run before this returns
 * (no WebSocket at all): the caller must be ready for it.
 */
export function subscribe(query, variables, { next, end }) {
  lastId += 1;
  const id = String(lastId);
  const subscription = { payload: { query, variables }, next, end, sent: false };
  subscriptions.set(id, subscription);
  if (!socket) {
    const { error } = open();
    if (error) {
      subscriptions.delete(id);
      end(error);
      return () => {};
    }
  } else if (socket.acked) {
    subscription.sent = true;
    send(socket, { id, type: "subscribe", payload: subscription.payload });
  }
  return () => {
    if (!subscriptions.delete(id)) return;
    if (subscription.sent && socket?.acked && socket.ws.readyState === WebSocket.OPEN) send(socket, { id, type: "complete" });
    closeIfIdle();
  };
}
