// The uploader: pick or drop files; each is declared to the API (POST /photos), POSTed straight to S3 with a
// progress bar, then followed until the worker settles it (READY or REJECTED): by the live socket's message while it
// is connected, by polling while it is not (../settle.js). The accepted types and the size
// limit are the server's (config.json's `limits`); a file over the limit is refused here, before any request.
// A drop of hundreds of files goes through a queue: a few at a time hold a slot from the declaration until their
// bytes are in S3 (the rest wait, "Waiting…"), and a declaration refused with a short Retry-After (the API's cap on
// uploads in progress, its write rate limit, AWS throttling) is waited out and sent again.
// Each file's SHA-256 goes with its declaration: a photo already in the library is not uploaded again (409
// DuplicatePhoto names the copy); the worker checks the bytes anyway, and a copy it finds ends REJECTED with
// `duplicate_of`. Both say "Already in your library" with a link to the photo there.
import { ApiError, uploadToStorage } from "../api.js";
import { announce, formatBytes, formatTypes, formatWait, h, messageOf } from "../dom.js";
import { Slots } from "../queue.js";
import { followUpload } from "../settle.js";
import { copyLink, isDuplicate } from "./tiles.js";

// Browsers open about six connections per host: four uploads leave room for the gallery and the polling. One
// queue per tab, so uploads started from an earlier visit of the gallery count too.
const UPLOAD_SLOTS = 4;
const slots = new Slots(UPLOAD_SLOTS);
// A refusal saying "try again in N s" is waited out when N is this short, this many times per file; past that the
// file fails with the server's hint.
const MAX_WAIT_SECONDS = 60;
const MAX_WAITS_PER_FILE = 10;
// Spread the retries of files that were refused together a little, so they do not all arrive in the same instant.
const RETRY_JITTER_MS = 500;
// S3 answers 503 Slow Down (and now and then 500) while it partitions a busy prefix, and asks clients to back off
// and retry: the presigned POST stays valid for its whole window, so the same form is sent again, after 1, 2, 4 and
// 8 s (plus jitter), before the file fails. A dropped connection is retried the same way.
const STORAGE_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000];
// The live region says "paused" once for a wave of waiting files, not once per file or per retry.
const PAUSE_ANNOUNCE_EVERY_MS = 30_000;
const pause = { waiting: 0, announcedAt: -Infinity };

// The file picker's filter: the types, and their extensions (some systems only know files by extension).
const MORE_EXTENSIONS = { jpeg: [".jpg"] };
function acceptList(contentTypes) {
  const extensions = contentTypes.flatMap((type) => {
    const subtype = type.split("/").pop();
    return [`.${subtype}`, ...(MORE_EXTENSIONS[subtype] || [])];
  });
  return [...contentTypes, ...extensions].join(",");
}

// `onCreated(photo)` once the API has the photo (PENDING), `onSettled(photo)` once it is READY or REJECTED.
export function uploader(session, { onCreated = () => {}, onSettled = () => {} } = {}) {
  const { limits } = session;
  const input = h("input", { type: "file", multiple: true, accept: acceptList(limits.content_types), id: "file-input", class: "visually-hidden" });
  const list = h("ul", { class: "uploads", id: "upload-list", "aria-label": "Uploads" });
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    h("p", {}, "Drag photos here, or"),
    h("label", { for: "file-input", class: "button primary" }, "Choose photos"),
    input,
    h("p", { class: "hint", id: "upload-hint" }, `${formatTypes(limits.content_types)}, up to ${formatBytes(limits.max_upload_bytes)} each.`),
  );
  // A batch's rows go on top of the list in the order the files start (the first one first).
  const start = (files) => {
    const rows = [];
    for (const file of files) uploadOne(session, file, (row) => rows.push(row), { onCreated, onSettled });
    list.prepend(...rows);
  };
  input.addEventListener("change", () => {
    start([...input.files]);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    start([...event.dataTransfer.files]);
  });
  return h("section", { class: "card", "aria-labelledby": "upload-title" }, h("h2", { id: "upload-title" }, "Upload"), zone, list);
}

