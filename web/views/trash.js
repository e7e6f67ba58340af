// The trash: photos moved there, most recently first, each saying when it was deleted and when it goes for good.
// Restore one (refused while a copy of the same photo is in the library: the message links to that copy), delete
// one forever, select several (restore, delete forever), or empty the whole trash after a confirmation.
import { ApiError } from "../api.js";
import { announce, clearError, confirmAction, h, page, photoName, showError } from "../dom.js";
import { TRASH_ACTIONS, bulkBar } from "./bulk.js";
import { applyBatch } from "./gallery.js";
import { scroller } from "./scroll.js";
import { TileSet, copyLink, isDuplicate } from "./tiles.js";

const PAGE_SIZE = 24;
// DELETE /trash answers 202 while photos remain (its time budget ran out): the next call goes on after a breath.
const EMPTY_AGAIN_MS = 300;

export function duplicateError(name) {
  return new Error(`“${name}” cannot be restored: a copy of it is already in your library. `);
}

// Restore one photo; resolves true when it is back in the library. A refusal is shown, not thrown.
export async function restoreOne(api, photo) {
  try {
    await api.restorePhoto(photo.photo_id);
    announce(`Restored ${photoName(photo)}.`);
    return true;
  } catch (error) {
    if (isDuplicate(error) && error.photoId) showError(duplicateError(photoName(photo)), copyLink(error.photoId, "See the copy in your library"));
    else showError(error);
    return false;
  }
}

// Delete one photo for good, after a confirmation; resolves true once it is gone.
export async function deleteForever(api, photo) {
  const name = photoName(photo);
  const ok = await confirmAction({ title: "Delete forever?", text: `“${name}” and its previews are deleted for good. This cannot be undone.`, action: "Delete forever" });
  if (!ok) return false;
  try {
    await api.deletePhoto(photo.photo_id, { permanent: true });
    announce(`Deleted ${name} for good.`);
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return true; // gone already (another tab)
    showError(error);
    return false;
  }
}

export function retention(limits) {
  const days = limits.trash_days;
  if (!days) return "Photos in the trash are deleted for good after a while.";
  return `Photos in the trash are deleted for good ${days === 1 ? "1 day" : `${days} days`} after they were moved there.`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function renderTrash(session, { ticket }) {
  const { api, limits } = session;
  const grid = h("ul", { class: "grid", id: "trash-grid", "aria-label": "Photos in the trash" });
  const empty = h("p", { class: "muted", id: "trash-empty", hidden: true }, "The trash is empty.");
  const showEmpty = () => {
    empty.hidden = grid.children.length > 0;
  };
  const act = (button, work, photo) => async () => {
    clearError();
    button.disabled = true;
    if (await work(api, photo)) {
      tiles.remove(photo.photo_id);
      tiles.onSelect();
      showEmpty();
    } else if (button.isConnected) {
      button.disabled = false;
      button.focus();
    }
  };
  const tiles = new TileSet(session, {
    trash: true,
    extra: (photo, name) => {
      const restore = h("button", { type: "button", class: "link-button", "aria-label": `Restore ${name}` }, "Restore");
      const remove = h("button", { type: "button", class: "link-button danger-text", "aria-label": `Delete ${name} forever` }, "Delete forever");
      restore.addEventListener("click", act(restore, restoreOne, photo));
      remove.addEventListener("click", act(remove, deleteForever, photo));
      return [restore, remove];
    },
  });
  tiles.root = grid;
  const more = h("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more photos");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const reportSlot = h("div", {});
  const bar = bulkBar(session, tiles, {
    actions: TRASH_ACTIONS,
    reportSlot,
    onDone: (action, results) => {
      applyBatch(tiles, action, results, { leaves: ["restore", "delete"] });
      showEmpty();
    },
  });

  const emptyButton = h("button", { type: "button", class: "danger", id: "empty-trash" }, "Empty trash");
  emptyButton.addEventListener("click", async () => {
    clearError();
    const ok = await confirmAction({
      title: "Empty the trash?",
      text: "Every photo in the trash is deleted for good, with its previews, and stops counting against your quota. This cannot be undone.",
      action: "Empty trash",
    });
    if (!ok) {
      emptyButton.focus();
      return;
    }
    emptyButton.disabled = true;
    try {
      for (let answer = await api.emptyTrash(); answer !== null; answer = await api.emptyTrash()) {
        if (session.isCurrent(ticket)) announce(`Emptying the trash: ${answer.remaining} photos left…`);
        await sleep(EMPTY_AGAIN_MS);
      }
      if (!session.isCurrent(ticket)) return;
      for (const id of [...tiles.items.keys()]) tiles.remove(id);
      tiles.onSelect();
      reportSlot.replaceChildren();
      more.hidden = true;
      showEmpty();
      announce("The trash is empty.");
    } catch (error) {
      if (session.isCurrent(ticket)) showError(error);
    } finally {
      emptyButton.disabled = false;
    }
  });

  page(
    "Trash",
    h(
      "div",
      { class: "toolbar" },
      h("p", { class: "muted", id: "trash-intro" }, `${retention(limits)} Until then they count against your quota.`),
      emptyButton,
    ),
    bar,
    reportSlot,
    grid,
    empty,
    more,
    sentinel,
  );

  let cursor = null;
  const load = scroller(session, ticket, {
    more,
    sentinel,
    next: async () => {
      const result = await api.listTrash({ limit: PAGE_SIZE, cursor });
      if (!session.isCurrent(ticket)) return false;
      grid.append(...result.items.filter((photo) => !tiles.has(photo.photo_id)).map((photo) => tiles.tile(photo)));
      cursor = result.next_cursor || null;
      showEmpty();
      return Boolean(cursor);
    },
  });
  await load();
}
