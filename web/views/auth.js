// Sign in, sign up, confirm: Cognito's flows (../auth.js), then the profile or the gallery.
import { ApiError } from "../api.js";
import { announce, busy, clearError, field, h, page, showError } from "../dom.js";

export function renderSignIn(session, { query }) {
  const { auth } = session;
  const username = h("input", { name: "username", autocomplete: "username", required: true, value: query.get("username") || "" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    field("Username", username),
    field("Password", password),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
    h("p", {}, "New here? ", h("a", { href: "#/signup" }, "Create an account")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    try {
      await auth.signIn(username.value.trim(), password.value);
      announce(`Signed in as ${auth.username}.`);
      await landAfterSignIn(session);
    } catch (error) {
      busy(form, false);
      if (error.code === "UserNotConfirmedException") {
        session.go(`#/confirm?username=${encodeURIComponent(username.value.trim())}`);
        announce("Your account is not confirmed yet. Enter your confirmation code.");
        return;
      }
      showError(error);
      password.focus();
    }
  });
  page("Sign in", form);
  if (query.get("confirmed")) announce("Account confirmed. You can sign in now.");
}

// A first sign-in has no profile yet: offer to create one; otherwise the gallery.
async function landAfterSignIn(session) {
  try {
    await session.api.getProfile();
    session.go("#/gallery");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) session.go("#/profile?new=1");
    else throw error;
  }
}

export function renderSignUp(session) {
  // The username and password rules are the user pool's (Cognito answers with its own message), not the API's.
  const username = h("input", { name: "username", autocomplete: "username", required: true, maxlength: "128" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "new-password",
    required: true,
    minlength: "10",
  });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    field("Username", username),
    field("Email", email, "We send your confirmation code here."),
    field("Password", password, "At least 10 characters, with upper- and lower-case letters and a digit."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create account")),
    h("p", {}, "Already have an account? ", h("a", { href: "#/signin" }, "Sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    const name = username.value.trim();
    try {
      const result = await session.auth.signUp(name, password.value, email.value.trim());
      if (result.confirmed) {
        session.go(`#/signin?username=${encodeURIComponent(name)}&confirmed=1`);
        return;
      }
      const where = result.delivery && result.delivery.Destination ? ` to ${result.delivery.Destination}` : "";
      session.go(`#/confirm?username=${encodeURIComponent(name)}&sent=${encodeURIComponent(where)}`);
    } catch (error) {
      busy(form, false);
      showError(error);
    }
  });
  page("Create an account", form);
}

export function renderConfirm(session, { query }) {
  const username = h("input", { name: "username", autocomplete: "username", required: true, value: query.get("username") || "" });
  const code = h("input", {
    name: "code",
    autocomplete: "one-time-code",
    inputmode: "numeric",
    required: true,
    maxlength: "64",
  });
  const sent = query.get("sent");
  const notes = [h("p", {}, `We sent a confirmation code${sent || " by email"}. Enter it to finish creating your account.`)];
  if (session.config.environment === "local") {
    notes.push(
      h(
        "p",
        { class: "note", id: "local-confirm-note" },
        "Dev stack: the emulated Cognito sends no email and accepts any code here, so type any code (for example 123456). " +
          "In AWS the real code arrives by email and a wrong code is refused.",
      ),
    );
  }
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    ...notes,
    field("Username", username),
    field("Confirmation code", code),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Confirm account")),
    h("p", {}, h("a", { href: "#/signin" }, "Back to sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    try {
      await session.auth.confirmSignUp(username.value.trim(), code.value.trim());
      session.go(`#/signin?username=${encodeURIComponent(username.value.trim())}&confirmed=1`);
    } catch (error) {
      busy(form, false);
      showError(error);
      code.focus();
    }
  });
  page("Confirm your account", form);
}
