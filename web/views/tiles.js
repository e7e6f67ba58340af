// The tiles of the caller's own photos (library, timeline, favourites, trash): the picture and name, a favourite
// toggle, and selection for the bulk actions (./bulk.js): a checkbox on each tile; once something is selected a
// click on a tile selects instead of opening it, and shift-click selects the range from the last one clicked.
import { ApiError } from "../api.js";
import { formatDay, h, photoName, showError } from "../dom.js";

// PATCH answers carry no `urls`: keep the ones the list gave.
export function merged(old, fresh) {
  return { ...old, ...fresh, urls: fresh.urls || old.urls };
}

// Set the favourite flag, whatever the copy we hold says: a stale version (edited elsewhere) is read again and the
// flag set on the latest copy, unless it already is what the user wants. Resolves to the photo as it is now.
export async function setFavorite(api, photo, wanted) {
  try {
    return merged(photo, await api.updatePhoto(photo.photo_id, { favorite: wanted, version: photo.version }));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409)) throw error;
    const latest = await api.getPhoto(photo.photo_id);
    if (latest.trashed_at) throw new Error(`“${photoName(latest)}” is in the trash: restore it first.`);
    if (latest.favorite === wanted) return merged(photo, latest);
    return merged(photo, await api.updatePhoto(photo.photo_id, { favorite: wanted, version: latest.version }));
  }
}

// A star that is pressed for a favourite. `onChange(photo)` gets the photo once the API has it.
export function favoriteToggle(api, photo, onChange, { id = null } = {}) {
  const name = photoName(photo);
  const button = h("button", { type: "button", class: "favorite", id, "aria-label": `Favourite ${name}`, "aria-pressed": String(Boolean(photo.favorite)) }, photo.favorite ? "★" : "☆");
  button.addEventListener("click", async () => {
    const wanted = button.getAttribute("aria-pressed") !== "true";
    button.disabled = true;
    try {
      const fresh = await setFavorite(api, photo, wanted);
      Object.assign(photo, fresh);
      button.setAttribute("aria-pressed", String(Boolean(photo.favorite)));
      button.textContent = photo.favorite ? "★" : "☆";
      onChange(photo);
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

// A link to the library's copy of the same bytes (an upload or a restore refused as a duplicate).
export function copyLink(photoId, text = "See it in your library") {
  return h("a", { href: `#/photo/${encodeURIComponent(photoId)}`, class: "copy-link" }, text);
}

// A restore refused because a copy of the photo is back in the library: say so, with a link to that copy.
export function isDuplicate(error) {
  return error instanceof ApiError && error.status === 409 && error.code === "DuplicatePhoto";
}

function visualOf(photo, alt) {
  if (photo.status === "READY" && photo.urls && photo.urls.small) {
    return h("img", { src: photo.urls.small, alt, loading: "lazy", width: "256", height: "256" });
  }
  if (photo.status === "REJECTED") return h("span", { class: "placeholder rejected" }, photo.duplicate_of ? "Duplicate" : "Rejected");
  if (photo.status === "PENDING") return h("span", { class: "placeholder" }, "Processing…");
  return h("span", { class: "placeholder" }, "No preview");
}

// Every tile on a page, and which are selected. `onSelect()` runs after each change of the selection; `extra(photo,
// name)` adds controls to a tile (the trash's restore and delete); `trash` shows the trash's dates instead of a star.
export class TileSet {
  constructor(session, { trash = false, extra = () => [], onSelect = () => {}, onFavorite = () => {} } = {}) {
    this.session = session;
    this.trash = trash;
    this.extra = extra;
    this.onSelect = onSelect;
    this.onFavorite = onFavorite;
    this.photos = new Map();
    this.items = new Map();
    this.selected = new Set();
    this.anchor = null;
    this.root = null;
  }

  get names() {
    return new Map([...this.photos].map(([id, photo]) => [id, photoName(photo)]));
  }

  has(id) {
    return this.items.has(id);
  }

  // The tiles in the order they are shown (for a shift-click's range): those inside `root`, the page's list.
  ordered() {
    if (!this.root) return [...this.items.keys()];
    return [...this.root.querySelectorAll("li[data-photo-id]")].map((li) => li.dataset.photoId).filter((id) => this.items.has(id));
  }

  tile(photo) {
    const id = photo.photo_id;
    this.photos.set(id, photo);
    const name = photoName(photo);
    const box = h("input", { type: "checkbox", class: "select", "aria-label": `Select ${name}` });
    box.checked = this.selected.has(id);
    box.addEventListener("click", (event) => this.pick(id, box.checked, event.shiftKey));
    const link = h("a", { class: "tile-link", href: `#/photo/${encodeURIComponent(id)}` }, visualOf(photo, name), h("span", { class: "caption" }, name));
    link.addEventListener("click", (event) => {
      if (this.selected.size === 0 && !event.shiftKey) return;
      event.preventDefault(); // select mode: a click selects
      this.pick(id, !this.selected.has(id), event.shiftKey);
    });
    const badge = photo.status === "READY" || !photo.status ? null : h("span", { class: `badge ${photo.status.toLowerCase()}` }, photo.status);
    const controls = [box];
    if (!this.trash && photo.status === "READY") controls.push(favoriteToggle(this.session.api, photo, (fresh) => this.favorited(fresh)));
    controls.push(...this.extra(photo, name));
    const dates = this.trash
      ? h("p", { class: "muted trash-dates" }, `Deleted ${formatDay(photo.trashed_at)}, removed for good on ${formatDay(photo.purge_at)}`)
      : null;
    const li = h(
      "li",
      { dataset: { photoId: id, status: photo.status, favorite: String(Boolean(photo.favorite)) }, class: this.selected.has(id) ? "selected" : null },
      h("div", { class: "tile" }, link, badge, dates, h("span", { class: "tile-controls" }, ...controls)),
    );
    const old = this.items.get(id);
    this.items.set(id, li);
    if (old && old.isConnected) old.replaceWith(li);
    return li;
  }

  favorited(photo) {
    const li = this.items.get(photo.photo_id);
    if (li) li.dataset.favorite = String(Boolean(photo.favorite));
    this.onFavorite(photo);
  }

  // Select or deselect one tile, or (shift) every tile from the last one picked to this one.
  pick(id, on, range = false) {
    let ids = [id];
    if (range && this.anchor && this.anchor !== id) {
      const order = this.ordered();
      const [from, to] = [order.indexOf(this.anchor), order.indexOf(id)].sort((a, b) => a - b);
      if (from >= 0) ids = order.slice(from, to + 1);
    }
    for (const each of ids) this.mark(each, on);
    this.anchor = id;
    this.onSelect();
  }

  mark(id, on) {
    if (on) this.selected.add(id);
    else this.selected.delete(id);
    const li = this.items.get(id);
    if (!li) return;
    li.classList.toggle("selected", on);
    li.querySelector("input.select").checked = on;
  }

  selectAll() {
    for (const id of this.ordered()) this.mark(id, true);
    this.onSelect();
  }

  clear() {
    for (const id of [...this.selected]) this.mark(id, false);
    this.anchor = null;
    this.onSelect();
  }

  // The selected photos in the order they are shown.
  selectedIds() {
    return this.ordered().filter((id) => this.selected.has(id));
  }

  // A photo that left this page (trashed, restored, deleted). Returns its tile's parent list, if any.
  remove(id) {
    const li = this.items.get(id);
    const parent = li ? li.parentElement : null;
    if (li) li.remove();
    this.items.delete(id);
    this.photos.delete(id);
    this.selected.delete(id);
    if (this.anchor === id) this.anchor = null;
    return parent;
  }
}
