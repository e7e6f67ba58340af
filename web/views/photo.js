// One photo: the large preview and metadata, the edit form (title, description, tags; a stale version is
// explained and the latest copy shown) and delete, after a confirmation.
import { ApiError } from "../api.js";
import { announce, busy, clearError, confirmAction, field, formatBytes, formatDate, h, page, photoName, showError } from "../dom.js";

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
  if (photo.status === "READY" && photo.urls.large) {
    visual = h("img", { src: photo.urls.large, alt: name, class: "large", id: "large-preview" });
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
  const metadata = h("dl", { class: "facts" }, ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
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

  const remove = h("button", { type: "button", class: "danger", id: "delete-photo" }, "Delete photo");
  remove.addEventListener("click", async () => {
    const text = `“${name}” and its previews will be deleted. This cannot be undone.`;
    if (!(await confirmAction({ title: "Delete photo?", text, action: "Delete" }))) {
      remove.focus();
      return;
    }
    clearError();
    remove.disabled = true;
    try {
      await api.deletePhoto(photo.photo_id);
      session.go("#/gallery");
      announce(`Deleted ${name}.`);
    } catch (error) {
      remove.disabled = false;
      showError(error);
    }
  });

  page(
    name,
    h("p", {}, h("a", { href: "#/gallery" }, "← All photos")),
    h(
      "div",
      { class: "photo-view" },
      h("figure", {}, visual, photo.description ? h("figcaption", {}, photo.description) : null),
      h("div", { class: "side" }, h("section", { class: "card", "aria-labelledby": "about-title" }, h("h2", { id: "about-title" }, "About"), metadata, tagLinks), form, h("div", { class: "card danger-zone" }, remove)),
    ),
  );
  if (notice) announce(notice);
}
