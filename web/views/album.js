// One album: its photos (any member's, most recently added first), and what the caller's role allows: the owner
// renames it, picks the cover, removes any photo, shares it (./share.js) and deletes it; a contributor adds and
// removes their own photos; every member may leave. Changes made elsewhere arrive by the live socket (./updates.js).
import { ApiError } from "../api.js";
import { announce, busy, clearError, confirmAction, field, h, page, showError } from "../dom.js";
import { photoCount, roleBadge } from "./albums.js";
import { ADD_OUTCOMES, REMOVE_OUTCOMES, batchReport, inBatches } from "./batch.js";
import { photoPicker } from "./picker.js";
import { shareSection } from "./share.js";
import { followAlbum } from "./updates.js";

const PAGE_SIZE = 24;
const STALE = "This album was changed somewhere else (another tab, device or person), so your change was not saved. The latest version is shown: make your change again.";

export function renderAlbum(session, { ticket, params }) {
  return showAlbum(session, ticket, params[0]);
}

export function albumPhotoName(photo) {
  return photo.title || "Untitled photo";
}

// `notice` is announced, `report` (a batch's results) shown above the photos, once the album is drawn again.
async function showAlbum(session, ticket, albumId, { notice = null, report = null } = {}) {
  const { api } = session;
  let album;
  try {
    album = await api.getAlbum(albumId);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    if (!session.isCurrent(ticket)) return;
    page("Album not found", h("p", {}, "This album does not exist, or it is not shared with you."), h("p", {}, h("a", { href: "#/albums" }, "← All albums")));
    return;
  }
  if (!session.isCurrent(ticket)) return;
  const isOwner = album.role === "owner";
  const canAdd = isOwner || album.role === "contributor";
  const redraw = (options) => showAlbum(session, session.nextTicket(), albumId, options);
  const staleRedraw = async () => {
    await redraw();
    showError(new Error(STALE));
  };

  const selected = new Set();
  const names = new Map();
  const grid = h("ul", { class: "grid", id: "album-grid", "aria-label": "Photos in this album" });
  const empty = h("p", { class: "muted", id: "album-empty", hidden: true }, canAdd ? "No photos yet. Add some with “Add photos”." : "No photos in this album yet.");
  const more = h("button", { type: "button", class: "secondary", id: "album-load-more", hidden: true }, "Load more photos");
  const selection = h("span", { class: "muted", id: "selection-count" }, "No photos selected.");
  const removeButton = h("button", { type: "button", id: "remove-selected" }, "Remove selected photos");
  const addButton = h("button", { type: "button", class: "primary", id: "add-photos" }, "Add photos");
  const pickerSlot = h("div", {});
  const notices = h("div", {});

  const setCover = async (photo, button) => {
    clearError();
    button.disabled = true;
    try {
      await api.updateAlbum(album.album_id, { cover_photo_id: photo.photo_id, version: album.version });
      await redraw({ notice: `“${albumPhotoName(photo)}” is now the cover.` });
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.status === 409) await staleRedraw();
      else showError(error);
    }
  };

  const tile = (photo) => {
    const name = albumPhotoName(photo);
    names.set(photo.photo_id, name);
    const isCover = photo.photo_id === album.cover_photo_id;
    const captionId = `caption-${photo.photo_id}`;
    const controls = [];
    if (isOwner || (canAdd && photo.mine)) {
      const box = h("input", { type: "checkbox", "aria-label": `Select ${name}` });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(photo.photo_id);
        else selected.delete(photo.photo_id);
        selection.textContent = selected.size ? `${selected.size} selected.` : "No photos selected.";
      });
      controls.push(box);
    }
    if (isOwner && !isCover) {
      const cover = h("button", { type: "button", class: "link-button", "aria-describedby": captionId }, "Make cover");
      cover.addEventListener("click", () => setCover(photo, cover));
      controls.push(cover);
    }
    return h(
      "li",
      { dataset: { photoId: photo.photo_id, mine: String(Boolean(photo.mine)) } },
      h(
        "div",
        { class: "tile" },
        h("a", { href: photo.urls.large || photo.urls.small, target: "_blank", rel: "noopener" }, h("img", { src: photo.urls.small, alt: name, loading: "lazy", width: "256", height: "256" })),
        h("span", { class: "caption", id: captionId }, name),
        isCover ? h("span", { class: "badge cover" }, "Cover") : null,
        controls.length ? h("span", { class: "tile-controls" }, ...controls) : null,
      ),
    );
  };

  let cursor = null;
  const loadPage = async () => {
    more.disabled = true;
    try {
      const result = await api.listAlbumPhotos(album.album_id, { limit: PAGE_SIZE, cursor });
      if (!session.isCurrent(ticket)) return;
      grid.append(...result.items.filter((p) => !names.has(p.photo_id)).map(tile));
      cursor = result.next_cursor || null;
      more.hidden = !cursor;
      empty.hidden = grid.children.length > 0;
    } catch (error) {
      if (session.isCurrent(ticket)) showError(error);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", loadPage);

  removeButton.addEventListener("click", async () => {
    clearError();
    if (selected.size === 0) {
      showError(new Error("Select the photos to remove first."));
      return;
    }
    const count = selected.size;
    const ok = await confirmAction({
      title: "Remove photos?",
      text: `${count === 1 ? "1 photo leaves" : `${count} photos leave`} this album. They stay in their owners' libraries.`,
      action: "Remove",
    });
    if (!ok) {
      removeButton.focus();
      return;
    }
    removeButton.disabled = true;
    const done = (results) => redraw({ notice: "Photos removed.", report: batchReport("Removed from the album", results, REMOVE_OUTCOMES, names) });
    try {
      await done(await inBatches([...selected], session.limits.album_photos_per_call, (ids) => api.removeAlbumPhotos(album.album_id, ids)));
    } catch (error) {
      removeButton.disabled = false;
      if (error.partial && error.partial.length) await done(error.partial);
      showError(error);
    }
  });

  addButton.addEventListener("click", () => {
    clearError();
    addButton.hidden = true;
    const picker = photoPicker(session, ticket, album, {
      onDone: (results, pickedNames) =>
        redraw({ notice: "Photos added.", report: batchReport("Added to the album", results, ADD_OUTCOMES, pickedNames) }),
      onCancel: () => {
        picker.remove();
        addButton.hidden = false;
        addButton.focus();
      },
    });
    pickerSlot.replaceChildren(picker);
    picker.querySelector("h2").setAttribute("tabindex", "-1");
    picker.querySelector("h2").focus();
  });

  const toolbar = h(
    "div",
    { class: "toolbar" },
    canAdd ? addButton : null,
    isOwner || canAdd ? h("span", { class: "selection" }, selection, removeButton) : null,
  );
  page(
    album.title,
    h("p", {}, h("a", { href: "#/albums" }, "← All albums")),
    h(
      "p",
      { class: "album-facts" },
      roleBadge(album.role),
      " ",
      h("span", { id: "album-count" }, photoCount(album.photo_count)),
    ),
    album.description ? h("p", { class: "description", id: "album-description" }, album.description) : null,
    notices,
    report,
    toolbar,
    pickerSlot,
    grid,
    empty,
    more,
    isOwner ? detailsForm(session, album, redraw, staleRedraw) : null,
    isOwner ? shareSection(session, ticket, album) : null,
    h("div", { class: "card danger-zone" }, isOwner ? deleteButton(session, album) : leaveButton(session, album)),
  );
  if (notice) announce(notice);
  const busyHere = () => selected.size > 0 || pickerSlot.childElementCount > 0;
  followAlbum(session, ticket, album, { slot: notices, busy: busyHere, redraw: (options) => redraw(options).catch(showError) });
  await loadPage();
}

function detailsForm(session, album, redraw, staleRedraw) {
  const { api, limits } = session;
  const title = h("input", { name: "title", required: true, maxlength: limits.album_title_max, value: album.title });
  const description = h("textarea", { name: "description", rows: "3", maxlength: limits.album_description_max }, album.description || "");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "album-details-title" },
    h("h2", { id: "album-details-title" }, "Album details"),
    field("Album title", title),
    field("Album description", description),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save album")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const changes = { version: album.version };
    if (title.value !== album.title) changes.title = title.value;
    if (description.value !== (album.description || "")) changes.description = description.value;
    if (Object.keys(changes).length === 1) {
      announce("Nothing to save.");
      return;
    }
    busy(form, true);
    try {
      await api.updateAlbum(album.album_id, changes);
      await redraw({ notice: "Album saved." });
    } catch (error) {
      busy(form, false);
      if (error instanceof ApiError && error.status === 409) await staleRedraw();
      else showError(error);
    }
  });
  return form;
}

