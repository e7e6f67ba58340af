// A shared album as anyone holding its link sees it (#/s/<token>), signed in or not: the API's /public routes, never
// the visitor's own token. A password link asks for the password once; the access token it unlocks is kept per link
// in sessionStorage (until it expires or the tab closes) and sent as X-Link-Access.
import { ApiError } from "../api.js";
import { announce, busy, clearError, field, h, page, showError } from "../dom.js";
import { photoCount } from "./albums.js";

const PAGE_SIZE = 24;
const ACCESS_PREFIX = "photosky.link.";

function storedAccess(token) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(ACCESS_PREFIX + token) || "null");
    if (saved && saved.access_token && Date.parse(saved.expires_at) > Date.now()) return saved.access_token;
  } catch {
    // unreadable: forgotten below
  }
  sessionStorage.removeItem(ACCESS_PREFIX + token);
  return null;
}

function keepAccess(token, unlocked) {
  sessionStorage.setItem(ACCESS_PREFIX + token, JSON.stringify({ access_token: unlocked.access_token, expires_at: unlocked.expires_at }));
}

function forgetAccess(token) {
  sessionStorage.removeItem(ACCESS_PREFIX + token);
}

export function renderPublicAlbum(session, { ticket, params }) {
  return showShared(session, ticket, params[0] || "");
}

// What the API's answer means for the page: a password to ask for, a dead link, or an error to show.
function handled(session, ticket, token, error) {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 401) {
    forgetAccess(token);
    askPassword(session, ticket, token);
    return true;
  }
  if (error.status === 404) {
    forgetAccess(token);
    page(
      "Link not available",
      h("p", { id: "link-gone" }, "This link is unknown, has expired or has been revoked. Ask the person who shared it with you for a new one."),
    );
    return true;
  }
  return false;
}

async function showShared(session, ticket, token, notice) {
  const { api } = session;
  let first;
  try {
    first = await api.getPublicAlbum(token, { limit: PAGE_SIZE, access: storedAccess(token) });
  } catch (error) {
    if (!session.isCurrent(ticket)) return;
    if (handled(session, ticket, token, error)) return;
    throw error;
  }
  if (!session.isCurrent(ticket)) return;
  const { album, allow_download: allowDownload } = first;
  const grid = h("ul", { class: "grid", id: "shared-grid", "aria-label": "Photos in this album" });
  const empty = h("p", { class: "muted", hidden: true }, "This album has no photos yet.");
  const more = h("button", { type: "button", class: "secondary", id: "shared-load-more", hidden: true }, "Load more photos");

  const tile = (photo) => {
    const name = photo.title || "Untitled photo";
    const download =
      allowDownload && photo.urls.original
        ? h("a", { class: "download", href: photo.urls.original, download: "", target: "_blank", rel: "noopener" }, "Download original")
        : null;
    return h(
      "li",
      { dataset: { photoId: photo.photo_id } },
      h(
        "div",
        { class: "tile" },
        h("a", { href: photo.urls.large || photo.urls.small, target: "_blank", rel: "noopener" }, h("img", { src: photo.urls.small, alt: name, loading: "lazy", width: "256", height: "256" })),
        h("span", { class: "caption" }, name),
        download ? h("span", { class: "tile-controls" }, download) : null,
      ),
    );
  };
  let cursor = null;
  const show = (result) => {
    grid.append(...result.items.filter((p) => !grid.querySelector(`[data-photo-id="${p.photo_id}"]`)).map(tile));
    cursor = result.next_cursor || null;
    more.hidden = !cursor;
    empty.hidden = grid.children.length > 0;
  };

  more.addEventListener("click", async () => {
    clearError();
    more.disabled = true;
    try {
      const result = await api.getPublicAlbum(token, { limit: PAGE_SIZE, cursor, access: storedAccess(token) });
      if (!session.isCurrent(ticket)) return;
      show(result);
      announce(`${grid.children.length} photos shown.`);
    } catch (error) {
      if (!session.isCurrent(ticket)) return;
      // The access token may have run out, or the link been revoked, since the page was drawn.
      if (!handled(session, session.nextTicket(), token, error)) showError(error);
    } finally {
      more.disabled = false;
    }
  });

  page(
    album.title,
    h("p", { class: "muted", id: "shared-facts" }, `Shared album · ${photoCount(album.photo_count)}${allowDownload ? " · originals may be downloaded" : ""}`),
    album.description ? h("p", { class: "description", id: "album-description" }, album.description) : null,
    grid,
    empty,
    more,
  );
  show(first);
  if (notice) announce(notice);
}

function askPassword(session, ticket, token) {
  const password = h("input", { name: "password", type: "password", autocomplete: "off", required: true });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    h("p", {}, "This shared album is protected by a password. Ask the person who shared it if you do not have it."),
    field("Album password", password),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Open album")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    let unlocked;
    try {
      unlocked = await session.api.unlockPublicAlbum(token, password.value);
    } catch (error) {
      if (!session.isCurrent(ticket)) return;
      busy(form, false);
      if (error instanceof ApiError && error.status === 401) {
        showError(new Error("That password is not right. Check it and try again."));
        password.select();
      } else if (!handled(session, ticket, token, error)) {
        showError(error); // a 429 after too many wrong tries says when to try again
      }
      return;
    }
    if (!session.isCurrent(ticket)) return;
    keepAccess(token, unlocked);
    const next = session.nextTicket();
    try {
      await showShared(session, next, token, "Album unlocked.");
    } catch (error) {
      if (session.isCurrent(next)) showError(error);
    }
  });
  page("Password required", form);
}
