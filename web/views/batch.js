// Album photo batches: ids sent in chunks the API accepts (photo_ids: 1..50), and the per-photo results shown as
// counts and one line per photo.
import { h } from "../dom.js";

const BATCH_SIZE = 50;

// Every chunk in turn; the results of those already sent are kept when a later one fails (error.partial).
export async function inBatches(ids, send) {
  const results = [];
  for (let start = 0; start < ids.length; start += BATCH_SIZE) {
    try {
      const answer = await send(ids.slice(start, start + BATCH_SIZE));
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

// The report shown above the album after a batch: the summary, then each photo's outcome.
export function batchReport(heading, results, outcomes, names) {
  return h(
    "section",
    { class: "card report", id: "batch-report", "aria-labelledby": "batch-report-title" },
    h("h2", { id: "batch-report-title" }, heading),
    h("p", { id: "batch-summary" }, `${summarize(results, outcomes)}.`),
    h(
      "ul",
      { class: "results", "aria-label": "Result per photo" },
      ...results.map((result) =>
        h(
          "li",
          { dataset: { photoId: result.photo_id, status: result.status } },
          h("span", { class: "name" }, names.get(result.photo_id) || result.photo_id),
          `: ${outcomes[result.status] || result.status}`,
          result.message ? ` (${result.message})` : null,
        ),
      ),
    ),
  );
}