function deleteButton(session, album) {
  const button = h("button", { type: "button", class: "danger", id: "delete-album" }, "Delete album");
  button.addEventListener("click", async () => {
    const text = `“${album.title}” goes for everyone it is shared with, and its links stop working. The photos stay in their owners' libraries.`;
    if (!(await confirmAction({ title: "Delete album?", text, action: "Delete" }))) {
      button.focus();
      return;
    }
    clearError();
    button.disabled = true;
    try {
      await session.api.deleteAlbum(album.album_id);
      session.go("#/albums");
      announce(`Deleted album “${album.title}”.`);
    } catch (error) {
      button.disabled = false;
      showError(error);
    }
  });
  return button;
}

function leaveButton(session, album) {
  const button = h("button", { type: "button", class: "danger", id: "leave-album" }, "Leave album");
  button.addEventListener("click", async () => {
    const text = `You will no longer see “${album.title}”, and the photos you added leave it with you.`;
    if (!(await confirmAction({ title: "Leave album?", text, action: "Leave" }))) {
      button.focus();
      return;
    }
    clearError();
    button.disabled = true;
    try {
      await session.api.removeMember(album.album_id, session.auth.userId);
      session.go("#/albums");
      announce(`You left “${album.title}”.`);
    } catch (error) {
      button.disabled = false;
      showError(error);
    }
  });
  return button;
}
