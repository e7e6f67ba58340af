// PhotoSky's reference web client: hash routes, one small view function per screen, DOM built with `h()` (never
// innerHTML, so titles and tags from the API cannot inject markup).
import { Api, ApiError, uploadToStorage } from "./api.js";
import { Auth } from "./auth.js";

const PAGE_SIZE = 24;
const ACCEPTED_TYPES = "image/jpeg,image/png,image/webp,image/gif,image/heic,.jpg,.jpeg,.png,.webp,.gif,.heic";
const POLL_DELAYS_MS = [300, 500, 1000, 1000, 2000, 2000, 3000, 5000];
const POLL_GIVE_UP_MS = 120_000;

const main = document.getElementById("main");
const statusRegion = document.getElementById("status");
const alertRegion = document.getElementById("alert");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const confirmDialog = document.getElementById("confirm-dialog");

let config = null;
let auth = null;
let api = null;
let renderCount = 0; // a view checks it after each await: the user may have moved on

// --- small helpers -------------------------------------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const nodes = [h("label", { for: id }, label), input];
  if (hint) {
    const hintId = `${id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    nodes.push(h("p", { class: "hint", id: hintId }, hint));
  }
  return h("div", { class: "field" }, ...nodes);
}

function announce(message) {
  // Cleared first so the same message twice is read twice.
  statusRegion.textContent = "";
  setTimeout(() => {
    statusRegion.textContent = message;
  }, 50);
}

function messageOf(error) {
  if (error instanceof ApiError && error.status === 429 && error.retryAfter) {
    return `${error.message} (try again in ${error.retryAfter} s)`;
  }
  return error && error.message ? error.message : String(error);
}

function showError(error) {
  alertRegion.textContent = messageOf(error);
  alertRegion.hidden = false;
}

function clearError() {
  alertRegion.hidden = true;
  alertRegion.textContent = "";
}

function page(title, ...content) {
  const heading = h("h1", { tabindex: "-1", id: "page-title" }, title);
  main.replaceChildren(heading, ...content);
  document.title = `${title} · PhotoSky`;
  heading.focus();
  return heading;
}

function formatBytes(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function formatDate(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function busy(form, isBusy) {
  for (const control of form.querySelectorAll("button, input, textarea")) control.disabled = isBusy;
  form.setAttribute("aria-busy", String(isBusy));
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parseTags(text) {
  return text
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
}

function photoName(photo) {
  return photo.title || photo.filename;
}

// --- routing ---------------------------------------------------------------------------------------------------------

const PUBLIC_ROUTES = new Set(["signin", "signup", "confirm"]);

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "", ...rest] = path.split("/");
  return { name: name || "gallery", params: rest.map(decodeURIComponent), query: new URLSearchParams(query) };
}

async function route() {
  const current = ++renderCount;
  clearError();
  const { name, params, query } = parseHash();
  nav.hidden = !auth.signedIn;
  who.textContent = auth.signedIn ? `Signed in as ${auth.username}` : "";
  if (!auth.signedIn && !PUBLIC_ROUTES.has(name)) {
    renderSignIn(query);
    return;
  }
  if (auth.signedIn && PUBLIC_ROUTES.has(name)) {
    go("#/gallery");
    return;
  }
  const views = {
    signin: () => renderSignIn(query),
    signup: () => renderSignUp(),
    confirm: () => renderConfirm(query),
    gallery: () => renderGallery(current, query),
    photo: () => renderPhoto(current, params[0]),
    profile: () => renderProfile(current, query),
  };
  const view = views[name];
  if (!view) {
    page("Page not found", h("p", {}, h("a", { href: "#/gallery" }, "Back to your photos")));
    return;
  }
  try {
    await view();
  } catch (error) {
    if (current !== renderCount) return;
    if (!auth.signedIn) return; // the session ended: the sign-in screen is already showing
    showError(error);
  }
}

// --- sign in, sign up, confirm -------------------------------------------------------------------------------------

function renderSignIn(query) {
  const username = h("input", { name: "username", autocomplete: "username", required: true, value: query.get("username") || "" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    field("Username", username),
    field("Password", password),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
    h("p", {}, "New here? ", h("a", { href: "#/signup" }, "Create an account")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    try {
      await auth.signIn(username.value.trim(), password.value);
      announce(`Signed in as ${auth.username}.`);
      await landAfterSignIn();
    } catch (error) {
      busy(form, false);
      if (error.code === "UserNotConfirmedException") {
        go(`#/confirm?username=${encodeURIComponent(username.value.trim())}`);
        announce("Your account is not confirmed yet. Enter your confirmation code.");
        return;
      }
      showError(error);
      password.focus();
    }
  });
  page("Sign in", form);
  if (query.get("confirmed")) announce("Account confirmed. You can sign in now.");
}

