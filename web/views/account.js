// Deleting the account: the profile's danger zone asks the user to type their username, then the API deletes
// everything of theirs (DELETE /users/me, called again while it answers 202: the work goes on in the background),
// then Cognito deletes the user itself (DeleteUser with their access token), and the farewell page shows, signed out.
import { busy, clearError, field, h, page, showError } from "../dom.js";

// Between the calls while the API is still deleting (photos, albums, links), and how long to keep asking.
const AGAIN_MS = 1000;
const GIVE_UP_MS = 5 * 60 * 1000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// DELETE /users/me until it answers 204 (everything is gone); `progress(text)` says what is happening.
async function deleteData(api, progress) {
  const started = Date.now();
  for (;;) {
    const answer = await api.deleteAccount();
    if (answer === null) return;
    if (Date.now() - started > GIVE_UP_MS) {
      throw new Error("Your photos are still being deleted. Try again in a few minutes to finish deleting your account.");
    }
    progress("Deleting your photos, albums and links…");
    await sleep(AGAIN_MS);
  }
}

export function dangerZone(session) {
  const { api, auth } = session;
  const username = auth.username;
  const typed = h("input", { name: "confirm-delete", autocomplete: "off", spellcheck: "false" });
  const progress = h("p", { class: "hint", id: "delete-progress", "aria-live": "polite", hidden: true });
  const say = (text) => {
    progress.textContent = text;
    progress.hidden = false;
  };
  const form = h(
    "form",
    { class: "card danger-zone-card", id: "delete-account", "aria-labelledby": "delete-account-title" },
    h("h2", { id: "delete-account-title" }, "Delete your account"),
    h("p", {}, "Your photos (the trash too), albums, share links and profile are deleted for good, and you can no longer sign in. Albums others shared with you stay theirs. This cannot be undone."),
    field("Type your username to confirm", typed, `Type “${username}” (or DELETE).`),
    progress,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, "Delete my account")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const answer = typed.value.trim();
    if (answer !== username && answer !== "DELETE") {
      showError(new Error(`To delete your account, type your username (${username}) or DELETE.`));
      typed.focus();
      return;
    }
    busy(form, true);
    try {
      await deleteData(api, say);
      say("Removing your sign-in…");
      // The farewell page, not the sign-in page, once the session is gone (app.js's onChange).
      session.afterSignOut = "#/farewell";
      await auth.deleteUser().catch((error) => {
        throw new Error(`Your photos and profile are deleted, but your sign-in could not be removed (${error.message}). Try again.`);
      });
    } catch (error) {
      session.afterSignOut = null;
      busy(form, false);
      progress.hidden = true;
      showError(error);
    }
  });
  return form;
}

export function renderFarewell() {
  page(
    "Your account is deleted",
    h("p", { id: "farewell" }, "Everything you kept in PhotoSky has been deleted, and you are signed out. Thank you for using PhotoSky."),
    h("p", {}, h("a", { href: "#/signup" }, "Create a new account"), " or ", h("a", { href: "#/signin" }, "sign in with another one"), "."),
  );
}
