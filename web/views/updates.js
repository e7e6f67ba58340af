// What the views do with the live socket's messages (../live.js). The library places a photo that settled (its
// previews' URLs come from one listing for a burst of messages, never a GET per photo) and drops one deleted for
// good. A photo's or an album's page redraws itself when nothing on it can be lost, and otherwise says that it
// changed with a button to show the latest: what someone is reading or typing is never replaced under them, and a
// stale save is still explained by the API's 409. Each subscription ends with the render it belongs to.
import { announce, h, page } from "../dom.js";
import { merged } from "./tiles.js";

// Messages are gathered this long before one listing fetches what they describe.
const GATHER_MS = 250;
const LIST_LIMIT = 100;
const LIST_PAGES_MAX = 5;
// A change made here is echoed by a message that may come before its own answer: look again after this long.
const ECHO_MS = 500;

// Whether a message tells of a later state than the copy shown: an edit moves `version`; the worker settling a
// photo moves only its `status` and `updated_at`.
function newer(fresh, shown) {
  if (fresh.version !== shown.version) return fresh.version > shown.version;
  return fresh.status !== shown.status || String(fresh.updated_at) > String(shown.updated_at);
}

// The library's tiles (`tiles`, ./tiles.js) in `grid`, listed with `query` (listPhotos' filters). `placesNew`: a
// photo new to this page (uploaded elsewhere) belongs here (the unfiltered library). `onChange()` after tiles come
// or go. Returns `want(photo)`: fetch a settled photo's full copy (and previews) for its tile.
export function followLibrary(session, ticket, tiles, grid, { query, placesNew, onChange }) {
  const { api, live } = session;
  const active = () => session.isCurrent(ticket);
  const wanted = new Map();
  let timer = null;
  let running = false;

  const place = (items, batch) => {
    items.forEach((photo, index) => {
      if (!batch.has(photo.photo_id)) return;
      batch.delete(photo.photo_id);
      const shown = tiles.photos.get(photo.photo_id);
      if (shown) {
        tiles.tile(merged(shown, photo));
        return;
      }
      // New here: before the next photo of the listing that is shown, so the grid keeps the listing's order.
      const later = items.slice(index + 1).find((next) => tiles.has(next.photo_id) && tiles.items.get(next.photo_id).isConnected);
      if (later) tiles.items.get(later.photo_id).before(tiles.tile(photo));
      else if (tiles.items.size === 0) grid.append(tiles.tile(photo));
    });
  };
  const refresh = async () => {
    timer = null;
    running = true;
    const batch = new Map(wanted);
    wanted.clear();
    try {
      let cursor = null;
      for (let pages = 0; pages < LIST_PAGES_MAX; pages += 1) {
        const result = await api.listPhotos({ limit: LIST_LIMIT, cursor, ...query });
        if (!active()) return;
        place(result.items, batch);
        cursor = result.next_cursor;
        // Further pages only for tiles already shown (more uploads at once than a page): a photo new to the page
        // is only ever placed beside its neighbours in the listing's first page.
        if (!cursor || ![...batch.keys()].some((id) => tiles.has(id))) break;
      }
    } catch {
      // Not reachable now: the tiles take what the messages said (a reload shows the previews).
    } finally {
      running = false;
    }
    if (!active()) return;
    for (const [id, fresh] of batch) {
      const shown = tiles.photos.get(id);
      if (shown && shown.status === "PENDING") tiles.tile(merged(shown, fresh));
    }
    onChange();
    if (wanted.size) timer = setTimeout(refresh, GATHER_MS);
  };
  const want = (photo) => {
    wanted.set(photo.photo_id, photo);
    if (!timer && !running) timer = setTimeout(refresh, GATHER_MS);
  };

  live.on(
    "photo",
    (fresh) => {
      const shown = tiles.photos.get(fresh.photo_id);
      if (!shown) {
        if (placesNew && fresh.status === "READY") want(fresh);
        return;
      }
      if (!newer(fresh, shown)) return; // this page's own change, already applied
      if (shown.status === "PENDING" && fresh.status === "READY") want(fresh);
      else if (fresh.status !== shown.status) tiles.tile(merged(shown, fresh));
      else Object.assign(shown, fresh); // a change made elsewhere: the star's next PATCH carries the new version
    },
    { active },
  );
  live.on(
    "photo_deleted",
    (id) => {
      if (!tiles.has(id)) return;
      tiles.remove(id); // out of the selection too: the bulk bar's count follows
      tiles.onSelect();
      onChange();
    },
    { active },
  );
  return want;
}