async function landAfterSignIn() {
  try {
    await api.getProfile();
    go("#/gallery");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) go("#/profile?new=1");
    else throw error;
  }
}

function renderSignUp() {
  const username = h("input", { name: "username", autocomplete: "username", required: true, maxlength: "128" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "new-password",
    required: true,
    minlength: "10",
  });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    field("Username", username),
    field("Email", email, "We send your confirmation code here."),
    field("Password", password, "At least 10 characters, with upper- and lower-case letters and a digit."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create account")),
    h("p", {}, "Already have an account? ", h("a", { href: "#/signin" }, "Sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    const name = username.value.trim();
    try {
      const result = await auth.signUp(name, password.value, email.value.trim());
      if (result.confirmed) {
        go(`#/signin?username=${encodeURIComponent(name)}&confirmed=1`);
        return;
      }
      const where = result.delivery && result.delivery.Destination ? ` to ${result.delivery.Destination}` : "";
      go(`#/confirm?username=${encodeURIComponent(name)}&sent=${encodeURIComponent(where)}`);
    } catch (error) {
      busy(form, false);
      showError(error);
    }
  });
  page("Create an account", form);
}

function renderConfirm(query) {
  const username = h("input", { name: "username", autocomplete: "username", required: true, value: query.get("username") || "" });
  const code = h("input", {
    name: "code",
    autocomplete: "one-time-code",
    inputmode: "numeric",
    required: true,
    maxlength: "64",
  });
  const sent = query.get("sent");
  const notes = [h("p", {}, `We sent a confirmation code${sent || " by email"}. Enter it to finish creating your account.`)];
  if (config.environment === "local") {
    notes.push(
      h(
        "p",
        { class: "note", id: "local-confirm-note" },
        "Dev stack: the emulated Cognito sends no email and accepts any code here, so type any code (for example 123456). " +
          "In AWS the real code arrives by email and a wrong code is refused.",
      ),
    );
  }
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    ...notes,
    field("Username", username),
    field("Confirmation code", code),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Confirm account")),
    h("p", {}, h("a", { href: "#/signin" }, "Back to sign in")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    try {
      await auth.confirmSignUp(username.value.trim(), code.value.trim());
      go(`#/signin?username=${encodeURIComponent(username.value.trim())}&confirmed=1`);
    } catch (error) {
      busy(form, false);
      showError(error);
      code.focus();
    }
  });
  page("Confirm your account", form);
}

// --- profile ---------------------------------------------------------------------------------------------------------

