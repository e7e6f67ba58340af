// Following an upload until the worker settles it (READY or REJECTED). While the live socket (./live.js) is
// connected, the photo's `photo` message says so and no request is made; while it is not (no `ws_url`, refused,
// dropped), GET /photos/{id} is polled on the schedule below. A drop mid-wait goes back to polling; a reconnect
// checks once with a GET (messages sent while the socket was down are not replayed) and then waits for messages
// again. No DOM.
import { ApiError } from "./api.js";

const POLL_DELAYS_MS = [300, 500, 1000, 1000, 2000, 2000, 3000, 5000];
// Past this the last known copy is returned, still PENDING (the caller says it will appear when ready).
const GIVE_UP_MS = 120_000;
const MAX_WAIT_SECONDS = 60;
// The server only logs a push it could not deliver: while connected, a check this rarely (uploads settle in a
// second or two) still finds an upload whose message was lost, at a fraction of polling's requests.
const CHECK_WHILE_CONNECTED_MS = 30_000;

// A poll failing for a passing reason (no network, throttled, the service busy) is not the upload's failure: the
// file is in S3 already, so following goes on (after any Retry-After).
function passing(error) {
  return error instanceof ApiError && (error.status === 0 || error.status === 429 || error.status >= 500);
}

// Start following `photo` (just declared) before its bytes are sent, so that no message can come before the
// subscription. `settled()` then resolves with the photo once settled (or, past GIVE_UP_MS, as last known), and
// rejects if it was deleted meanwhile or a poll fails for good; `cancel()` stops following (the upload failed).
export function followUpload({ api, live }, photo) {
  const id = photo.photo_id;
  let latest = photo;
  let outcome = null; // { photo } or { error }, once known
  let waiting = null; // settled()'s promise, once asked for
  let attempt = 0;
  let recheck = false; // one GET owed since the last (re)connect
  let opens = 0;
  let inFlight = false;
  let timer = null;
  let giveUp = null;

  const deliver = () => (outcome.error ? waiting.reject(outcome.error) : waiting.resolve(outcome.photo));
  const end = (result) => {
    if (outcome) return;
    outcome = result;
    clearTimeout(timer);
    clearTimeout(giveUp);
    for (const stop of subscriptions) stop();
    if (waiting) deliver();
  };
  const pollDelay = () => POLL_DELAYS_MS[Math.min(attempt++, POLL_DELAYS_MS.length - 1)];
  const delay = () => {
    if (!live.connected) return pollDelay();
    if (recheck) return attempt === 0 ? (attempt++, 0) : pollDelay();
    return CHECK_WHILE_CONNECTED_MS;
  };
  const next = (extra = 0) => {
    if (outcome || !waiting || inFlight) return; // a check in flight calls next() when it is done
    clearTimeout(timer);
    timer = setTimeout(check, delay() + extra);
  };
  const check = async () => {
    inFlight = true;
    const round = opens;
    let extra = 0;
    try {
      const fresh = await api.getPhoto(id);
      if (outcome) return;
      // A GET sent before the latest reconnect may predate a message lost during the gap: only a later one counts.
      if (round === opens) recheck = false;
      if (fresh.status !== "PENDING") end({ photo: fresh });
      else latest = { ...latest, ...fresh };
    } catch (error) {
      if (!passing(error)) {
        end({ error });
        return;
      }
      extra = Math.min(error.retryAfter || 0, MAX_WAIT_SECONDS) * 1000;
    } finally {
      inFlight = false;
    }
    next(extra);
  };

  const subscriptions = [
    live.on(
      "photo",
      (fresh) => {
        latest = { ...latest, ...fresh, urls: latest.urls };
        if (fresh.status !== "PENDING") end({ photo: latest });
      },
      { id },
    ),
    live.on("photo_deleted", () => end({ error: new ApiError(404, "NotFound", "The photo was deleted meanwhile.") }), { id }),
    live.on("open", () => {
      opens += 1;
      recheck = true;
      attempt = 0;
      next();
    }),
    live.on("close", () => {
      attempt = 0; // polling starts again from its first, short delay
      next();
    }),
  ];

  return {
    settled() {
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        if (outcome) {
          deliver();
          return;
        }
        giveUp = setTimeout(() => end({ photo: latest }), GIVE_UP_MS);
        next();
      });
    },
    cancel() {
      end({ photo: latest });
    },
  };
}
