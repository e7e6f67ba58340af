// The library: the caller's photos newest upload first (optionally one tag's) with the uploader, or their
// favourites; infinite scroll, favourite stars, selection and bulk actions; tiles follow the live socket's messages
// (./updates.js). The timeline is ./timeline.js.
import { announce, field, h, page } from "../dom.js";
import { LIBRARY_ACTIONS, bulkBar } from "./bulk.js";
import { scroller } from "./scroll.js";
import { TileSet } from "./tiles.js";
import { followLibrary } from "./updates.js";
import { uploader } from "./upload.js";

const PAGE_SIZE = 24;

const VIEWS = [
  ["library", "#/gallery", "Library"],
  ["timeline", "#/timeline", "Timeline"],
  ["favourites", "#/favourites", "Favourites"],
];

// Library, Timeline, Favourites: the same photos in three orders.
export function libraryTabs(current) {
  return h(
    "nav",
    { class: "tabs", "aria-label": "Photo views" },
    ...VIEWS.map(([name, href, label]) => h("a", { href, "aria-current": name === current ? "page" : null }, label)),
  );
}

// What a finished batch changes on a page of the library: photos that left it go, stars follow.
export function applyBatch(tiles, action, results, { leaves = [] } = {}) {
  for (const result of results) {
    if (result.status !== "done") continue;
    const photo = tiles.photos.get(result.photo_id);
    if (!photo) continue;
    if (action === "trash" || leaves.includes(action)) {
      tiles.remove(result.photo_id);
    } else if (action === "favorite" || action === "unfavorite") {
      // The version moved on: a later star click reads the photo again (./tiles.js, setFavorite).
      tiles.tile({ ...photo, favorite: action === "favorite" });
    }
  }
}

export function renderGallery(session, { ticket, query }) {
  return showLibrary(session, ticket, { tag: (query.get("tag") || "").trim().toLowerCase(), favourites: false });
}

export function renderFavourites(session, { ticket }) {
  return showLibrary(session, ticket, { tag: "", favourites: true });
}

async function showLibrary(session, ticket, { tag, favourites }) {
  const { api, limits } = session;
  const tiles = new TileSet(session);
  const label = favourites ? "Your favourites" : tag ? `Photos tagged ${tag}` : "Your photos";
  const grid = h("ul", { class: "grid", id: "photo-grid", "aria-label": label });
  tiles.root = grid;
  let emptyText = "No photos yet. Upload some above.";
  if (tag) emptyText = `No photos tagged “${tag}”.`;
  if (favourites) emptyText = "No favourites yet. Star a photo to add it here.";
  const empty = h("p", { class: "muted", id: "empty", hidden: true }, emptyText);
  const more = h("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more photos");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const reportSlot = h("div", {});
  const showEmpty = () => {
    empty.hidden = grid.children.length > 0;
  };
  const bar = bulkBar(session, tiles, {
    actions: LIBRARY_ACTIONS,
    reportSlot,
    onDone: (action, results) => {
      applyBatch(tiles, action, results, { leaves: favourites ? ["unfavorite"] : [] });
      showEmpty();
    },
  });

  // A photo uploaded elsewhere has no tags and is no favourite yet: it belongs in the unfiltered library only.
  const want = followLibrary(session, ticket, tiles, grid, {
    query: { tag: tag || null, favorite: favourites },
    placesNew: !tag && !favourites,
    onChange: showEmpty,
  });

  let filter = null;
  let uploads = null;
  if (!favourites) {
    const filterInput = h("input", { name: "tag", value: tag, type: "search", maxlength: limits.tag_max, placeholder: "e.g. beach" });
    filter = h(
      "form",
      { role: "search", class: "filter", "aria-label": "Filter photos by tag" },
      field("Filter by tag", filterInput),
      h("button", { type: "submit", class: "secondary" }, "Filter"),
      tag ? h("a", { href: "#/gallery", class: "clear-filter" }, "Show all photos") : null,
    );
    filter.addEventListener("submit", (event) => {
      event.preventDefault();
      const wanted = filterInput.value.trim().toLowerCase();
      session.go(wanted ? `#/gallery?tag=${encodeURIComponent(wanted)}` : "#/gallery");
    });
    // A new upload has no tags yet: it shows at once in the unfiltered library only, and its tile follows its status.
    uploads = uploader(session, {
      onCreated(photo) {
        if (tag) return;
        grid.prepend(tiles.tile(photo));
        showEmpty();
      },
      // Settled by a message, the photo has no preview URLs yet: the tile waits for its copy from a listing.
      onSettled(photo) {
        if (!(tiles.has(photo.photo_id) && tiles.items.get(photo.photo_id).isConnected)) return;
        if (photo.status === "READY" && !(photo.urls && photo.urls.small)) want(photo);
        else tiles.tile(photo);
      },
    });
  }

  const heading = favourites ? "Favourites" : tag ? `Photos tagged “${tag}”` : "Your photos";
  page(heading, libraryTabs(favourites ? "favourites" : "library"), uploads, filter, bar, reportSlot, grid, empty, more, sentinel);

  let cursor = null;
  const load = scroller(session, ticket, {
    more,
    sentinel,
    next: async () => {
      const nextPage = cursor !== null;
      const result = await api.listPhotos({ limit: PAGE_SIZE, cursor, tag: tag || null, favorite: favourites });
      if (!session.isCurrent(ticket)) return false;
      grid.append(...result.items.filter((photo) => !tiles.has(photo.photo_id)).map((photo) => tiles.tile(photo)));
      cursor = result.next_cursor;
      showEmpty();
      // Only for later pages: the first page's heading speaks for itself, and must not drown out "Moved to trash".
      if (nextPage) announce(`${grid.children.length} photos shown${cursor ? "; scroll for more" : ""}.`);
      return Boolean(cursor);
    },
  });
  await load();
}