async function renderProfile(current, query) {
  let profile = null;
  try {
    profile = await api.getProfile();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  if (current !== renderCount) return;
  if (profile === null) {
    renderCreateProfile(query.get("new") === "1");
    return;
  }
  const usage = h(
    "section",
    { class: "card", "aria-labelledby": "usage-title" },
    h("h2", { id: "usage-title" }, "Usage"),
    usageMeter("Photos", profile.usage.photos, profile.quota.photos, (n) => n.toLocaleString(), "usage-photos"),
    usageMeter("Storage", profile.usage.bytes, profile.quota.bytes, formatBytes, "usage-bytes"),
  );
  const displayName = h("input", { name: "display_name", required: true, maxlength: "64", value: profile.display_name });
  const bio = h("textarea", { name: "bio", maxlength: "500", rows: "4" }, profile.bio || "");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "edit-profile-title" },
    h("h2", { id: "edit-profile-title" }, "Edit profile"),
    field("Display name", displayName),
    field("Bio", bio, "Up to 500 characters. Visible to other signed-in users."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save profile")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    try {
      const updated = await api.updateProfile({ display_name: displayName.value, bio: bio.value });
      displayName.value = updated.display_name;
      bio.value = updated.bio || "";
      announce("Profile saved.");
    } catch (error) {
      showError(error);
    } finally {
      busy(form, false);
    }
  });
  page(
    "Your profile",
    h("p", { class: "muted" }, `Member since ${formatDate(profile.created_at)}`),
    h("div", { class: "columns" }, usage, form),
  );
}

function usageMeter(label, used, quota, format, id) {
  return h(
    "div",
    { class: "usage" },
    h("label", { for: id }, label),
    h("meter", { id, min: "0", max: String(quota), value: String(used), high: String(quota * 0.9) }),
    h("p", { class: "hint", id: `${id}-text` }, `${format(used)} of ${format(quota)}`),
  );
}

function renderCreateProfile(isNew) {
  const displayName = h("input", { name: "display_name", required: true, maxlength: "64", autocomplete: "nickname" });
  const bio = h("textarea", { name: "bio", maxlength: "500", rows: "4" });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "page-title" },
    h("p", {}, isNew ? "Welcome! Create your profile to start uploading photos." : "You have no profile yet."),
    field("Display name", displayName, "How other people see you (1–64 characters)."),
    field("Bio (optional)", bio),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create profile")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    busy(form, true);
    const current = renderCount;
    try {
      const body = { display_name: displayName.value };
      if (bio.value.trim()) body.bio = bio.value;
      await api.createProfile(body);
      announce("Profile created.");
      if (current === renderCount) go("#/profile"); // unless the user has moved on meanwhile
    } catch (error) {
      busy(form, false);
      if (error instanceof ApiError && error.status === 409) {
        go("#/profile"); // created meanwhile (another tab): show it
        return;
      }
      showError(error);
    }
  });
  page("Create your profile", form);
}

// --- gallery and uploads ------------------------------------------------------------------------------------------

function photoCard(photo) {
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

async function renderGallery(current, query) {
  const tag = (query.get("tag") || "").trim().toLowerCase();
  const grid = h("ul", { class: "grid", id: "photo-grid", "aria-label": tag ? `Photos tagged ${tag}` : "Your photos" });
  const empty = h("p", { class: "muted", id: "empty", hidden: true }, tag ? `No photos tagged “${tag}”.` : "No photos yet. Upload some above.");
  const more = h("button", { type: "button", class: "secondary", id: "load-more", hidden: true }, "Load more photos");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });

  const filterInput = h("input", { name: "tag", value: tag, type: "search", maxlength: "40", placeholder: "e.g. beach" });
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
    go(wanted ? `#/gallery?tag=${encodeURIComponent(wanted)}` : "#/gallery");
  });

  page(tag ? `Photos tagged “${tag}”` : "Your photos", uploader(grid, empty, tag), filter, grid, empty, more, sentinel);

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
      if (current !== renderCount) return;
      grid.append(...result.items.filter((p) => !grid.querySelector(`[data-photo-id="${p.photo_id}"]`)).map(photoCard));
      cursor = result.next_cursor;
      done = !cursor;
      more.hidden = done;
      empty.hidden = grid.children.length > 0;
      // Only for later pages: the first page's heading speaks for itself, and must not drown out "Deleted …".
      if (nextPage) announce(`${grid.children.length} photos shown${done ? "" : "; scroll for more"}.`);
    } catch (error) {
      if (current === renderCount) showError(error);
    } finally {
      loading = false;
      more.disabled = false;
    }
  };
  more.addEventListener("click", loadPage);
  const observer = new IntersectionObserver((entries) => {
    if (current !== renderCount) {
      observer.disconnect();
      return;
    }
    if (entries.some((entry) => entry.isIntersecting)) loadPage();
  }, { rootMargin: "400px" });
  observer.observe(sentinel);
  await loadPage();
}