// A notice above a page that changed elsewhere, with the button that redraws it.
function changedNotice(slot, text, show) {
  const button = h("button", { type: "button", class: "primary", id: "show-latest" }, "Show the latest");
  button.addEventListener("click", show);
  slot.replaceChildren(h("div", { class: "card note-card", id: "changed-notice" }, h("p", {}, text), h("div", { class: "actions" }, button)));
  announce(text);
}

// Whether the user is in the middle of something on the page: in a field, or with a form changed and not saved.
function inTheMiddle() {
  const focused = document.activeElement;
  if (focused && focused.closest("main") && /^(INPUT|TEXTAREA|SELECT)$/.test(focused.tagName)) return true;
  return [...document.querySelectorAll("main input, main textarea")].some(changed);
}

function changed(field) {
  if (field.readOnly || field.disabled || field.type === "file") return false;
  // A checkbox's `value` is "on" whatever its state: its state is `checked`.
  if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
  return field.value !== field.defaultValue;
}

// One photo's page. `photo` is the copy shown; `redraw(notice)` shows the latest; `slot` holds the notice.
export function followPhoto(session, ticket, photo, { slot, redraw }) {
  const active = () => session.isCurrent(ticket);
  const id = photo.photo_id;
  session.live.on(
    "photo",
    (fresh) => {
      setTimeout(() => {
        if (!active() || !newer(fresh, photo)) return;
        if (photo.status === "PENDING" && fresh.status !== "PENDING" && !inTheMiddle()) redraw("This photo has been processed.");
        else changedNotice(slot, "This photo was changed somewhere else (another tab or device).", () => redraw());
      }, ECHO_MS);
    },
    { id, active },
  );
  session.live.on(
    "photo_deleted",
    () => {
      session.nextTicket();
      page("Photo deleted", h("p", {}, "This photo has been deleted for good."), h("p", {}, h("a", { href: "#/gallery" }, "← All photos")));
    },
    { id, active },
  );
}

// One album's page. A message leads to one GET of the album (messages say that it changed, not how): its details
// (title, description, role, version) changed → the notice; only its photos (count, cover) → a redraw, unless the
// user is in the middle of something (`busy()`: a selection, the picker) → the notice.
export function followAlbum(session, ticket, album, { slot, busy, redraw }) {
  const { api, live } = session;
  const active = () => session.isCurrent(ticket);
  const id = album.album_id;
  let timer = null;
  const gone = () => {
    session.nextTicket();
    page("Album not available", h("p", {}, "This album was deleted, or it is no longer shared with you."), h("p", {}, h("a", { href: "#/albums" }, "← All albums")));
  };
  const compare = async () => {
    timer = null;
    if (!active()) return;
    let latest;
    try {
      latest = await api.getAlbum(id);
    } catch (error) {
      if (active() && error.status === 404) gone();
      return; // otherwise the next message tries again
    }
    if (!active()) return;
    const details = ["title", "description", "role", "version"].some((key) => latest[key] !== album[key]);
    const photos = ["photo_count", "cover_photo_id"].some((key) => latest[key] !== album[key]);
    if (details || (photos && (busy() || inTheMiddle()))) {
      changedNotice(slot, "This album was changed somewhere else (another tab, device or person).", () => redraw());
    } else if (photos) {
      redraw({ notice: "The photos in this album changed." });
    }
  };
  live.on(
    "album",
    () => {
      if (!timer) timer = setTimeout(compare, ECHO_MS);
    },
    { id, active },
  );
  live.on("album_removed", () => gone(), { id, active });
}
