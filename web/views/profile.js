// The caller's profile: usage against quota (the trash's share too), the edit form and the account's danger zone
// (./account.js), or the form that creates the profile.
import { ApiError } from "../api.js";
import { announce, busy, clearError, field, formatBytes, formatDate, h, page, showError } from "../dom.js";
import { dangerZone } from "./account.js";

export async function renderProfile(session, { ticket, query }) {
  const { api, limits } = session;
  let profile = null;
  try {
    profile = await api.getProfile();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  if (!session.isCurrent(ticket)) return;
  if (profile === null) {
    renderCreateProfile(session, query.get("new") === "1");
    return;
  }
  const usage = h(
    "section",
    { class: "card", "aria-labelledby": "usage-title" },
    h("h2", { id: "usage-title" }, "Usage"),
    usageMeter("Photos", profile.usage.photos, profile.quota.photos, (n) => n.toLocaleString(), "usage-photos"),
    usageMeter("Storage", profile.usage.bytes, profile.quota.bytes, formatBytes, "usage-bytes"),
    trashUsage(profile.usage.trash),
  );
  const displayName = h("input", { name: "display_name", required: true, maxlength: limits.display_name_max, value: profile.display_name });
  const bio = h("textarea", { name: "bio", maxlength: limits.bio_max, rows: "4" }, profile.bio || "");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "edit-profile-title" },
    h("h2", { id: "edit-profile-title" }, "Edit profile"),
    field("Display name", displayName),
    field("Bio", bio, `Up to ${limits.bio_max} characters. Visible to other signed-in users.`),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save profile")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    try {
      const updated = await api.updateProfile({ display_name: displayName.value, bio: bio.value });
      displayName.value = updated.display_name;
      bio.value = updated.bio || "";
      announce("Profile saved.");
    } catch (error) {
      showError(error);
    } finally {
      busy(form, false);
    }
  });
  page(
    "Your profile",
    h("p", { class: "muted" }, `Member since ${formatDate(profile.created_at)}`),
    h("div", { class: "columns" }, usage, form),
    dangerZone(session),
  );
}

// Trashed photos still count against the quota until the trash is emptied (or they are purged).
function trashUsage(trash) {
  if (!trash) return null;
  if (trash.photos === 0) return h("p", { class: "hint", id: "usage-trash" }, "The trash is empty.");
  const photos = trash.photos === 1 ? "1 photo" : `${trash.photos.toLocaleString()} photos`;
  return h(
    "p",
    { class: "hint", id: "usage-trash" },
    `${photos} (${formatBytes(trash.bytes)}) in the trash, counting against your quota until emptied. `,
    h("a", { href: "#/trash" }, "Open the trash"),
  );
}

function usageMeter(label, used, quota, format, id) {
  return h(
    "div",
    { class: "usage" },
    h("label", { for: id }, label),
    h("meter", { id, min: "0", max: String(quota), value: String(used), high: String(quota * 0.9) }),
    h("p", { class: "hint", id: `${id}-text` }, `${format(used)} of ${format(quota)}`),
  );
}

function renderCreateProfile(session, isNew) {
  const { api, limits } = session;
  const displayName = h("input", { name: "display_name", required: true, maxlength: limits.display_name_max, autocomplete: "nickname" });
  const bio = h("textarea", { name: "bio", maxlength: limits.bio_max, rows: "4" });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    h("p", {}, isNew ? "Welcome! Create your profile to start uploading photos." : "You have no profile yet."),
    field("Display name", displayName, `How other people see you (1–${limits.display_name_max} characters).`),
    field("Bio (optional)", bio),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create profile")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    const ticket = session.renders;
    try {
      const body = { display_name: displayName.value };
      if (bio.value.trim()) body.bio = bio.value;
      await api.createProfile(body);
      announce("Profile created.");
      if (session.isCurrent(ticket)) session.go("#/profile"); // unless the user has moved on meanwhile
    } catch (error) {
      busy(form, false);
      if (error instanceof ApiError && error.status === 409) {
        session.go("#/profile"); // created meanwhile (another tab): show it
        return;
      }
      showError(error);
    }
  });
  // Without a profile the account may still be deleted (or its deletion finished, if Cognito's step failed).
  page("Create your profile", form, isNew ? null : dangerZone(session));
}
