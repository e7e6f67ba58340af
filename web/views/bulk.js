// Bulk actions on the selected tiles (./tiles.js): favourite, unfavourite, add or remove tags, move to the trash; in
// the trash, restore and delete forever. One POST /photos/batch per `limits.batch_photos` photos; the summary and
// every photo that was not done are shown in a report above the photos.
import { announce, busy, clearError, confirmAction, field, h, showError } from "../dom.js";
import { PHOTO_HINTS, batchReport, inBatches, photoOutcomes, summarize } from "./batch.js";

export const LIBRARY_ACTIONS = ["favorite", "unfavorite", "add_tags", "remove_tags", "trash"];
export const TRASH_ACTIONS = ["restore", "delete"];
const TAG_ACTIONS = new Set(["add_tags", "remove_tags"]);

const BUTTONS = {
  favorite: "Favourite",
  unfavorite: "Unfavourite",
  add_tags: "Add tags",
  remove_tags: "Remove tags",
  trash: "Move to trash",
  restore: "Restore",
  delete: "Delete forever",
};
const HEADINGS = {
  favorite: "Added to favourites",
  unfavorite: "Removed from favourites",
  add_tags: "Tags added",
  remove_tags: "Tags removed",
  trash: "Moved to the trash",
  restore: "Restored",
  delete: "Deleted for good",
};

export function parseTags(text) {
  return [...new Set(text.split(",").map((tag) => tag.trim().toLowerCase()).filter(Boolean))];
}

function countText(n) {
  if (n === 0) return "No photos selected. Tick photos to select them; shift-click selects a range.";
  return n === 1 ? "1 photo selected." : `${n} photos selected.`;
}

// The bar, always on the page; its actions show once something is selected. `onDone(action, results, tags)` once a
// batch has answered (the view updates its tiles); `reportSlot` receives the report.
export function bulkBar(session, tiles, { actions, reportSlot, onDone }) {
  const { api, limits } = session;
  const count = h("span", { id: "selection-count" }, countText(0));
  const selectAll = h("button", { type: "button", class: "secondary", id: "select-all" }, "Select all shown");
  const clear = h("button", { type: "button", class: "secondary", id: "clear-selection", hidden: true }, "Clear selection");
  const tagsInput = h("input", { name: "bulk-tags", placeholder: "e.g. beach, summer" });
  const hasTags = actions.some((action) => TAG_ACTIONS.has(action));
  const buttons = actions.map((action) => {
    const button = h("button", { type: "button", class: action === "delete" || action === "trash" ? "danger" : null, dataset: { action } }, BUTTONS[action]);
    button.addEventListener("click", () => run(action));
    return button;
  });
  const plain = buttons.filter((button) => !TAG_ACTIONS.has(button.dataset.action));
  const tagged = buttons.filter((button) => TAG_ACTIONS.has(button.dataset.action));
  const panel = h(
    "div",
    { class: "bulk-actions", hidden: true },
    h("div", { class: "bulk-row" }, ...plain),
    hasTags
      ? h("div", { class: "bulk-row bulk-tags" }, field("Tags for the selected photos", tagsInput, `Separate tags with commas (up to ${limits.tags_max}).`), ...tagged)
      : null,
  );
  const bar = h("section", { class: "card bulk", id: "bulk-bar", "aria-label": "Selected photos" }, h("div", { class: "selection" }, count, selectAll, clear), panel);

  tiles.onSelect = () => {
    const n = tiles.selected.size;
    count.textContent = countText(n);
    panel.hidden = n === 0;
    clear.hidden = n === 0;
  };
  selectAll.addEventListener("click", () => {
    tiles.selectAll();
    announce(countText(tiles.selected.size));
  });
  clear.addEventListener("click", () => {
    tiles.clear();
    selectAll.focus();
  });

  async function run(action) {
    clearError();
    const ids = tiles.selectedIds();
    if (ids.length === 0) {
      showError(new Error("Select some photos first."));
      return;
    }
    let tags;
    if (TAG_ACTIONS.has(action)) {
      tags = parseTags(tagsInput.value);
      const tooLong = tags.find((tag) => tag.length > limits.tag_max);
      let problem = null;
      if (tags.length === 0) problem = "Enter the tags first, separated by commas.";
      else if (tags.length > limits.tags_max) problem = `At most ${limits.tags_max} tags at once.`;
      else if (tooLong) problem = `“${tooLong}” is too long: tags have up to ${limits.tag_max} characters.`;
      if (problem) {
        showError(new Error(problem));
        tagsInput.focus();
        return;
      }
    }
    if (action === "delete") {
      const what = ids.length === 1 ? "1 photo is" : `${ids.length} photos are`;
      const ok = await confirmAction({ title: "Delete forever?", text: `${what} deleted for good, with the previews. This cannot be undone.`, action: "Delete forever" });
      if (!ok) return;
    }
    const names = tiles.names;
    busy(bar, true);
    let results;
    let failure = null;
    try {
      results = await inBatches(ids, limits.batch_photos, (chunk) => api.batchPhotos(action, chunk, tags));
    } catch (error) {
      failure = error;
      results = error.partial || []; // the batches already sent did land
    } finally {
      busy(bar, false);
    }
    if (results.length) {
      const outcomes = photoOutcomes(action);
      reportSlot.replaceChildren(batchReport(HEADINGS[action], results, outcomes, names, { failuresOnly: true, hints: PHOTO_HINTS }));
      for (const result of results) if (result.status === "done") tiles.mark(result.photo_id, false);
      onDone(action, results, tags);
      tiles.onSelect();
      announce(`${HEADINGS[action]}: ${summarize(results, outcomes)}.`);
    }
    if (failure) showError(failure);
  }

  return bar;
}
