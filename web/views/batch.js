// Photo batches: ids sent in chunks the API accepts (an album's photo_ids: `limits.album_photos_per_call`; the
// library's POST /photos/batch: `limits.batch_photos`), and the per-photo results shown as counts and one line per
// photo.
import { h } from "../dom.js";

// Every chunk of `size` in turn; the results of those already sent are kept when a later one fails (error.partial).
export async function inBatches(ids, size, send) {
  const results = [];
  for (let start = 0; start < ids.length; start += size) {
    try {
      const answer = await send(ids.slice(start, start + size));
      results.push(...answer.results);
    } catch (error) {
      error.partial = results;
      throw error;
    }
  }
  return results;
}

export const ADD_OUTCOMES = {
  added: "added",
  already: "already in the album",
  not_found: "not found (deleted, or not yours)",
  not_ready: "not ready (still processing, or rejected)",
};
export const REMOVE_OUTCOMES = {
  removed: "removed",
  not_found: "no longer in the album",
  forbidden: "not yours to remove",
};

// POST /photos/batch: what "done" means for each action, and what the other outcomes say.
const DONE = {
  favorite: "added to favourites",
  unfavorite: "removed from favourites",
  add_tags: "tagged",
  remove_tags: "untagged",
  trash: "moved to the trash",
  restore: "restored",
  delete: "deleted for good",
};
export function photoOutcomes(action) {
  return { done: DONE[action] || "done", not_found: "not found", conflict: "not possible now", invalid: "not accepted" };
}
// What a photo's line says when the API gave no message of its own.
export const PHOTO_HINTS = {
  not_found: "deleted, or not yours",
  conflict: "in the trash, or changed meanwhile",
  invalid: "too many tags, or not allowed",
};

// "2 added, 1 already in the album": the outcomes that happened, in the order `outcomes` lists them.
export function summarize(results, outcomes) {
  const counts = new Map();
  for (const result of results) counts.set(result.status, (counts.get(result.status) || 0) + 1);
  const parts = Object.entries(outcomes)
    .filter(([status]) => counts.has(status))
    .map(([status, label]) => `${counts.get(status)} ${label}`);
  for (const [status, count] of counts) if (!(status in outcomes)) parts.push(`${count} ${status}`);
  return parts.join(", ") || "nothing to do";
}

// The report shown after a batch: the summary, then each photo's outcome (`failuresOnly`: those not "done") with the
// API's message, or else the hint for its status.
export function batchReport(heading, results, outcomes, names, { failuresOnly = false, hints = {} } = {}) {
  const listed = failuresOnly ? results.filter((result) => result.status !== "done") : results;
  return h(
    "section",
    { class: "card report", id: "batch-report", "aria-labelledby": "batch-report-title" },
    h("h2", { id: "batch-report-title" }, heading),
    h("p", { id: "batch-summary" }, `${summarize(results, outcomes)}.`),
    listed.length
      ? h(
          "ul",
          { class: "results", "aria-label": failuresOnly ? "Photos not done" : "Result per photo" },
          ...listed.map((result) =>
            h(
              "li",
              { dataset: { photoId: result.photo_id, status: result.status } },
              h("span", { class: "name" }, names.get(result.photo_id) || result.photo_id),
              `: ${outcomes[result.status] || result.status}`,
              result.message || hints[result.status] ? ` (${result.message || hints[result.status]})` : null,
            ),
          ),
        )
      : null,
  );
}