// `place(row)` puts the file's row in the list (before anything is awaited).
async function uploadOne(session, file, place, { onCreated, onSettled }) {
  const { api, limits } = session;
  const progress = h("progress", { max: "1", value: "0", "aria-label": `Upload progress of ${file.name}` });
  const state = h("span", { class: "state" }, "Waiting…");
  const item = h("li", { class: "upload", dataset: { filename: file.name, status: "QUEUED" } }, h("span", { class: "name" }, file.name), progress, state);
  place(item);
  const set = (text, status) => {
    state.textContent = text;
    item.dataset.status = status;
  };
  const fail = (message) => {
    progress.hidden = true;
    set(message, "FAILED");
    item.classList.add("failed");
    announce(`${file.name} could not be uploaded: ${message}`);
  };
  const duplicate = (photoId) => {
    progress.hidden = true;
    state.replaceChildren("Already in your library. ", copyLink(photoId));
    item.dataset.status = "DUPLICATE";
    item.classList.add("duplicate");
    announce(`${file.name} is already in your library.`);
  };
  if (file.size > limits.max_upload_bytes) {
    fail(`Too large (${formatBytes(file.size)}): photos can be up to ${formatBytes(limits.max_upload_bytes)} each.`);
    return;
  }
  let follower = null;
  const release = await slots.acquire();
  try {
    set("Starting…", "STARTING");
    const details = { filename: file.name, content_type: file.type || "application/octet-stream", size_bytes: file.size };
    const sha256 = await sha256Of(file);
    if (sha256) details.sha256 = sha256;
    const declared = await declare(api, details, (text) => set(text, "WAITING"));
    // Followed from now on: the photo cannot settle before its bytes are in, and then no message can slip past.
    follower = followUpload(session, declared.photo);
    onCreated(declared.photo);
    set("Uploading…", "UPLOADING");
    await storeWithRetries(declared.upload, file, (fraction) => {
      progress.value = fraction;
    }, (text) => set(text, "UPLOADING"));
  } catch (error) {
    if (follower) follower.cancel();
    if (isDuplicate(error) && error.photoId) duplicate(error.photoId);
    else fail(messageOf(error));
    return;
  } finally {
    release(); // the bytes are in S3 (or the file failed): the next file may start while this one is processed
  }
  try {
    set("Processing…", "PENDING");
    const settled = await follower.settled();
    onSettled(settled);
    if (settled.status === "READY") {
      set("Ready", "READY");
      announce(`${file.name} is ready.`);
    } else if (settled.status === "REJECTED" && settled.duplicate_of) {
      duplicate(settled.duplicate_of);
    } else if (settled.status === "REJECTED") {
      set(`Rejected: ${settled.rejection_reason || "not a supported image"}`, "REJECTED");
      item.classList.add("failed");
      announce(`${file.name} was rejected: ${settled.rejection_reason || "not a supported image"}.`);
    } else {
      set("Still processing; it will appear in your photos when ready.", "PENDING");
    }
  } catch (error) {
    fail(messageOf(error));
  }
}

// The file's SHA-256 in lower-case hex, or null where the browser cannot tell (no Web Crypto outside a secure
// context, or the file cannot be read): the worker's own check still catches a copy.
async function sha256Of(file) {
  if (!(globalThis.crypto && crypto.subtle)) return null;
  try {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  } catch {
    return null;
  }
}

// The file's bytes to S3 through its presigned POST, sent again while S3 says it is busy (500, 503) or the
// connection drops, with growing waits; `show(text)` says so on the file's row. Anything else fails at once.
async function storeWithRetries(upload, file, onProgress, show) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await uploadToStorage(upload, file, onProgress);
    } catch (error) {
      const busy = error instanceof ApiError && (error.status === 500 || error.status === 503 || error.code === "NetworkError");
      if (!busy || attempt >= STORAGE_RETRY_DELAYS_MS.length) throw error;
      const wait = STORAGE_RETRY_DELAYS_MS[attempt] + Math.random() * RETRY_JITTER_MS;
      show(`Storage is busy; trying again in ${formatWait(Math.ceil(wait / 1000))}…`);
      onProgress(0);
      await sleep(wait);
      show("Uploading…");
    }
  }
}

// POST /photos, waiting out the refusals that say when to come back (429 or 503 with a short Retry-After);
// `show(text)` tells the file's row how long it waits and why. A 429 without Retry-After (the storage quota is
// full: waiting does not help), a long wait or too many of them is thrown, with the server's hint.
async function declare(api, details, show) {
  for (let waits = 0; ; waits += 1) {
    try {
      return await api.startUpload(details);
    } catch (error) {
      if (!worthWaiting(error) || waits >= MAX_WAITS_PER_FILE) throw error;
      await waitOut(error, show);
    }
  }
}

function worthWaiting(error) {
  return (
    error instanceof ApiError &&
    (error.status === 429 || error.status === 503) &&
    error.retryAfter !== undefined &&
    error.retryAfter <= MAX_WAIT_SECONDS
  );
}

async function waitOut(error, show) {
  const seconds = Math.max(1, error.retryAfter);
  pause.waiting += 1;
  if (pause.waiting === 1 && Date.now() - pause.announcedAt > PAUSE_ANNOUNCE_EVERY_MS) {
    pause.announcedAt = Date.now();
    announce(`Uploads paused for ${formatWait(seconds)}: ${sentence(error.message)} They will go on by themselves.`);
  }
  try {
    for (let left = seconds; left > 0; left -= 1) {
      show(`Waiting ${formatWait(left)}: ${error.message}`);
      await sleep(1000);
    }
    await sleep(Math.random() * RETRY_JITTER_MS);
  } finally {
    pause.waiting -= 1;
  }
}

function sentence(text) {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
