// The caller's albums: those they own and those shared with them (role badge, cover, photo count), most recently
// updated first, and the form that creates one.
import { announce, busy, clearError, field, h, page, showError } from "../dom.js";

const PAGE_SIZE = 50;
export const ROLE_NAMES = { owner: "Owner", contributor: "Contributor", viewer: "Viewer" };

export function roleBadge(role) {
  return h("span", { class: `role role-${role}`, dataset: { role } }, ROLE_NAMES[role] || role);
}

export function photoCount(count) {
  return count === 1 ? "1 photo" : `${count.toLocaleString()} photos`;
}

function albumCard(album) {
  const cover =
    album.cover && album.cover.small
      ? h("img", { src: album.cover.small, alt: "", loading: "lazy", width: "256", height: "256" })
      : h("span", { class: "placeholder" }, "No photos yet");
  return h(
    "li",
    { dataset: { albumId: album.album_id, role: album.role } },
    h(
      "a",
      { class: "tile", href: `#/album/${encodeURIComponent(album.album_id)}` },
      cover,
      h("span", { class: "caption" }, album.title),
      h("span", { class: "caption muted count" }, photoCount(album.photo_count)),
      roleBadge(album.role),
    ),
  );
}

export async function renderAlbums(session, { ticket }) {
  const { api, limits } = session;
  const owned = h("ul", { class: "grid albums", id: "owned-albums", "aria-label": "Your albums" });
  const shared = h("ul", { class: "grid albums", id: "shared-albums", "aria-label": "Shared with you" });
  const ownedEmpty = h("p", { class: "muted", hidden: true }, "You have no albums yet. Create one above.");
  const sharedEmpty = h("p", { class: "muted", hidden: true }, "Nobody has shared an album with you yet.");
  const more = h("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more albums");

  const title = h("input", { name: "title", required: true, maxlength: limits.album_title_max });
  const description = h("textarea", { name: "description", rows: "2", maxlength: limits.album_description_max });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-album-title" },
    h("h2", { id: "create-album-title" }, "New album"),
    field("Album title", title),
    field("Album description", description, "Optional."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create album")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const body = { title: title.value.trim() };
    if (description.value.trim()) body.description = description.value;
    busy(form, true);
    try {
      const album = await api.createAlbum(body);
      session.go(`#/album/${encodeURIComponent(album.album_id)}`);
      announce(`Album “${album.title}” created.`);
    } catch (error) {
      busy(form, false);
      showError(error);
    }
  });

  page(
    "Albums",
    form,
    h("section", { "aria-labelledby": "owned-title" }, h("h2", { id: "owned-title" }, "Your albums"), owned, ownedEmpty),
    h("section", { "aria-labelledby": "shared-title", class: "spaced" }, h("h2", { id: "shared-title" }, "Shared with you"), shared, sharedEmpty),
    more,
  );

  let cursor = null;
  const loadPage = async () => {
    more.disabled = true;
    try {
      const result = await api.listAlbums({ limit: PAGE_SIZE, cursor });
      if (!session.isCurrent(ticket)) return;
      for (const album of result.items) (album.role === "owner" ? owned : shared).append(albumCard(album));
      cursor = result.next_cursor || null;
      more.hidden = !cursor;
      ownedEmpty.hidden = owned.children.length > 0;
      sharedEmpty.hidden = shared.children.length > 0;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", () => {
    clearError();
    loadPage().catch((error) => session.isCurrent(ticket) && showError(error));
  });
  await loadPage();
}