function uploader(grid, empty, tag) {
  const input = h("input", { type: "file", multiple: true, accept: ACCEPTED_TYPES, id: "file-input", class: "visually-hidden" });
  const list = h("ul", { class: "uploads", id: "upload-list", "aria-label": "Uploads" });
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    h("p", {}, "Drag photos here, or"),
    h("label", { for: "file-input", class: "button primary" }, "Choose photos"),
    input,
    h("p", { class: "hint" }, "JPEG, PNG, WebP, GIF or HEIC, up to 25 MB each."),
  );
  const start = (files) => {
    for (const file of files) uploadOne(file, list, grid, empty, tag);
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

async function uploadOne(file, list, grid, empty, tag) {
  const progress = h("progress", { max: "1", value: "0", "aria-label": `Upload progress of ${file.name}` });
  const state = h("span", { class: "state" }, "Starting…");
  const item = h("li", { class: "upload", dataset: { filename: file.name, status: "STARTING" } }, h("span", { class: "name" }, file.name), progress, state);
  list.prepend(item);
  const set = (text, status) => {
    state.textContent = text;
    item.dataset.status = status;
  };
  let card = null;
  try {
    const { photo, upload } = await api.startUpload({
      filename: file.name,
      content_type: file.type || "application/octet-stream",
      size_bytes: file.size,
    });
    if (!tag) {
      card = photoCard(photo);
      grid.prepend(card);
      empty.hidden = true;
    }
    set("Uploading…", "UPLOADING");
    await uploadToStorage(upload, file, (fraction) => {
      progress.value = fraction;
    });
    set("Processing…", "PENDING");
    const settled = await waitUntilSettled(photo.photo_id);
    if (card && card.isConnected) {
      const fresh = photoCard(settled);
      card.replaceWith(fresh);
      card = fresh;
    }
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
    progress.hidden = true;
    set(messageOf(error), "FAILED");
    item.classList.add("failed");
    announce(`${file.name} could not be uploaded: ${messageOf(error)}`);
  }
}

async function waitUntilSettled(photoId) {
  const started = Date.now();
  for (let attempt = 0; ; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, POLL_DELAYS_MS[Math.min(attempt, POLL_DELAYS_MS.length - 1)]));
    const photo = await api.getPhoto(photoId);
    if (photo.status !== "PENDING" || Date.now() - started > POLL_GIVE_UP_MS) return photo;
  }
}

// --- one photo -----------------------------------------------------------------------------------------------------

