// The token form: shown when the server has tokens and the tab has none, or when the server
// refused the one it had (401) or refused it a change (403), with the server's own message.
// The token is kept in this tab's sessionStorage only (api.js).

import { setToken } from "../api.js";
import { h, replace, uid } from "../dom.js";

export function render({ main, message, tone = "error", fromServer = true, onToken }) {
  const inputId = uid("token");
  const noteId = uid("token-note");
  const input = h("input", {
    type: "password",
    id: inputId,
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": noteId,
  });
  const status = h(
    "div",
    { class: "notice-slot", "aria-live": "polite" },
    message && h("div", { class: `notice notice-${tone}`, role: tone === "error" ? "alert" : null }, fromServer && "The server said: ", message),
  );
  const button = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  const form = h(
    "form",
    {
      novalidate: true,
      on: {
        submit: async (event) => {
          event.preventDefault();
          const value = input.value.trim();
          if (!value) {
            replace(status, h("div", { class: "notice notice-error", role: "alert" }, "Type or paste a token."));
            return;
          }
          button.disabled = true;
          replace(status, h("div", { class: "notice notice-info" }, "Checking the token…"));
          setToken(value);
          const ok = await onToken();
          // On failure the form was drawn again with the server's message.
          if (!ok && button.isConnected) button.disabled = false;
        },
      },
    },
    h("div", { class: "field" }, h("label", { for: inputId }, "Token"), input),
    h(
      "p",
      { class: "form-note", id: noteId },
      "An admin token may change data; a reader token may only look. It is kept in this browser tab until it closes, and sent only to this server.",
    ),
    button,
  );
  replace(
    main,
    h(
      "section",
      { class: "signin", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in to the console"),
      h("p", { class: "muted" }, "This server needs a token for every request."),
      status,
      form,
    ),
  );
  input.focus();
}
