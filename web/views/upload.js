// The uploader: pick or drop files; each is declared to the API (POST /photos), POSTed straight to S3 with a
// progress bar, then followed until the worker settles it (READY or REJECTED). The accepted types and the size
// limit are the server's (config.json's `limits`); a file over the limit is refused here, before any request.
import { uploadToStorage } from "../api.js";
import { announce, formatBytes, formatTypes, h, messageOf } from "../dom.js";

const POLL_DELAYS_MS = [300, 500, 1000, 1000, 2000, 2000, 3000, 5000];
const POLL_GIVE_UP_MS = 120_000;

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
  const start = (files) => {
    for (const file of files) uploadOne(session, file, list, { onCreated, onSettled });
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

async function uploadOne(session, file, list, { onCreated, onSettled }) {
  const { api, limits } = session;
  const progress = h("progress", { max: "1", value: "0", "aria-label": `Upload progress of ${file.name}` });
  const state = h("span", { class: "state" }, "Starting…");
  const item = h("li", { class: "upload", dataset: { filename: file.name, status: "STARTING" } }, h("span", { class: "name" }, file.name), progress, state);
  list.prepend(item);
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
  if (file.size > limits.max_upload_bytes) {
    fail(`Too large (${formatBytes(file.size)}): photos can be up to ${formatBytes(limits.max_upload_bytes)} each.`);
    return;
  }
  try {
    const { photo, upload } = await api.startUpload({
      filename: file.name,
      content_type: file.type || "application/octet-stream",
      size_bytes: file.size,
    });
    onCreated(photo);
    set("Uploading…", "UPLOADING");
    await uploadToStorage(upload, file, (fraction) => {
      progress.value = fraction;
    });
    set("Processing…", "PENDING");
    const settled = await waitUntilSettled(api, photo.photo_id);
    onSettled(settled);
    if (settled.status === "READY") {
      set("Ready", "READY");
      announce(`${file.name} is ready.`);
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

async function waitUntilSettled(api, photoId) {
  const started = Date.now();
  for (let attempt = 0; ; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, POLL_DELAYS_MS[Math.min(attempt, POLL_DELAYS_MS.length - 1)]));
    const photo = await api.getPhoto(photoId);
    if (photo.status !== "PENDING" || Date.now() - started > POLL_GIVE_UP_MS) return photo;
  }
}
