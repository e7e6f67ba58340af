// One photo: the large preview and metadata, the favourite star, the edit form (title, description, tags; a stale
// version is explained and the latest copy shown) and "Move to trash", after a confirmation. A photo in the trash
// says until when it is kept, and offers restore and delete forever instead. A change made elsewhere meanwhile is
// announced by the live socket (./updates.js).
import { ApiError } from "../api.js";
import { announce, busy, clearError, confirmAction, field, formatBytes, formatDate, formatDay, h, page, photoName, showError } from "../dom.js";
import { copyLink, favoriteToggle } from "./tiles.js";
import { deleteForever, restoreOne, retention } from "./trash.js";
import { followPhoto } from "./updates.js";

export function renderPhoto(session, { ticket, params }) {
  return showPhoto(session, ticket, params[0]);
}

function parseTags(text) {
  return text
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
}

async function showPhoto(session, ticket, photoId, notice) {
  const { api, limits } = session;
  const photo = await api.getPhoto(photoId);
  if (!session.isCurrent(ticket)) return;
  const name = photoName(photo);
  let visual;
  if (photo.status === "READY" && photo.urls && photo.urls.large) {
    visual = h("img", { src: photo.urls.large, alt: name, class: "large", id: "large-preview" });
  } else if (photo.status === "REJECTED" && photo.duplicate_of) {
    visual = h("p", { class: "placeholder rejected", id: "duplicate-note" }, "Already in your library: this upload is a copy of a photo you have. ", copyLink(photo.duplicate_of, "See the original"));
  } else if (photo.status === "REJECTED") {
    visual = h("p", { class: "placeholder rejected" }, `Rejected: ${photo.rejection_reason || "not a supported image"}`);
  } else {
    visual = h("p", { class: "placeholder" }, "Still processing…");
  }
  const size = photo.width && photo.height ? `${photo.width} × ${photo.height} px` : "—";
  const facts = [
    ["Status", photo.status],
    ["File", photo.filename],
    ["Type", photo.content_type],
    ["Size", formatBytes(photo.size_bytes)],
    ["Dimensions", size],
    ["Taken", formatDate(photo.taken_at)],
    ["Uploaded", formatDate(photo.created_at)],
    ["Updated", formatDate(photo.updated_at)],
  ];
  if (photo.trashed_at) facts.push(["Deleted", formatDate(photo.trashed_at)]);
  const metadata = h("dl", { class: "facts" }, ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  const star = photo.status === "READY" && !photo.trashed_at ? h("p", { class: "star" }, favoriteToggle(api, photo, (fresh) => announce(fresh.favorite ? `${name} is a favourite.` : `${name} is no longer a favourite.`), { id: "favorite-photo" })) : null;
  const tagLinks = photo.tags.length
    ? h("ul", { class: "tags", "aria-label": "Photo tags" }, ...photo.tags.map((tag) => h("li", {}, h("a", { href: `#/gallery?tag=${encodeURIComponent(tag)}` }, tag))))
    : h("p", { class: "muted" }, "No tags.");

  const title = h("input", { name: "title", maxlength: limits.title_max, value: photo.title || "" });
  const description = h("textarea", { name: "description", rows: "3", maxlength: limits.description_max }, photo.description || "");
  const tags = h("input", { name: "tags", value: photo.tags.join(", ") });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "edit-title" },
    h("h2", { id: "edit-title" }, "Details"),
    field("Title", title),
    field("Description", description),
    field("Tags", tags, `Separate tags with commas, e.g. beach, summer 2026 (up to ${limits.tags_max} tags of ${limits.tag_max} characters).`),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save changes")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const changes = { version: photo.version };
    if (title.value !== (photo.title || "")) changes.title = title.value;
    if (description.value !== (photo.description || "")) changes.description = description.value;
    const newTags = parseTags(tags.value);
    if (newTags.join(",") !== photo.tags.join(",")) changes.tags = newTags;
    if (Object.keys(changes).length === 1) {
      announce("Nothing to save.");
      return;
    }
    busy(form, true);
    try {
      await api.updatePhoto(photo.photo_id, changes);
      await showPhoto(session, session.nextTicket(), photo.photo_id, "Changes saved.");
    } catch (error) {
      busy(form, false);
      if (error instanceof ApiError && error.status === 409) {
        await showPhoto(session, session.nextTicket(), photo.photo_id);
        showError(new Error("This photo was changed somewhere else (another tab or device), so your edits were not saved. The latest version is shown: make your changes again."));
        return;
      }
      showError(error);
    }
  });

  const back = photo.trashed_at ? h("a", { href: "#/trash" }, "← Trash") : h("a", { href: "#/gallery" }, "← All photos");
  const side = photo.trashed_at
    ? [h("section", { class: "card", "aria-labelledby": "about-title" }, h("h2", { id: "about-title" }, "About"), metadata, tagLinks), trashedCard(session, photo)]
    : [h("section", { class: "card", "aria-labelledby": "about-title" }, h("h2", { id: "about-title" }, "About"), star, metadata, tagLinks), form, h("div", { class: "card danger-zone" }, trashButton(session, photo))];
  const notices = h("div", {});
  page(
    name,
    h("p", {}, back),
    notices,
    h("div", { class: "photo-view" }, h("figure", {}, visual, photo.description ? h("figcaption", {}, photo.description) : null), h("div", { class: "side" }, ...side)),
  );
  if (notice) announce(notice);
  followPhoto(session, ticket, photo, {
    slot: notices,
    redraw: (text) => showPhoto(session, session.nextTicket(), photo.photo_id, text).catch(showError),
  });
}

