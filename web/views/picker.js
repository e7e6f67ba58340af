// "Add photos": a picker over the caller's own READY photos (their library, newest first) with multi-select; the
// chosen ids go to the album in batches and the outcome per photo comes back to the album page.
import { busy, clearError, h, photoName, showError } from "../dom.js";
import { inBatches } from "./batch.js";

const PAGE_SIZE = 48;

// `onDone(results, names)` once the photos are sent; `onCancel()` closes the picker.
export function photoPicker(session, ticket, album, { onDone, onCancel }) {
  const { api } = session;
  const selected = new Set();
  const names = new Map();
  const grid = h("ul", { class: "grid picker", id: "picker-grid", "aria-label": "Your photos to choose from" });
  const empty = h("p", { class: "muted", hidden: true }, "You have no ready photos to add. Upload some in Photos first.");
  const count = h("span", { class: "muted", id: "picker-count" }, "No photos selected.");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more of your photos");
  const add = h("button", { type: "submit", class: "primary" }, "Add selected photos");
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h(
    "form",
    { class: "card", id: "photo-picker", "aria-labelledby": "picker-title" },
    h("h2", { id: "picker-title" }, `Add photos to “${album.title}”`),
    h("p", { class: "muted" }, "Only your own photos that have finished processing are listed."),
    grid,
    empty,
    more,
    h("div", { class: "actions" }, count, cancel, add),
  );

  const updateCount = () => {
    count.textContent = selected.size ? `${selected.size} selected.` : "No photos selected.";
  };
  const card = (photo) => {
    const name = photoName(photo);
    names.set(photo.photo_id, name);
    const box = h("input", { type: "checkbox", name: "photo", value: photo.photo_id });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(photo.photo_id);
      else selected.delete(photo.photo_id);
      updateCount();
    });
    return h(
      "li",
      { dataset: { photoId: photo.photo_id } },
      h(
        "label",
        { class: "tile pick" },
        h("img", { src: photo.urls.small, alt: "", loading: "lazy", width: "256", height: "256" }),
        h("span", { class: "caption" }, box, " ", name),
      ),
    );
  };

  let cursor = null;
  const loadPage = async () => {
    more.disabled = true;
    try {
      const result = await api.listPhotos({ limit: PAGE_SIZE, cursor });
      if (!session.isCurrent(ticket)) return;
      const ready = result.items.filter((photo) => photo.status === "READY" && photo.urls && photo.urls.small);
      grid.append(...ready.map(card));
      cursor = result.next_cursor || null;
      more.hidden = !cursor;
      empty.hidden = grid.children.length > 0 || Boolean(cursor);
    } catch (error) {
      if (session.isCurrent(ticket)) showError(error);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", loadPage);
  cancel.addEventListener("click", onCancel);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    if (selected.size === 0) {
      showError(new Error("Select at least one photo to add."));
      return;
    }
    busy(form, true);
    try {
      const results = await inBatches([...selected], session.limits.album_photos_per_call, (ids) => api.addAlbumPhotos(album.album_id, ids));
      if (!session.isCurrent(ticket)) return;
      await onDone(results, names);
    } catch (error) {
      if (!session.isCurrent(ticket)) return;
      busy(form, false);
      // Chunks already sent did land: say so with the error.
      if (error.partial && error.partial.length) {
        await onDone(error.partial, names);
        showError(error);
        return;
      }
      showError(error);
    }
  });

  loadPage();
  return form;
}