async function renderPhoto(current, photoId, notice) {
  const photo = await api.getPhoto(photoId);
  if (current !== renderCount) return;
  const name = photoName(photo);
  let visual;
  if (photo.status === "READY" && photo.urls.large) {
    visual = h("img", { src: photo.urls.large, alt: name, class: "large", id: "large-preview" });
  } else if (photo.status === "REJECTED") {
    visual = h("p", { class: "placeholder rejected" }, `Rejected: ${photo.rejection_reason || "not a supported image"}`);
  } else {
    visual = h("p", { class: "placeholder" }, "Still processing…");
  }
  const size = photo.width && photo.height ? `${photo.width} × ${photo.height} px` : "—";
  const facts = [
    ["Status", photo.status],
    ["File", photo.filename],
    ["Type", photo.content_type],
    ["Size", formatBytes(photo.size_bytes)],
    ["Dimensions", size],
    ["Taken", formatDate(photo.taken_at)],
    ["Uploaded", formatDate(photo.created_at)],
    ["Updated", formatDate(photo.updated_at)],
  ];
  const metadata = h("dl", { class: "facts" }, ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  const tagLinks = photo.tags.length
    ? h("ul", { class: "tags", "aria-label": "Photo tags" }, ...photo.tags.map((tag) => h("li", {}, h("a", { href: `#/gallery?tag=${encodeURIComponent(tag)}` }, tag))))
    : h("p", { class: "muted" }, "No tags.");

  const title = h("input", { name: "title", maxlength: "200", value: photo.title || "" });
  const description = h("textarea", { name: "description", rows: "3", maxlength: "2000" }, photo.description || "");
  const tags = h("input", { name: "tags", value: photo.tags.join(", ") });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "edit-title" },
    h("h2", { id: "edit-title" }, "Details"),
    field("Title", title),
    field("Description", description),
    field("Tags", tags, "Separate tags with commas, e.g. beach, summer 2026."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save changes")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const changes = { version: photo.version };
    if (title.value !== (photo.title || "")) changes.title = title.value;
    if (description.value !== (photo.description || "")) changes.description = description.value;
    const newTags = parseTags(tags.value);
    if (newTags.join(",") !== photo.tags.join(",")) changes.tags = newTags;
    if (Object.keys(changes).length === 1) {
      announce("Nothing to save.");
      return;
    }
    busy(form, true);
    try {
      await api.updatePhoto(photo.photo_id, changes);
      await renderPhoto(++renderCount, photo.photo_id, "Changes saved.");
    } catch (error) {
      busy(form, false);
      if (error instanceof ApiError && error.status === 409) {
        await renderPhoto(++renderCount, photo.photo_id);
        showError(new Error("This photo was changed somewhere else (another tab or device), so your edits were not saved. The latest version is shown: make your changes again."));
        return;
      }
      showError(error);
    }
  });

  const remove = h("button", { type: "button", class: "danger", id: "delete-photo" }, "Delete photo");
  remove.addEventListener("click", async () => {
    if (!(await confirmDelete(name))) {
      remove.focus();
      return;
    }
    clearError();
    remove.disabled = true;
    try {
      await api.deletePhoto(photo.photo_id);
      go("#/gallery");
      announce(`Deleted ${name}.`);
    } catch (error) {
      remove.disabled = false;
      showError(error);
    }
  });

  page(
    name,
    h("p", {}, h("a", { href: "#/gallery" }, "← All photos")),
    h(
      "div",
      { class: "photo-view" },
      h("figure", {}, visual, photo.description ? h("figcaption", {}, photo.description) : null),
      h("div", { class: "side" }, h("section", { class: "card", "aria-labelledby": "about-title" }, h("h2", { id: "about-title" }, "About"), metadata, tagLinks), form, h("div", { class: "card danger-zone" }, remove)),
    ),
  );
  if (notice) announce(notice);
}

function confirmDelete(name) {
  return new Promise((resolve) => {
    document.getElementById("confirm-text").textContent = `“${name}” and its previews will be deleted. This cannot be undone.`;
    confirmDialog.returnValue = "cancel";
    confirmDialog.addEventListener("close", () => resolve(confirmDialog.returnValue === "confirm"), { once: true });
    confirmDialog.showModal();
  });
}

// --- start -----------------------------------------------------------------------------------------------------------

async function start() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    config = await response.json();
  } catch (error) {
    page("PhotoSky is not configured", h("p", {}, `This site has no usable config.json (${error.message}). See the README, “Web client”.`));
    return;
  }
  let wasSignedIn = false;
  auth = new Auth(config, {
    onChange: () => {
      if (wasSignedIn && !auth.signedIn) {
        go("#/signin");
        announce("You are signed out.");
      }
      wasSignedIn = auth.signedIn;
    },
  });
  wasSignedIn = auth.signedIn;
  api = new Api(config.api_url, auth);
  document.getElementById("sign-out").addEventListener("click", async () => {
    await auth.signOut();
  });
  window.addEventListener("hashchange", route);
  await route();
}

start();