// A READY photo goes to the trash; one still processing, or rejected, has nothing to keep and is deleted for good.
function trashButton(session, photo) {
  const name = photoName(photo);
  const toTrash = photo.status === "READY";
  const button = h("button", { type: "button", class: "danger", id: "delete-photo" }, toTrash ? "Move to trash" : "Delete photo");
  button.addEventListener("click", async () => {
    const text = toTrash
      ? `“${name}” leaves your library, albums and share links now. ${retention(session.limits)} You can restore it from the trash until then.`
      : `“${name}” is deleted. This cannot be undone.`;
    const title = toTrash ? "Move to trash?" : "Delete photo?";
    if (!(await confirmAction({ title, text, action: toTrash ? "Move to trash" : "Delete" }))) {
      button.focus();
      return;
    }
    clearError();
    button.disabled = true;
    try {
      await session.api.deletePhoto(photo.photo_id);
      session.go("#/gallery");
      announce(toTrash ? `Moved ${name} to the trash.` : `Deleted ${name}.`);
    } catch (error) {
      button.disabled = false;
      showError(error);
    }
  });
  return button;
}

function trashedCard(session, photo) {
  const restore = h("button", { type: "button", class: "primary", id: "restore-photo" }, "Restore");
  const remove = h("button", { type: "button", class: "danger", id: "delete-forever" }, "Delete forever");
  restore.addEventListener("click", async () => {
    clearError();
    restore.disabled = true;
    if (await restoreOne(session.api, photo)) await showPhoto(session, session.nextTicket(), photo.photo_id);
    else restore.disabled = false;
  });
  remove.addEventListener("click", async () => {
    clearError();
    remove.disabled = true;
    if (await deleteForever(session.api, photo)) session.go("#/trash");
    else remove.disabled = false;
  });
  return h(
    "section",
    { class: "card note-card", id: "trashed", "aria-labelledby": "trashed-title" },
    h("h2", { id: "trashed-title" }, "In the trash"),
    h("p", {}, `Deleted ${formatDate(photo.trashed_at)}; it will be removed for good on ${formatDay(photo.purge_at)}.`),
    h("div", { class: "actions" }, remove, restore),
  );
}
