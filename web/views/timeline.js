// The timeline: the caller's photos by the time they were taken (the upload time when a photo has no EXIF date),
// newest first, under month headers, beside a scrubber listing every month with its count (GET /photos/timeline).
// A month's link (#/timeline?month=YYYY-MM) loads that month (sort=taken, from its first day to its last), then
// scrolling goes on to the older months. Only processed photos have a taken time: uploads show in the library.
import { h, page } from "../dom.js";
import { LIBRARY_ACTIONS, bulkBar } from "./bulk.js";
import { applyBatch, libraryTabs } from "./gallery.js";
import { scroller } from "./scroll.js";
import { TileSet } from "./tiles.js";

const PAGE_SIZE = 48;
const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

// "2025-03" for a photo: its taken time's month, else its upload's (the API's buckets, in UTC like the API).
export function monthOf(photo) {
  return (photo.taken_at || photo.created_at || "").slice(0, 7);
}

// "March 2025", in the reader's language.
export function monthName(month) {
  const [year, number] = month.split("-").map(Number);
  return new Date(Date.UTC(year, number - 1, 1)).toLocaleDateString(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// The first and last day of a month, and the last day of the month before it.
function monthRange(month) {
  const [year, number] = month.split("-").map(Number);
  return {
    from: `${month}-01`,
    to: isoDay(new Date(Date.UTC(year, number, 0))),
    before: isoDay(new Date(Date.UTC(year, number - 1, 0))),
  };
}

function scrubber(buckets, current) {
  const items = buckets.map(({ month, count }) =>
    h(
      "li",
      {},
      h(
        "a",
        { href: `#/timeline?month=${month}`, "aria-current": month === current ? "true" : null, "aria-label": `${monthName(month)}: ${count === 1 ? "1 photo" : `${count} photos`}`, dataset: { month } },
        h("span", { class: "month-name" }, monthName(month)),
        h("span", { class: "count" }, count.toLocaleString()),
      ),
    ),
  );
  return h("ol", {}, ...items);
}

export async function renderTimeline(session, { ticket, query }) {
  const { api } = session;
  const wanted = query.get("month") || "";
  const start = MONTH.test(wanted) ? wanted : null;
  const tiles = new TileSet(session);
  const months = h("div", { class: "months", id: "timeline" });
  tiles.root = months;
  const sections = new Map();
  const empty = h("p", { class: "muted", id: "empty", hidden: true }, start ? `No photos from ${monthName(start)} or before.` : "No photos in your timeline yet. Photos show here once they are processed.");
  const more = h("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more photos");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const reportSlot = h("div", {});
  const rail = h("nav", { class: "scrubber", id: "scrubber", "aria-label": "Months" }, h("p", { class: "muted" }, "Loading months…"));
  let buckets = [];
  const drawRail = () => rail.replaceChildren(buckets.length ? scrubber(buckets, start) : h("p", { class: "muted" }, "No months yet."));

  const sectionFor = (month) => {
    if (!sections.has(month)) {
      const titleId = `month-${month}`;
      const list = h("ul", { class: "grid", "aria-labelledby": titleId });
      const section = h("section", { class: "month", dataset: { month } }, h("h2", { id: titleId }, monthName(month)), list);
      months.append(section);
      sections.set(month, { section, list });
    }
    return sections.get(month).list;
  };
  const place = (photo) => sectionFor(monthOf(photo)).append(tiles.tile(photo));

  const bar = bulkBar(session, tiles, {
    actions: LIBRARY_ACTIONS,
    reportSlot,
    onDone: (action, results) => {
      if (action === "trash") {
        for (const result of results) {
          const photo = result.status === "done" && tiles.photos.get(result.photo_id);
          const bucket = photo && buckets.find((each) => each.month === monthOf(photo));
          if (bucket) bucket.count -= 1;
        }
        buckets = buckets.filter((bucket) => bucket.count > 0);
        drawRail();
      }
      applyBatch(tiles, action, results);
      for (const [month, { section, list }] of sections) {
        if (list.children.length === 0) {
          section.remove();
          sections.delete(month);
        }
      }
      empty.hidden = sections.size > 0;
    },
  });

  page(
    "Timeline",
    libraryTabs("timeline"),
    start ? h("p", {}, `From ${monthName(start)} back. `, h("a", { href: "#/timeline" }, "Show the newest")) : null,
    bar,
    reportSlot,
    h("div", { class: "timeline-layout" }, h("div", {}, months, empty, more, sentinel), rail),
  );

  // Two stretches: the chosen month alone (from..to), then everything older (to: the day before it).
  const range = start ? monthRange(start) : null;
  const stretches = range ? [{ from: range.from, to: range.to }, { to: range.before }] : [{}];
  let cursor = null;
  const load = scroller(session, ticket, {
    more,
    sentinel,
    next: async () => {
      const stretch = stretches[0];
      const result = await api.listPhotos({ limit: PAGE_SIZE, cursor, sort: "taken", ...stretch });
      if (!session.isCurrent(ticket)) return false;
      for (const photo of result.items) if (!tiles.has(photo.photo_id)) place(photo);
      cursor = result.next_cursor || null;
      if (!cursor) stretches.shift();
      empty.hidden = sections.size > 0 || stretches.length > 0;
      return stretches.length > 0;
    },
  });
  const timeline = api.getTimeline().then(
    (answer) => {
      if (!session.isCurrent(ticket)) return;
      buckets = answer.buckets;
      drawRail();
    },
    (error) => {
      if (session.isCurrent(ticket)) rail.replaceChildren(h("p", { class: "muted" }, `Months not available: ${error.message}`));
    },
  );
  await Promise.all([load(), timeline]);
}
