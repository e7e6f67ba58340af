// The gallery: the caller's photos (optionally one tag's), newest first, with infinite scroll and the uploader.
import { announce, field, h, page, photoName, showError } from "../dom.js";
import { uploader } from "./upload.js";

const PAGE_SIZE = 24;

export function photoCard(photo) {
  const name = photoName(photo);
  let visual;
  if (photo.status === "READY" && photo.urls && photo.urls.small) {
    visual = h("img", { src: photo.urls.small, alt: name, loading: "lazy", width: "256", height: "256" });
  } else if (photo.status === "REJECTED") {
    visual = h("span", { class: "placeholder rejected" }, "Rejected");
  } else {
    visual = h("span", { class: "placeholder" }, "Processing…");
  }
  const badge = photo.status === "READY" ? null : h("span", { class: `badge ${photo.status.toLowerCase()}` }, photo.status);
  return h(
    "li",
    { dataset: { photoId: photo.photo_id, status: photo.status } },
    h("a", { class: "tile", href: `#/photo/${encodeURIComponent(photo.photo_id)}` }, visual, h("span", { class: "caption" }, name), badge),
  );
}

export async function renderGallery(session, { ticket, query }) {
  const { api, limits } = session;
  const tag = (query.get("tag") || "").trim().toLowerCase();
  const grid = h("ul", { class: "grid", id: "photo-grid", "aria-label": tag ? `Photos tagged ${tag}` : "Your photos" });
  const empty = h("p", { class: "muted", id: "empty", hidden: true }, tag ? `No photos tagged “${tag}”.` : "No photos yet. Upload some above.");
  const more = h("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more photos");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });

  const filterInput = h("input", { name: "tag", value: tag, type: "search", maxlength: limits.tag_max, placeholder: "e.g. beach" });
  const filter = h(
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

  // A new upload has no tags yet: it shows at once in the unfiltered gallery only, and its card follows its status.
  const cards = new Map();
  const uploads = uploader(session, {
    onCreated(photo) {
      if (tag) return;
      const card = photoCard(photo);
      cards.set(photo.photo_id, card);
      grid.prepend(card);
      empty.hidden = true;
    },
    onSettled(photo) {
      const card = cards.get(photo.photo_id);
      if (!card || !card.isConnected) return;
      const fresh = photoCard(photo);
      card.replaceWith(fresh);
      cards.set(photo.photo_id, fresh);
    },
  });

  page(tag ? `Photos tagged “${tag}”` : "Your photos", uploads, filter, grid, empty, more, sentinel);

  let cursor = null;
  let loading = false;
  let done = false;
  const loadPage = async () => {
    if (loading || done) return;
    loading = true;
    more.disabled = true;
    const nextPage = cursor !== null;
    try {
      const result = await api.listPhotos({ limit: PAGE_SIZE, cursor, tag: tag || null });
      if (!session.isCurrent(ticket)) return;
      grid.append(...result.items.filter((p) => !grid.querySelector(`[data-photo-id="${p.photo_id}"]`)).map(photoCard));
      cursor = result.next_cursor;
      done = !cursor;
      more.hidden = done;
      empty.hidden = grid.children.length > 0;
      // Only for later pages: the first page's heading speaks for itself, and must not drown out "Deleted …".
      if (nextPage) announce(`${grid.children.length} photos shown${done ? "" : "; scroll for more"}.`);
    } catch (error) {
      if (session.isCurrent(ticket)) showError(error);
    } finally {
      loading = false;
      more.disabled = false;
    }
  };
  more.addEventListener("click", loadPage);
  const observer = new IntersectionObserver((entries) => {
    if (!session.isCurrent(ticket)) {
      observer.disconnect();
      return;
    }
    if (entries.some((entry) => entry.isIntersecting)) loadPage();
  }, { rootMargin: "400px" });
  observer.observe(sentinel);
  await loadPage();
}
